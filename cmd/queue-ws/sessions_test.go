package main

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/queue"
)

// Each instance's session count reaches Redis within a period, the API's
// sum follows it, and an instance that stops is no longer counted.
func TestReportSessions(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	q := queue.New(rdb, term)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var a, b atomic.Int64
	a.Store(3)
	b.Store(40)
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); reportSessions(ctxA, q, "h/127.0.0.1:1", a.Load, 20*time.Millisecond, log) }()
	go func() { defer close(doneB); reportSessions(ctxB, q, "h/127.0.0.1:2", b.Load, 20*time.Millisecond, log) }()
	defer func() { stopA(); stopB(); <-doneA; <-doneB }()

	waitSessions := func(want int64, instances int) {
		t.Helper()
		var n int64
		var k int
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n, k, err = q.LiveSessions(context.Background(), time.Now(), time.Second); err == nil && n == want && k == instances {
				return
			}
		}
		t.Fatalf("live sessions %d on %d instances (err %v); want %d on %d", n, k, err, want, instances)
	}
	waitSessions(43, 2)
	a.Store(1000)
	waitSessions(1040, 2)
	stopB()
	<-doneB
	waitSessions(1000, 1)
}
