package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
)

// TestFireRetriesLostAnswers: a student's admission whose answer is lost
// is sent again under the same Idempotency-Key, like a browser does, and
// classified by the answer that finally comes: the server admitted the
// first try and the connection dropped before its 202 → the retry's
// replayed 202 is the admission (its id is tracked, verify gets it); a 503
// unavailable then a 202 → admitted; 502 to the end → an unknown outcome,
// remembered for the MariaDB look-up after the run, not a refusal.
func TestFireRetriesLostAnswers(t *testing.T) {
	defer func(b backoff) { lostRetry = b }(lostRetry)
	lostRetry = backoff{tries: 4, base: time.Millisecond, max: 5 * time.Millisecond}

	const (
		dropped  = 101 // admitted, the first answer dropped
		gateway  = 102 // 502 every time
		degraded = 103 // 503 unavailable once, then admitted
	)
	var mu sync.Mutex
	keys := map[int64][]string{}   // course → the key of every request
	admitted := map[string]int64{} // key → request id: what the server recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			CourseID int64 `json:"course_id"`
		}
		if r.URL.Path != "/api/v1/enrollments" || json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		keys[in.CourseID] = append(keys[in.CourseID], key)
		n := len(keys[in.CourseID])
		id, seen := admitted[key]
		mu.Unlock()
		answer := func(id int64, replayed bool) {
			if replayed {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"queued","request_id":` + strconv.FormatInt(id, 10) + `,"ticket":` + strconv.FormatInt(id, 10) + `,"position":3}`))
		}
		fail := func(status int, code string) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"…","message_en":"…"}}`))
		}
		switch {
		case seen:
			answer(id, true)
		case in.CourseID == dropped && n == 1:
			// Admitted, then the connection goes before the answer.
			mu.Lock()
			admitted[key] = 500
			mu.Unlock()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case in.CourseID == gateway:
			fail(http.StatusBadGateway, "bad_gateway")
		case in.CourseID == degraded && n == 1:
			fail(http.StatusServiceUnavailable, "unavailable")
		case in.CourseID == degraded:
			mu.Lock()
			admitted[key] = 501
			mu.Unlock()
			answer(501, false)
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	}))
	defer srv.Close()

	r, err := newRun(config{BaseURL: srv.URL, Concurrency: 1, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh connection per request, so that net/http does not itself
	// resend the dropped one (it may, for a request with an
	// Idempotency-Key on a reused connection).
	r.api = &api{base: srv.URL, hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}}
	st := &student{tok: students.Token{StudentID: 7, Token: "tok"}, cart: []int64{dropped, gateway, degraded},
		cancel: []bool{false, false, false}}
	r.fire(context.Background(), st, time.Now())

	// The admitted ones, by their ids; the 502 one is not.
	for id, course := range map[int64]int64{500: dropped, 501: degraded} {
		rec := r.tr.get(id)
		if rec == nil || rec.Course != course || rec.Student != 7 {
			t.Errorf("request %d (course %d) not tracked as admitted: %+v", id, course, rec)
		}
	}
	if n := len(r.tr.snapshot()); n != 2 {
		t.Errorf("%d requests tracked, want 2", n)
	}
	if got := r.c.admitted.Load(); got != 2 {
		t.Errorf("admitted %d, want 2", got)
	}
	if len(r.c.refused) != 0 {
		t.Errorf("refusals %v: a lost answer is not a refusal", r.c.refused)
	}
	if got := r.c.transport.Load(); got != 1 {
		t.Errorf("transport errors %d, want 1", got)
	}
	if got, want := r.c.unavailable.Load(), int64(lostRetry.tries+1); got != want {
		t.Errorf("502/503/504 answers %d, want %d (every try of the 502 one, one 503)", got, want)
	}
	if got, want := r.c.transportRetries.Load(), int64(1+(lostRetry.tries-1)+1); got != want {
		t.Errorf("retries %d, want %d", got, want)
	}
	if got := r.c.replayed.Load(); got != 1 {
		t.Errorf("replayed answers %d, want 1", got)
	}
	if got := r.c.unknownOutcome.Load(); got != 1 || !slices.Equal(r.c.unknown, [][2]int64{{7, gateway}}) {
		t.Errorf("unknown outcomes %d %v, want the 502 one", got, r.c.unknown)
	}
	for _, p := range [][2]int64{{7, dropped}, {7, gateway}, {7, degraded}} {
		if !slices.Contains(r.c.ambiguous, p) {
			t.Errorf("%v not remembered for the look-up in MariaDB: %v", p, r.c.ambiguous)
		}
	}

	// One key per click: the same on every try, another for each section,
	// and one the API accepts.
	valid := regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	seen := map[string]bool{}
	for course, ks := range keys {
		if len(ks) < 2 || !valid.MatchString(ks[0]) || seen[ks[0]] {
			t.Errorf("course %d: keys %q", course, ks)
			continue
		}
		seen[ks[0]] = true
		for _, k := range ks {
			if k != ks[0] {
				t.Errorf("course %d: a retry under another key: %q", course, ks)
			}
		}
	}
	if n := len(keys[gateway]); n != lostRetry.tries {
		t.Errorf("the 502 one was sent %d times, want %d", n, lostRetry.tries)
	}
}

// TestClassifyLost: of the requests MariaDB holds for pairs whose answer
// was lost, the ones loadgen tracks are accounted for, the others join the
// admitted set, and those of never-answered pairs count as recovered.
func TestClassifyLost(t *testing.T) {
	rows := []pairReq{
		{ID: 500, Student: 7, Course: 101}, // a retry's 202 brought it: tracked
		{ID: 502, Student: 7, Course: 102}, // never answered: recovered
		{ID: 503, Student: 8, Course: 5},   // lost once, then a refusal (a server without keys)
		{ID: 502, Student: 7, Course: 102}, // the pair noted twice
	}
	got := classifyLost(rows, func(id int64) bool { return id == 500 }, [][2]int64{{7, 102}, {9, 9}})
	if !slices.Equal(got.IDs, []int64{502, 503}) || got.Unacknowledged != 2 || got.Recovered != 1 {
		t.Errorf("classifyLost = %+v, want ids [502 503], 2 unacknowledged, 1 recovered", got)
	}
}

// TestBackoff: like the web client, 0.5, 1, 2, 4 s, at least Retry-After,
// at most the cap; a lost answer is transport or 502/503/504 but not 503
// opening.
func TestBackoff(t *testing.T) {
	b := backoff{tries: 5, base: 500 * time.Millisecond, max: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 4: 4 * time.Second, 5: 5 * time.Second} {
		if got := b.delay(n, 0); got != want {
			t.Errorf("delay(%d) = %s, want %s", n, got, want)
		}
	}
	if got := b.delay(1, time.Second); got != time.Second {
		t.Errorf("Retry-After 1s: %s", got)
	}
	if got := b.delay(1, time.Minute); got != 5*time.Second {
		t.Errorf("Retry-After 1m: %s, want the cap", got)
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.DeadlineExceeded, true},
		{&apiError{Status: 502, Code: "bad_gateway"}, true},
		{&apiError{Status: 503, Code: "unavailable"}, true},
		{&apiError{Status: 504, Code: "gateway_timeout"}, true},
		{&apiError{Status: 503, Code: "opening"}, false},
		{&apiError{Status: 409, Code: "sold_out"}, false},
		{&apiError{Status: 500, Code: "internal"}, false},
	} {
		if got := answerLost(c.err); got != c.want {
			t.Errorf("answerLost(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
