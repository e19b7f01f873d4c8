package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/enrollq/enrollq/internal/queue"
)

// sessionsReportEvery is how often an instance tells Redis how many sessions
// it holds; the API counts reports up to three periods old (app.Stats).
const sessionsReportEvery = 5 * time.Second

// instanceName names this instance in the sessions report: host and listen
// address.
func instanceName(addr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "queue-ws"
	}
	return host + "/" + addr
}

// reportSessions writes sessions() to Redis every period until ctx ends,
// then removes this instance's report, so the registrar's live view counts
// the students on the registration page across every instance.
func reportSessions(ctx context.Context, q *queue.Redis, instance string, sessions func() int64, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, every)
		if err := q.ReportSessions(rctx, instance, sessions(), time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("queue-ws: report sessions", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := q.ForgetInstance(fctx, instance); err != nil {
				log.Warn("queue-ws: remove the sessions report", "err", err)
			}
			fcancel()
			return
		case <-t.C:
		}
	}
}
