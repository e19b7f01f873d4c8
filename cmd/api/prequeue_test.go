package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPrequeueFlow: the registrar opens the pre-queue while the window is
// closed; students' requests become entries (202 prequeued, no ticket) and
// show in "my requests"; bad input changes nothing; opening the window
// draws them, every entry getting a ticket (or, past capacity, a sold-out
// refusal the student can read) before any later arrival; the drawn
// requests are then decided like any other and never oversell.
func TestPrequeueFlow(t *testing.T) {
	const n = 12
	e := newTestEnv(t, n)
	admin := e.adminToken()
	e.mustStatus(e.do("POST", "/api/v1/admin/window", admin, map[string]any{"open": false}), 200)
	// Closed window, no pre-queue: refused as before.
	if r := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}); r.errCode() != "window_closed" {
		t.Fatalf("closed window: %d %s", r.Code, r.Body)
	}
	// Class-year windows and the pre-queue do not mix: refused, nothing changes.
	win := []map[string]any{{"year": 1, "opens_at": time.Now().Add(time.Hour), "closes_at": time.Now().Add(2 * time.Hour)}}
	e.mustStatus(e.do("PUT", "/api/v1/admin/windows", admin, map[string]any{"windows": win}), 200)
	if r := e.do("POST", "/api/v1/admin/prequeue", admin, map[string]any{"open": true}); r.errCode() != "prequeue_with_windows" {
		t.Fatalf("pre-queue with class-year windows: %d %s", r.Code, r.Body)
	}
	e.mustStatus(e.do("PUT", "/api/v1/admin/windows", admin, map[string]any{"windows": []any{}}), 200)
	if r := e.do("POST", "/api/v1/admin/prequeue", admin, map[string]any{}); r.errCode() != "bad_request" {
		t.Fatalf("missing open: %d %s", r.Code, r.Body)
	}
	if m := e.do("GET", "/api/v1/admin/prequeue", admin, nil).json(t); m["open"] != false || m["students"].(float64) != 0 {
		t.Fatalf("pre-queue after refused calls: %v", m)
	}
	r := e.do("POST", "/api/v1/admin/prequeue", admin, map[string]any{"open": true})
	e.mustStatus(r, 200)
	if m := r.json(t); m["open"] != true {
		t.Fatalf("open pre-queue: %s", r.Body)
	}

	// Every student asks for PHY1001 (capacity 1) and KOR1001 (30).
	for i := range n {
		for j, c := range []int64{e.courses[2], e.courses[4]} {
			r := e.do("POST", "/api/v1/enrollments", e.token(i), map[string]any{"course_id": c})
			e.mustStatus(r, 202)
			m := r.json(t)
			if m["status"] != "prequeued" || m["request_id"] != nil || m["entries"].(float64) != float64(j+1) || m["students"].(float64) != float64(i+1) {
				t.Fatalf("student %d course %d: %s", i, c, r.Body)
			}
		}
	}
	if r := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}); r.errCode() != "already_prequeued" {
		t.Fatalf("same course twice: %d %s", r.Code, r.Body)
	}
	if r := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": 999999}); r.errCode() != "unknown_course" {
		t.Fatalf("unknown course: %d %s", r.Code, r.Body)
	}
	mine := e.do("GET", "/api/v1/me/requests", e.token(0), nil).json(t)
	pre := mine["prequeue"].([]any)
	if len(pre) != 2 || pre[0].(map[string]any)["status"] != "prequeued" || pre[0].(map[string]any)["code"] == "" {
		t.Fatalf("my pre-queue before the draw: %v", mine)
	}
	if m := e.do("GET", "/api/v1/admin/stats", admin, nil).json(t)["prequeue"].(map[string]any); m["students"].(float64) != n || m["entries"].(float64) != 2*n {
		t.Fatalf("stats pre-queue: %v", m)
	}

	// Opening draws: 2n entries in, then the window opens.
	e.mustStatus(e.do("POST", "/api/v1/admin/window", admin, map[string]any{"open": true}), 200)
	st := e.do("GET", "/api/v1/admin/prequeue", admin, nil).json(t)
	if st["state"] != "done" || st["total"].(float64) != 2*n || st["cursor"].(float64) != 2*n || st["open"] != false {
		t.Fatalf("after the opening: %v", st)
	}
	// A later arrival is behind every drawn entry.
	late := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[3]})
	e.mustStatus(late, 202)
	if m := late.json(t); m["status"] != "queued" || m["position"].(float64) <= 2*n-float64(n-1) {
		t.Fatalf("late arrival: %s", late.Body)
	}
	drawn, soldOut := 0, 0
	for i := range n {
		for _, it := range e.do("GET", "/api/v1/me/requests", e.token(i), nil).json(t)["prequeue"].([]any) {
			m := it.(map[string]any)
			switch {
			case m["status"] == "drawn" && m["request_id"].(float64) > 0:
				drawn++
			case m["status"] == "refused" && m["error"] == "sold_out" && m["course_id"].(float64) == float64(e.courses[2]):
				soldOut++
			default:
				t.Fatalf("student %d entry %v", i, m)
			}
		}
	}
	// PHY1001 has one seat: one drawn, the rest refused at the draw.
	if drawn != n+1 || soldOut != n-1 {
		t.Fatalf("%d drawn, %d sold out; want %d and %d", drawn, soldOut, n+1, n-1)
	}
	e.drain()
	var over int
	if err := e.db.Get(&over, "SELECT COUNT(*) FROM courses WHERE enrolled > capacity"); err != nil || over != 0 {
		t.Fatalf("oversold sections: %d %v", over, err)
	}
	var enrolled int
	if err := e.db.Get(&enrolled, "SELECT COUNT(*) FROM enrollments"); err != nil || enrolled != n+1+1 {
		t.Fatalf("enrollments %d, want %d (the drawn ones and the late arrival) %v", enrolled, n+2, err)
	}
	// Opening the pre-queue while the window is open: refused.
	if r := e.do("POST", "/api/v1/admin/prequeue", admin, map[string]any{"open": true}); r.errCode() != "window_open" {
		t.Fatalf("pre-queue on an open window: %d %s", r.Code, r.Body)
	}
}

