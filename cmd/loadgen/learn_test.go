package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestLearnOneRetries5xx: a student whose GET /me/requests meets nginx's 502
// (an api instance briefly out of reach under the crowd) reads again, as the
// page does on its next tick, instead of counting as never having learned
// its outcomes; a read that keeps failing ends as a learn error.
func TestLearnOneRetries5xx(t *testing.T) {
	defer func(p time.Duration) { learnRetryPause = p }(learnRetryPause)
	learnRetryPause = time.Millisecond
	for _, tc := range []struct {
		name        string
		failures    int64 // 502s before the 200
		wantRetries int64
		wantErrs    int64
	}{
		{"two 502s, then the list", 2, 2, 0},
		{"502 for good", 100, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/me/requests" {
					http.NotFound(w, r)
					return
				}
				if served.Add(1) <= tc.failures {
					w.WriteHeader(http.StatusBadGateway)
					_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"requests":[],"prequeue":[]}`))
			}))
			defer srv.Close()
			r := &run{api: &api{base: srv.URL, hc: srv.Client()}}
			pq := &prequeueRun{refused: map[string]int64{}, learnErrs: map[string]int64{}}
			pq.pending.Add(1)
			st := &student{pl: &preLearn{left: 1}}
			r.learnOne(context.Background(), st, pq)

			if got := pq.learnRetries.Load(); got != tc.wantRetries {
				t.Errorf("%d reads tried again, want %d", got, tc.wantRetries)
			}
			if got := pq.learnErrs["http_502"]; got != tc.wantErrs {
				t.Errorf("learn errors http_502 = %d, want %d", got, tc.wantErrs)
			}
			if got, want := pq.learners.Load(), 1-tc.wantErrs; got != want {
				t.Errorf("%d students learned, want %d", got, want)
			}
			if n := pq.pending.Load(); n != 0 {
				t.Errorf("%d students still pending after the read", n)
			}
			if !st.pl.done {
				t.Error("the student's reading did not end")
			}
		})
	}
}
