package main

import (
	"context"
	"time"
)

// point is one sample of the run's time series (one per second).
type point struct {
	T          float64 `json:"t"`           // seconds since the window opened (-prequeue: since the pre-queue opened)
	Sent       int64   `json:"sent"`        // enrollment requests sent
	Answered   int64   `json:"answered"`    // admission answers (202 and refusals)
	Admitted   int64   `json:"admitted"`    // 202s
	Results    int64   `json:"results"`     // decisions known to loadgen
	Waiting    int64   `json:"waiting"`     // queue: waiting (Redis)
	Inflight   int64   `json:"inflight"`    // queue: popped, undecided
	Decided    int64   `json:"decided"`     // queue's decided counter (all students)
	AnswerRate float64 `json:"answer_rate"` // admission answers per second over the last interval
	AdmitRate  float64 `json:"admit_rate"`  // 202s per second over the last interval
	DrainRate  float64 `json:"drain_rate"`  // decisions per second over the last interval
	WSOpen     int64   `json:"ws_open"`
	HTTPConns  int64   `json:"http_conns"`
}

// rater turns the counters of successive samples into per-second rates.
// Each rate divides by the time between the moments its counters were read:
// loadgen's own counters (at) and the queue's (qAt: Redis's clock when it
// read them, queue.Stats.At). The answer of that read can reach a starved
// loadgen seconds later. Dividing by the time between two loop iterations,
// or between two answers, gave rates of 4,000,000/s: a tick queued behind a
// slow iteration came 3 ms after it, with seconds of counts.
type rater struct {
	prev        point
	prevAt      time.Time
	prevQAt     time.Time // zero until the queue was read
	minInterval time.Duration
}

// due reports whether a sample at at is far enough from the last one to be
// taken (half the period): a tick that waited behind a slow sample is skipped.
func (r *rater) due(at time.Time) bool {
	return r.prevAt.IsZero() || at.Sub(r.prevAt) >= r.minInterval
}

// add fills p's rates. p's own counters were read at at; its queue fields at
// qAt, or not at all (qAt zero: they carry the last values, rate 0).
func (r *rater) add(p *point, at, qAt time.Time) {
	if qAt.IsZero() {
		p.Waiting, p.Inflight, p.Decided = r.prev.Waiting, r.prev.Inflight, r.prev.Decided
	}
	if !r.prevAt.IsZero() {
		if dt := at.Sub(r.prevAt).Seconds(); dt > 0 {
			p.AnswerRate = round1(float64(p.Answered-r.prev.Answered) / dt)
			p.AdmitRate = round1(float64(p.Admitted-r.prev.Admitted) / dt)
		}
	}
	if !qAt.IsZero() {
		if !r.prevQAt.IsZero() {
			if dt := qAt.Sub(r.prevQAt).Seconds(); dt > 0 {
				p.DrainRate = round1(float64(p.Decided-r.prev.Decided) / dt)
			}
		}
		r.prevQAt = qAt
	}
	r.prev, r.prevAt = *p, at
}

// monitor prints a progress line and records a point every interval until
// ctx ends.
func (r *run) monitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var decided0 int64 = -1
	if r.q != nil { // the queue's decided counter before the run: the series counts from here
		if st, err := r.q.Stats(ctx); err == nil {
			decided0 = st.Counters["decided"]
		}
	}
	rt := rater{minInterval: every / 2}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		if !rt.due(at) {
			continue
		}
		r.rss.sample()
		p := point{
			Sent: r.c.sent.Load(), Answered: r.c.answered.Load(), Admitted: r.c.admitted.Load(),
			WSOpen: r.wsOpen.Load(), HTTPConns: r.httpSockets.Load(),
		}
		open := r.seriesZero()
		if !open.IsZero() {
			p.T = round3(at.Sub(open).Seconds())
		}
		p.Results = int64(len(r.tr.snapshot()) - r.unresolved())
		var qAt time.Time
		if r.q != nil {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := r.q.Stats(sctx)
			cancel()
			if err == nil {
				qAt = st.At
				p.Waiting, p.Inflight = st.Waiting, st.Inflight
				if decided0 < 0 {
					decided0 = st.Counters["decided"]
				}
				p.Decided = st.Counters["decided"] - decided0
			}
		}
		rt.add(&p, at, qAt)
		if !open.IsZero() {
			r.seriesMu.Lock()
			r.series = append(r.series, p)
			r.seriesMu.Unlock()
		}
		r.logf("sent %d answered %d admitted %d (%.0f/s) decided %d (%.0f/s) known %d | depth %d (in flight %d) | ws %d http %d",
			p.Sent, p.Answered, p.Admitted, p.AdmitRate, p.Decided, p.DrainRate, p.Results,
			p.Waiting+p.Inflight, p.Inflight, p.WSOpen, p.HTTPConns)
	}
}
