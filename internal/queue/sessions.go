package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WSInstances maps each queue-ws instance to its open WebSocket sessions and
// when it last said so ("<sessions>:<unix ms>"), for the registrar's live
// view: how many students are on the registration page right now.
func (k Keys) WSInstances() string { return k.tag + "wsinst" }

// ReportSessions records that instance holds n sessions at at.
func (q *Redis) ReportSessions(ctx context.Context, instance string, n int64, at time.Time) error {
	v := strconv.FormatInt(n, 10) + ":" + strconv.FormatInt(at.UnixMilli(), 10)
	if err := q.rdb.HSet(ctx, q.keys.WSInstances(), instance, v).Err(); err != nil {
		return fmt.Errorf("report %d sessions of %s: %w", n, instance, err)
	}
	return nil
}

// ForgetInstance removes instance's report (it is shutting down).
func (q *Redis) ForgetInstance(ctx context.Context, instance string) error {
	if err := q.rdb.HDel(ctx, q.keys.WSInstances(), instance).Err(); err != nil {
		return fmt.Errorf("forget queue-ws instance %s: %w", instance, err)
	}
	return nil
}

// LiveSessions sums the sessions of the instances that reported within
// maxAge before now. Reports older than that (an instance that died without
// saying so) are left out and removed.
func (q *Redis) LiveSessions(ctx context.Context, now time.Time, maxAge time.Duration) (sessions int64, instances int, err error) {
	all, err := q.rdb.HGetAll(ctx, q.keys.WSInstances()).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("read queue-ws sessions: %w", err)
	}
	var stale []string
	for inst, v := range all {
		n, at, ok := parseSessionReport(v)
		if !ok || now.Sub(at) > maxAge {
			stale = append(stale, inst)
			continue
		}
		sessions += n
		instances++
	}
	if len(stale) > 0 {
		if err := q.rdb.HDel(ctx, q.keys.WSInstances(), stale...).Err(); err != nil {
			return sessions, instances, fmt.Errorf("remove %d stale queue-ws reports: %w", len(stale), err)
		}
	}
	return sessions, instances, nil
}

func parseSessionReport(v string) (n int64, at time.Time, ok bool) {
	a, b, found := strings.Cut(v, ":")
	if !found {
		return 0, time.Time{}, false
	}
	n, err1 := strconv.ParseInt(a, 10, 64)
	ms, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return 0, time.Time{}, false
	}
	return n, time.UnixMilli(ms), true
}
