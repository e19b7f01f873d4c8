package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/app"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

// BenchmarkAdmissionHTTP measures POST /api/v1/enrollments through the whole
// Gin handler chain (auth, JSON, window check, admit.lua, response) from
// parallel callers, in process (no sockets), against the real Redis.
//
//	go test -run '^$' -bench BenchmarkAdmissionHTTP ./cmd/api/
func BenchmarkAdmissionHTTP(b *testing.B) {
	db := dbtest.New(b)
	rdb, term := dbtest.Redis(b)
	q := queue.New(rdb, term)
	q.RateLimit = 0
	ctx := context.Background()
	var seats []enroll.SeatCount
	for c := int64(1); c <= 100; c++ {
		seats = append(seats, enroll.SeatCount{ID: c, Capacity: 1 << 30, Open: true})
	}
	if err := q.Reconcile(ctx, seats, 0); err != nil {
		b.Fatal(err)
	}
	_ = q.SetOpen(ctx, true)
	signer := auth.NewSigner("bench")
	svc := &app.Service{DB: db.DB, Queue: q, Store: enroll.NewStore(db.DB, term), Signer: signer,
		TokenTTL: time.Hour, WSTokenTTL: time.Minute}
	reg := prometheus.NewRegistry()
	s := &server{svc: svc, signer: signer, metrics: newMetrics(reg), reg: reg, wsURL: "/ws",
		ready: func(context.Context) map[string]any { return map[string]any{"ok": true} }}
	h := s.routes()
	slog.SetDefault(slog.New(slog.DiscardHandler))

	tokens := make([]string, 4096)
	for i := range tokens {
		tokens[i] = signer.Issue(auth.Claims{Kind: auth.KindStudent, Subject: int64(i + 1), Year: 1}, time.Hour)
	}
	var n atomic.Int64
	// 256 callers on 2 cores, as many as loadgen keeps in flight.
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			// a fresh (student, course) pair each time: token i%4096, course spreads pairs
			tok := tokens[i%int64(len(tokens))]
			course := (i/int64(len(tokens)))%100 + 1
			req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", strings.NewReader(fmt.Sprintf(`{"course_id":%d}`, course)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			// As behind nginx on loopback with no forwarded client address:
			// the per-IP budget exempts loopback, so admission is admit.lua's
			// single round trip (a forwarded public address adds the per-IP
			// budget's round trip).
			req.RemoteAddr = "127.0.0.1:40000"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusAccepted && w.Code != http.StatusConflict {
				body, _ := io.ReadAll(w.Body)
				b.Errorf("status %d: %s", w.Code, body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
}