// prequeued returns a stack whose window is closed and whose pre-queue holds
// two entries of each of n students, drawn in batches of 200, and the
// registrar's token.
func prequeued(t *testing.T, n int) (*testEnv, string) {
	t.Helper()
	e := newTestEnv(t, n)
	admin := e.adminToken()
	e.mustStatus(e.do("POST", "/api/v1/admin/window", admin, map[string]any{"open": false}), 200)
	e.mustStatus(e.do("POST", "/api/v1/admin/prequeue", admin, map[string]any{"open": true}), 200)
	for i := range n {
		for _, c := range []int64{e.courses[4], e.courses[3]} {
			e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(i), map[string]any{"course_id": c}), 202)
		}
	}
	e.srv.svc.Queue.DrawBatch = 200
	return e, admin
}

// TestResumeOpening: a draw cut off half-way leaves the window shut (students
// are told "opening"); ResumeOpening, which every scheduler instance runs every
// 5 s, finishes the draw and opens the window once the draw has not moved
// between two looks, and leaves a draw that moves to its drawer.
func TestResumeOpening(t *testing.T) {
	const n = 300 // 600 entries: three batches of the draw
	e, admin := prequeued(t, n)
	svc := e.srv.svc
	if resumed, err := svc.ResumeOpening(context.Background()); resumed || err != nil {
		t.Fatalf("no draw running: resumed %v, %v", resumed, err)
	}
	// The registrar asks to open; the opening's drawer stops after its
	// first batch (its process died).
	if err := svc.Queue.WantOpen(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	if _, err := svc.Queue.Draw(ctx, 3, func(done, total int64) { stop() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cut-off draw: %v", err)
	}
	if r := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}); r.errCode() != "opening" || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("during the unfinished draw: %d %s %v", r.Code, r.Body, r.Header)
	}
	// The first look only notes where the draw stands; the draw then moves
	// (a live drawer runs one batch), so the second look leaves it alone.
	if resumed, err := svc.ResumeOpening(context.Background()); resumed || err != nil {
		t.Fatalf("first look at the draw: resumed %v, %v", resumed, err)
	}
	ctx, stop = context.WithCancel(context.Background())
	if _, err := svc.Queue.Draw(ctx, 3, func(done, total int64) { stop() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("second cut-off draw: %v", err)
	}
	if resumed, err := svc.ResumeOpening(context.Background()); resumed || err != nil {
		t.Fatalf("a draw that moved: resumed %v, %v", resumed, err)
	}
	if st := e.do("GET", "/api/v1/admin/prequeue", admin, nil).json(t); st["state"] != "drawing" || st["cursor"].(float64) != 400 {
		t.Fatalf("a moving draw was joined: %v", st)
	}
	// It has stopped moving now: the next look finishes it.
	if resumed, err := svc.ResumeOpening(context.Background()); !resumed || err != nil {
		t.Fatalf("resume: %v, %v", resumed, err)
	}
	st := e.do("GET", "/api/v1/admin/prequeue", admin, nil).json(t)
	if st["state"] != "done" || st["cursor"].(float64) != 2*n || st["seed"] != "3" {
		t.Fatalf("after resuming: %v", st)
	}
	if r := e.do("GET", "/api/v1/admin/window", admin, nil).json(t); r["open"] != true {
		t.Fatalf("window after resuming: %v", r)
	}
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}), 202)
}

