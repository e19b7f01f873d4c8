package app

import (
	"context"
	"fmt"
	"github.com/enrollq/enrollq/internal/queue"
	"sync"
	"time"
)

// LiveStats is the registrar's live view of a run.
type LiveStats struct {
	At       time.Time `json:"at"`
	Open     bool      `json:"open"`
	Waiting  int64     `json:"waiting"`  // requests not yet popped
	Inflight int64     `json:"inflight"` // popped, being decided
	Pending  int64     `json:"pending"`  // waiting + in flight: the queue length
	// Counters since the term's queue was created (Redis).
	Admitted        int64            `json:"admitted"`
	Decided         int64            `json:"decided"`
	SoldOut         int64            `json:"sold_out_at_admission"`
	DecidedByStatus map[string]int64 `json:"decided_by_status"`
	// Rates over the last few seconds, from the counters sampled by this
	// instance at each call.
	AdmittedPerSec float64 `json:"admitted_per_sec"`
	DecidedPerSec  float64 `json:"decided_per_sec"`
	// Students on the registration page: open queue-ws sessions summed over
	// the instances that reported in the last 15 s (three report periods).
	WSSessions  int64 `json:"ws_sessions"`
	WSInstances int   `json:"ws_instances"`
	// The pre-queue and its draw's progress (cursor of total).
	Prequeue queue.DrawStatus `json:"prequeue"`
	// From MariaDB (the replica), refreshed at most once a second.
	Fill       []CourseFill  `json:"fill"`       // fullest sections first
	Rejections []ReasonCount `json:"rejections"` // rejected decisions by reason
	Totals     FillTotals    `json:"totals"`
}

// CourseFill is one section's fill.
type CourseFill struct {
	CourseID int64   `json:"course_id" db:"id"`
	Code     string  `json:"code" db:"code"`
	Section  string  `json:"section" db:"section"`
	Title    string  `json:"title" db:"title"`
	Capacity int     `json:"capacity" db:"capacity"`
	Enrolled int     `json:"enrolled" db:"enrolled"`
	Waitlist int     `json:"waitlist" db:"waitlist"`
	Fill     float64 `json:"fill" db:"fill"` // enrolled / capacity (1 when capacity is 0)
}

// ReasonCount is the number of rejections with one reason.
type ReasonCount struct {
	Reason string `json:"reason" db:"reason"`
	Count  int64  `json:"count" db:"n"`
}

// FillTotals sums every section.
type FillTotals struct {
	Sections int64 `json:"sections" db:"sections"`
	Capacity int64 `json:"capacity" db:"capacity"`
	Enrolled int64 `json:"enrolled" db:"enrolled"`
	Waitlist int64 `json:"waitlist" db:"waitlist"`
}

type statSample struct {
	at                time.Time
	admitted, decided int64
}

// statsState holds the samples behind the rates and the cached SQL part.
type statsState struct {
	mu      sync.Mutex
	samples []statSample
	sqlAt   time.Time
	sqlTopN int
	fill    []CourseFill
	rej     []ReasonCount
	totals  FillTotals
}

// Stats returns the live numbers; topN bounds the fill list.
func (s *Service) Stats(ctx context.Context, topN int) (LiveStats, error) {
	now := time.Now()
	st := LiveStats{At: now.UTC()}
	qs, err := s.Queue.Stats(ctx)
	if err != nil {
		return st, err
	}
	open, err := s.Queue.IsOpen(ctx)
	if err != nil {
		return st, err
	}
	st.Open, st.Waiting, st.Inflight, st.Pending = open, qs.Waiting, qs.Inflight, qs.Pending
	st.Admitted, st.Decided, st.SoldOut = qs.Counters["admitted"], qs.Counters["decided"], qs.Counters["sold_out"]
	if st.WSSessions, st.WSInstances, err = s.Queue.LiveSessions(ctx, now, 15*time.Second); err != nil {
		return st, err
	}
	if st.Prequeue, err = s.Queue.DrawStatus(ctx); err != nil {
		return st, err
	}
	st.DecidedByStatus = map[string]int64{}
	for _, k := range []string{"enrolled", "rejected", "cancelled"} {
		st.DecidedByStatus[k] = qs.Counters["decided_"+k]
	}

	ss := &s.stats
	ss.mu.Lock()
	ss.samples = append(ss.samples, statSample{now, st.Admitted, st.Decided})
	// Keep a minute; rate over the oldest sample at most 5 s old (and at
	// least 0.5 s, so two polls in a row do not divide by nothing).
	for len(ss.samples) > 1 && now.Sub(ss.samples[0].at) > time.Minute {
		ss.samples = ss.samples[1:]
	}
	for _, p := range ss.samples {
		d := now.Sub(p.at)
		if d <= 5*time.Second && d >= 500*time.Millisecond {
			st.AdmittedPerSec = float64(st.Admitted-p.admitted) / d.Seconds()
			st.DecidedPerSec = float64(st.Decided-p.decided) / d.Seconds()
			break
		}
	}
	fresh := now.Sub(ss.sqlAt) < time.Second && ss.sqlTopN == topN
	fill, rej, totals := ss.fill, ss.rej, ss.totals
	ss.mu.Unlock()

	if !fresh {
		if fill, rej, totals, err = s.fillStats(ctx, topN); err != nil {
			return st, err
		}
		ss.mu.Lock()
		ss.sqlAt, ss.sqlTopN, ss.fill, ss.rej, ss.totals = now, topN, fill, rej, totals
		ss.mu.Unlock()
	}
	st.Fill, st.Rejections, st.Totals = fill, rej, totals
	return st, nil
}

func (s *Service) fillStats(ctx context.Context, topN int) ([]CourseFill, []ReasonCount, FillTotals, error) {
	db := s.replica()
	fill := []CourseFill{}
	const qFill = `SELECT c.id, c.code, c.section, c.title, c.capacity, c.enrolled,
		(SELECT COUNT(*) FROM waitlist w WHERE w.course_id = c.id) AS waitlist,
		IF(c.capacity = 0, 1, c.enrolled / c.capacity) AS fill
		FROM courses c WHERE c.deleted_at IS NULL ORDER BY fill DESC, c.enrolled DESC, c.id LIMIT ?`
	if err := db.SelectContext(ctx, &fill, qFill, topN); err != nil {
		return nil, nil, FillTotals{}, fmt.Errorf("stats: fill: %w", err)
	}
	rej := []ReasonCount{}
	const qRej = `SELECT reason, COUNT(*) AS n FROM enrollment_requests WHERE status = 'rejected' GROUP BY reason ORDER BY n DESC`
	if err := db.SelectContext(ctx, &rej, qRej); err != nil {
		return nil, nil, FillTotals{}, fmt.Errorf("stats: rejections: %w", err)
	}
	var t FillTotals
	const qTot = `SELECT COUNT(*) AS sections, COALESCE(SUM(capacity), 0) AS capacity, COALESCE(SUM(enrolled), 0) AS enrolled,
		(SELECT COUNT(*) FROM waitlist) AS waitlist FROM courses WHERE deleted_at IS NULL`
	if err := db.GetContext(ctx, &t, qTot); err != nil {
		return nil, nil, FillTotals{}, fmt.Errorf("stats: totals: %w", err)
	}
	return fill, rej, t, nil
}
