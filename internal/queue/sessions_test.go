package queue

import (
	"testing"
	"time"
)

// Live sessions are the sum over instances that reported recently; a report
// older than maxAge (an instance that died) or unreadable is left out and
// removed, and a forgotten instance no longer counts.
func TestLiveSessions(t *testing.T) {
	q, b := setup(t)
	now := time.Now()
	for _, r := range []struct {
		inst string
		n    int64
		at   time.Time
	}{{"a:8082", 14000, now.Add(-2 * time.Second)}, {"a:8084", 13500, now}, {"b:8082", 999, now.Add(-time.Minute)}} {
		if err := q.ReportSessions(b.ctx, r.inst, r.n, r.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.rdb.HSet(b.ctx, q.Keys().WSInstances(), "garbage", "x").Err(); err != nil {
		t.Fatal(err)
	}
	n, inst, err := q.LiveSessions(b.ctx, now, 15*time.Second)
	if err != nil || n != 27500 || inst != 2 {
		t.Fatalf("LiveSessions = %d sessions, %d instances, %v; want 27500, 2", n, inst, err)
	}
	left := hash(t, b, q.Keys().WSInstances())
	if _, ok := left["b:8082"]; ok || len(left) != 2 {
		t.Errorf("after the read the reports are %v; want the stale and unreadable ones removed", left)
	}
	if err := q.ForgetInstance(b.ctx, "a:8084"); err != nil {
		t.Fatal(err)
	}
	if n, inst, err = q.LiveSessions(b.ctx, now, 15*time.Second); err != nil || n != 14000 || inst != 1 {
		t.Fatalf("after ForgetInstance: %d sessions, %d instances, %v; want 14000, 1", n, inst, err)
	}
}
