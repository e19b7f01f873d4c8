package main

// Issue #15: a login's real expiry, dependency outages answered 503
// unavailable, and idempotent admission (Idempotency-Key).

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestLoginExpiresAt: expires_at is the token's own expiry, TokenTTL from
// now (it was 1970-01-01: the claims Login returns are those before
// signing), and the token is good until then.
func TestLoginExpiresAt(t *testing.T) {
	e := newTestEnv(t, 1)
	before := time.Now()
	r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": testPassword})
	e.mustStatus(r, 200)
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	mustJSON(t, r.Body, &out)
	want := before.Add(e.srv.svc.TokenTTL)
	if d := out.ExpiresAt.Sub(want); d < -3*time.Second || d > 3*time.Second {
		t.Fatalf("expires_at %s, want about %s (now + %s)", out.ExpiresAt, want, e.srv.svc.TokenTTL)
	}
	cl, err := e.srv.signer.Verify(out.Token, auth.KindStudent)
	if err != nil {
		t.Fatal(err)
	}
	if !time.Unix(cl.Expires, 0).Equal(out.ExpiresAt) {
		t.Errorf("expires_at %s, the token says %s", out.ExpiresAt, time.Unix(cl.Expires, 0).UTC())
	}
}

// TestRedisDownIs503: with Redis unreachable (a closed port), an admission
// answers 503 unavailable with Retry-After and both messages, not 500.
func TestRedisDownIs503(t *testing.T) {
	db := dbtest.New(t)
	courses := dbtest.SeedCourses(t, db.DB, testCourses)
	hash, err := auth.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	students := dbtest.SeedStudents(t, db.DB, 1, 18, hash)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	rdb := redis.NewClient(&redis.Options{Addr: dead, DialTimeout: 500 * time.Millisecond, DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })

	cfg := config.FromEnv()
	cfg.Dev = true // development mode, explicitly (issue #16)
	cfg.Term, cfg.TokenSecret, cfg.BcryptCost = dbtest.UniqueName("t"), testSecret, 4
	cfg.AdminUser, cfg.AdminPassword = testAdminUser, testAdminPassword
	cfg.WSPublicURL, cfg.WebDir, cfg.TokenTTL = "/ws", "", time.Hour
	reg := prometheus.NewRegistry()
	srv, err := newServer(context.Background(), cfg, &deps{db: db.DB, replica: db.DB, rdb: rdb}, reg, newMetrics(reg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, srv: srv, h: srv.routes(), db: db, courses: courses, students: students}

	check := func(what string, r resp) {
		t.Helper()
		if r.Code != 503 || r.errCode() != "unavailable" || r.Header.Get("Retry-After") != "1" {
			t.Fatalf("%s with Redis down: %d Retry-After=%q %s", what, r.Code, r.Header.Get("Retry-After"), r.Body)
		}
		m := r.json(t)["error"].(map[string]any)
		if m["message"] != errUnavailable.Message || m["message_en"] != errUnavailable.MessageEN {
			t.Errorf("%s: messages %v", what, m)
		}
	}
	check("POST /enrollments", e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": courses[4]}))
	check("POST /enrollments with a key", e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": courses[4]},
		idempotencyHeader, "k-1"))
	// Per section of a cart registration, the same error object.
	e.mustStatus(e.do("POST", "/api/v1/cart", e.token(0), map[string]any{"course_id": courses[4]}), 201)
	r := e.do("POST", "/api/v1/cart/register", e.token(0), nil)
	e.mustStatus(r, 200)
	if !strings.Contains(string(r.Body), `"code":"unavailable"`) {
		t.Errorf("cart registration with Redis down: %s", r.Body)
	}
	var n int
	if err := db.Get(&n, "SELECT COUNT(*) FROM enrollment_requests"); err != nil || n != 0 {
		t.Errorf("requests recorded: %d %v", n, err)
	}
}

// admitted is the 202 answer of POST /enrollments.
type admitted struct {
	Status    string `json:"status"`
	RequestID int64  `json:"request_id"`
	Ticket    int64  `json:"ticket"`
	Position  int64  `json:"position"`
}

func (e *testEnv) waiting() int64 {
	e.t.Helper()
	st, err := e.srv.svc.Queue.Stats(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Waiting + st.Inflight
}

// TestIdempotentEnrollment: a retry with the same Idempotency-Key gets the
// original answer — the same request, or the same refusal even after a seat
// freed — and queues nothing; another key is a new request as before.
func TestIdempotentEnrollment(t *testing.T) {
	e := newTestEnv(t, 2)
	c := e.courses
	tok := e.token(0)
	enroll := func(tok string, course int64, key string) resp {
		t.Helper()
		if key == "" {
			return e.do("POST", "/api/v1/enrollments", tok, map[string]any{"course_id": course})
		}
		return e.do("POST", "/api/v1/enrollments", tok, map[string]any{"course_id": course}, idempotencyHeader, key)
	}

	first := enroll(tok, c[4], "click-1")
	e.mustStatus(first, 202)
	if v := first.Header.Get(replayedHeader); v != "" {
		t.Errorf("first answer has %s: %q", replayedHeader, v)
	}
	var a1 admitted
	mustJSON(t, first.Body, &a1)
	for i := 0; i < 2; i++ {
		again := enroll(tok, c[4], "click-1")
		e.mustStatus(again, 202)
		var a2 admitted
		mustJSON(t, again.Body, &a2)
		if a2 != a1 {
			t.Errorf("replay %d: %+v, first answer %+v", i, a2, a1)
		}
		if again.Header.Get(replayedHeader) != "true" {
			t.Errorf("replay %d: no %s: true", i, replayedHeader)
		}
	}
	if n := e.waiting(); n != 1 {
		t.Fatalf("%d requests in the line after a replayed admission, want 1", n)
	}
	// Another key (or none) is a new request: refused as today.
	for _, key := range []string{"click-2", ""} {
		r := enroll(tok, c[4], key)
		if r.Code != 409 || r.errCode() != "already_queued" || r.Header.Get(replayedHeader) != "" {
			t.Fatalf("key %q: %d %s", key, r.Code, r.Body)
		}
		if id := r.json(t)["error"].(map[string]any)["request_id"]; id != float64(a1.RequestID) {
			t.Errorf("key %q: already_queued names %v, want %d", key, id, a1.RequestID)
		}
	}

	// A refusal is replayed too: student 1 is told sold_out (section 2 has
	// one seat, taken by student 0); the seat frees; the same key still
	// answers sold_out, a new click is admitted.
	r0 := enroll(tok, c[2], "s0")
	e.mustStatus(r0, 202)
	var held admitted
	mustJSON(t, r0.Body, &held)
	tok1 := e.token(1)
	if r := enroll(tok1, c[2], "late-1"); r.Code != 409 || r.errCode() != "sold_out" {
		t.Fatalf("section 2 full: %d %s", r.Code, r.Body)
	}
	if r := enroll(tok1, c[2], "late-1"); r.Code != 409 || r.errCode() != "sold_out" || r.Header.Get(replayedHeader) != "true" {
		t.Fatalf("sold_out replayed: %d %s=%q %s", r.Code, replayedHeader, r.Header.Get(replayedHeader), r.Body)
	}
	e.mustStatus(e.do("DELETE", "/api/v1/requests/"+strconv.FormatInt(held.RequestID, 10), tok, nil), 200)
	if r := enroll(tok1, c[2], "late-1"); r.Code != 409 || r.errCode() != "sold_out" || r.Header.Get(replayedHeader) != "true" {
		t.Fatalf("sold_out replayed after the seat freed: %d %s", r.Code, r.Body)
	}
	e.mustStatus(enroll(tok1, c[2], "late-2"), 202)

	// Keys are per student: student 1's "click-1" is not student 0's.
	e.mustStatus(enroll(tok1, c[4], "click-1"), 202)

	e.drain()
	var rows []struct {
		Student int64  `db:"student_id"`
		Course  int64  `db:"course_id"`
		Status  string `db:"status"`
	}
	if err := e.db.Select(&rows, "SELECT student_id, course_id, status FROM enrollment_requests ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	// s0 c4, s0 c2 (cancelled), s1 c2, s1 c4: one request each.
	if len(rows) != 4 {
		t.Errorf("requests in MariaDB: %+v, want 4", rows)
	}
}

// TestBadIdempotencyKey: a malformed key is 400 bad_idempotency_key with
// both messages and admits nothing.
func TestBadIdempotencyKey(t *testing.T) {
	e := newTestEnv(t, 1)
	tok := e.token(0)
	e.mustStatus(e.do("POST", "/api/v1/cart", tok, map[string]any{"course_id": e.courses[4]}), 201)
	body := map[string]any{"course_id": e.courses[4]}
	check := func(what string, r resp) {
		t.Helper()
		if r.Code != 400 || r.errCode() != "bad_idempotency_key" {
			t.Errorf("%s: %d %s", what, r.Code, r.Body)
			return
		}
		m := r.json(t)["error"].(map[string]any)
		if m["message"] != errBadIdemKey.Message || m["message_en"] != errBadIdemKey.MessageEN || m["message"] == "" {
			t.Errorf("%s: messages %v", what, m)
		}
	}
	for _, key := range []string{"", "has space", strings.Repeat("k", 65), "키-1", "a/b", "a,b", "a\tb"} {
		for _, path := range []string{"/api/v1/enrollments", "/api/v1/cart/register"} {
			check(path+" key "+strconv.Quote(key), e.do("POST", path, tok, body, idempotencyHeader, key))
		}
	}
	// Sent twice, the header is ambiguous: refused.
	req := httptest.NewRequest("POST", "/api/v1/enrollments", strings.NewReader(`{"course_id":`+strconv.FormatInt(e.courses[4], 10)+`}`))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Add(idempotencyHeader, "a")
	req.Header.Add(idempotencyHeader, "b")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	check("two keys", resp{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()})
	if n := e.waiting(); n != 0 {
		t.Errorf("%d requests in the line after bad keys, want 0", n)
	}
	// 64 characters of every allowed kind are a key.
	e.mustStatus(e.do("POST", "/api/v1/enrollments", tok, body, idempotencyHeader, strings.Repeat("aZ09_-.:", 8)), 202)
}

// TestIdempotentCartRegister: a retried cart registration with the same key
// answers every section as the first did (admissions and refusals) and
// queues nothing more; another key is a new registration.
func TestIdempotentCartRegister(t *testing.T) {
	e := newTestEnv(t, 2)
	c := e.courses
	tok := e.token(0)
	// Section 2 (one seat) is taken by student 1 first: sold_out for 0.
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(1), map[string]any{"course_id": c[2]}), 202)
	for _, id := range []int64{c[4], c[2], c[0]} {
		e.mustStatus(e.do("POST", "/api/v1/cart", tok, map[string]any{"course_id": id}), 201)
	}
	type result struct {
		CourseID  int64 `json:"course_id"`
		Status    string
		RequestID int64 `json:"request_id"`
		Ticket    int64
		Error     struct{ Code string }
		Replayed  bool
	}
	register := func(key string) ([]result, resp) {
		t.Helper()
		r := e.do("POST", "/api/v1/cart/register", tok, nil, idempotencyHeader, key)
		e.mustStatus(r, 200)
		var out struct{ Results []result }
		mustJSON(t, r.Body, &out)
		return out.Results, r
	}
	first, r := register("cart-1")
	if len(first) != 3 || first[0].Status != "queued" || first[1].Error.Code != "sold_out" || first[2].Status != "queued" {
		t.Fatalf("first registration: %s", r.Body)
	}
	if r.Header.Get(replayedHeader) != "" {
		t.Errorf("first registration has %s", replayedHeader)
	}
	again, r := register("cart-1")
	if r.Header.Get(replayedHeader) != "true" {
		t.Errorf("retried registration: no %s: true: %s", replayedHeader, r.Body)
	}
	for i := range first {
		want := first[i]
		want.Replayed = true
		if again[i] != want {
			t.Errorf("section %d retried: %+v, first %+v", i, again[i], first[i])
		}
	}
	if n := e.waiting(); n != 3 { // student 1's and student 0's two
		t.Errorf("%d requests in the line, want 3", n)
	}
	// A new key is a new registration: the admitted sections are already
	// queued, the full one still full.
	other, _ := register("cart-2")
	if other[0].Error.Code != "already_queued" || other[1].Error.Code != "sold_out" || other[2].Error.Code != "already_queued" {
		t.Errorf("new key: %+v", other)
	}
	if n := e.waiting(); n != 3 {
		t.Errorf("%d requests in the line, want 3", n)
	}
}