// TestCloseDuringDraw: a registrar who closes the window while an opening
// draws the pre-queue has the last word. The draw still finishes (every
// entry is drawn exactly once and keeps its place), but the window stays
// closed after it, whoever finishes the draw; opening again opens it.
func TestCloseDuringDraw(t *testing.T) {
	const n = 200 // 400 entries: two batches of the draw
	e, admin := prequeued(t, n)
	svc := e.srv.svc
	// The opening's drawer stops after its first batch (its process died).
	if err := svc.Queue.WantOpen(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	if _, err := svc.Queue.Draw(ctx, 5, func(done, total int64) { stop() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cut-off draw: %v", err)
	}
	if r := e.do("POST", "/api/v1/admin/window", admin, map[string]any{"open": false}).json(t); r["open"] != false {
		t.Fatalf("closing during the draw: %v", r)
	}
	// Another instance finds the draw stalled and finishes it.
	for look := 1; ; look++ {
		resumed, err := svc.ResumeOpening(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if resumed {
			break
		}
		if look == 2 {
			t.Fatal("a stalled draw was not resumed on the second look")
		}
	}
	st := e.do("GET", "/api/v1/admin/prequeue", admin, nil).json(t)
	if st["state"] != "done" || st["cursor"].(float64) != 2*n {
		t.Fatalf("after the draw: %v", st)
	}
	if r := e.do("GET", "/api/v1/admin/window", admin, nil).json(t); r["open"] != false {
		t.Fatalf("the draw reopened a window the registrar closed: %v", r)
	}
	if r := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}); r.errCode() != "window_closed" {
		t.Fatalf("enrolling after the draw, window closed: %d %s", r.Code, r.Body)
	}
	// Every entry was drawn: none is left waiting, and each student's two
	// entries are listed with an outcome.
	for i := range n {
		items, _ := e.do("GET", "/api/v1/me/requests", e.token(i), nil).json(t)["prequeue"].([]any)
		if len(items) != 2 {
			t.Fatalf("student %d: %d pre-queue entries listed, want 2", i, len(items))
		}
		for _, it := range items {
			if st := it.(map[string]any)["status"]; st != "drawn" && st != "refused" {
				t.Fatalf("student %d: entry %v after the draw", i, it)
			}
		}
	}
	if r := e.do("POST", "/api/v1/admin/window", admin, map[string]any{"open": true}).json(t); r["open"] != true {
		t.Fatalf("opening after the draw: %v", r)
	}
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}), 202)
}
