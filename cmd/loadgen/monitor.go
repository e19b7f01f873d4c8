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

// monitor prints a progress line and records a point every interval until
// ctx ends.
func (r *run) monitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var prev point
	var decided0 int64 = -1
	if r.q != nil { // the queue's decided counter before the run: the series counts from here
		if st, err := r.q.Stats(ctx); err == nil {
			decided0 = st.Counters["decided"]
		}
	}
	prevAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.rss.sample()
		p := point{
			Sent: r.c.sent.Load(), Answered: r.c.answered.Load(), Admitted: r.c.admitted.Load(),
			WSOpen: r.wsOpen.Load(), HTTPConns: r.httpSockets.Load(),
		}
		open := r.seriesZero()
		if !open.IsZero() {
			p.T = round3(time.Since(open).Seconds())
		}
		p.Results = int64(len(r.tr.snapshot()) - r.unresolved())
		if r.q != nil {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := r.q.Stats(sctx)
			cancel()
			if err == nil {
				p.Waiting, p.Inflight = st.Waiting, st.Inflight
				if decided0 < 0 {
					decided0 = st.Counters["decided"]
				}
				p.Decided = st.Counters["decided"] - decided0
			}
		}
		dt := time.Since(prevAt).Seconds()
		prevAt = time.Now()
		if dt > 0 {
			p.AnswerRate = round1(float64(p.Answered-prev.Answered) / dt)
			p.AdmitRate = round1(float64(p.Admitted-prev.Admitted) / dt)
			p.DrainRate = round1(float64(p.Decided-prev.Decided) / dt)
		}
		prev = p
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
