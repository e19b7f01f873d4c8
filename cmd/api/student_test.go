package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/queue"
)

func TestLoginAndPassword(t *testing.T) {
	e := newTestEnv(t, 1)
	r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": testPassword})
	e.mustStatus(r, 200)
	tok := r.json(t)["token"].(string)

	// Wrong old password, weak new password: refused, nothing changes.
	if r := e.do("POST", "/api/v1/auth/password", tok, map[string]any{"old": "nope-nope", "new": "another-pass-1"}); r.errCode() != "bad_credentials" {
		t.Errorf("wrong old: %d %s", r.Code, r.Body)
	}
	if r := e.do("POST", "/api/v1/auth/password", tok, map[string]any{"old": testPassword, "new": "short"}); r.Code != 400 || r.errCode() != "weak_password" {
		t.Errorf("weak new: %d %s", r.Code, r.Body)
	}
	e.mustStatus(e.do("POST", "/api/v1/auth/password", tok, map[string]any{"old": testPassword, "new": "new-password-2026"}), 200)
	if r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": testPassword}); r.errCode() != "bad_credentials" {
		t.Errorf("old password still works: %d %s", r.Code, r.Body)
	}
	e.mustStatus(e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": "new-password-2026"}), 200)
	var hash string
	_ = e.db.Get(&hash, "SELECT password_hash FROM students WHERE id = ?", e.students[0])
	if !strings.HasPrefix(hash, "$2a$04$") {
		t.Errorf("hash %q: want bcrypt at the configured cost 4", hash)
	}
}

func TestAdminAccounts(t *testing.T) {
	e := newTestEnv(t, 1)
	var hash string
	if err := e.db.Get(&hash, "SELECT password_hash FROM admins WHERE username = ?", testAdminUser); err != nil || !strings.HasPrefix(hash, "$2a$") {
		t.Fatalf("bootstrap admin not stored hashed: %q %v", hash, err)
	}
	if r := e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": testAdminUser, "password": "wrong-password"}); r.errCode() != "bad_credentials" {
		t.Errorf("wrong admin password: %d %s", r.Code, r.Body)
	}
	r := e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": testAdminUser, "password": testAdminPassword})
	e.mustStatus(r, 200)
	tok := r.json(t)["token"].(string)
	e.mustStatus(e.do("POST", "/api/v1/admin/admins", tok, map[string]any{"username": "clerk2", "password": "clerk-password"}), 201)
	if r := e.do("POST", "/api/v1/admin/admins", tok, map[string]any{"username": "clerk2", "password": "clerk-password"}); r.errCode() != "admin_exists" {
		t.Errorf("duplicate admin: %d %s", r.Code, r.Body)
	}
	e.mustStatus(e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": "clerk2", "password": "clerk-password"}), 200)
	// A student token never opens admin routes, even with a matching name.
	if r := e.do("GET", "/api/v1/admin/stats", e.token(0), nil); r.errCode() != "admin_only" {
		t.Errorf("student token on admin route: %s", r.Body)
	}
}

func TestRateLimits(t *testing.T) {
	e := newTestEnv(t, 2)
	e.srv.limits.Student.N = 5
	e.srv.limits.LoginFailed.N = 3
	e.srv.limits.LoginBackoff.After, e.srv.limits.LoginBackoff.Base = 3, time.Minute
	e.srv.limits.IP.N = 1000
	tok := e.token(0)
	for i := 0; i < 5; i++ {
		e.mustStatus(e.do("GET", "/api/v1/me", tok, nil), 200)
	}
	r := e.do("GET", "/api/v1/me", tok, nil)
	if r.Code != 429 || r.errCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th request: %d %q Retry-After=%q", r.Code, r.errCode(), r.Header.Get("Retry-After"))
	}
	// Another student on the same address is not affected.
	e.mustStatus(e.do("GET", "/api/v1/me", e.token(1), nil), 200)

	// Failed logins per account, from different addresses: the account
	// backs off.
	for i := 0; i < 3; i++ {
		r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(1), "password": "guess-" + fmt.Sprint(i)},
			"X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i+1))
		if r.errCode() != "bad_credentials" {
			t.Fatalf("guess %d: %d %s", i, r.Code, r.Body)
		}
	}
	r = e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(1), "password": testPassword}, "X-Forwarded-For", "10.0.0.9")
	if r.Code != 429 || r.Header.Get("Retry-After") == "" {
		t.Errorf("login after 3 failures: %d %s", r.Code, r.Body)
	}

	// Per-IP budget on public routes.
	e.srv.limits.IP.N = 3
	for i := 0; i < 3; i++ {
		e.mustStatus(e.do("GET", "/api/v1/courses", "", nil, "X-Forwarded-For", "192.0.2.7"), 200)
	}
	if r := e.do("GET", "/api/v1/courses", "", nil, "X-Forwarded-For", "192.0.2.7"); r.Code != 429 {
		t.Errorf("4th request from one IP: %d", r.Code)
	}
	e.mustStatus(e.do("GET", "/api/v1/courses", "", nil, "X-Forwarded-For", "192.0.2.8"), 200)
	// Loopback clients (the load generator, operators) are exempt from
	// the per-IP budgets by default.
	for i := 0; i < 5; i++ {
		e.mustStatus(e.do("GET", "/api/v1/courses", "", nil), 200)
	}
	// Through the trusted proxy (loopback) the forwarded address counts.
	r = e.do("GET", "/api/v1/courses", "", nil, "X-Forwarded-For", "192.0.2.7")
	if r.Code != 429 {
		t.Errorf("XFF through the trusted proxy: %d", r.Code)
	}
}

func TestCartRegisterTimetableDrop(t *testing.T) {
	e := newTestEnv(t, 2)
	tok := e.token(0)
	c := e.courses
	for _, id := range []int64{c[4], c[0], c[1]} {
		e.mustStatus(e.do("POST", "/api/v1/cart", tok, map[string]any{"course_id": id}), 201)
	}
	if r := e.do("POST", "/api/v1/cart", tok, map[string]any{"course_id": c[4]}); r.errCode() != "already_in_cart" {
		t.Errorf("add twice: %s", r.Body)
	}
	if r := e.do("POST", "/api/v1/cart", tok, map[string]any{"course_id": 999999}); r.Code != 404 || r.errCode() != "unknown_course" {
		t.Errorf("add unknown: %d %s", r.Code, r.Body)
	}
	// Reorder: c0 first, then c4, then c1 (which clashes with c0).
	e.mustStatus(e.do("PUT", "/api/v1/cart", tok, map[string]any{"course_ids": []int64{c[0], c[4], c[1]}}), 200)
	if r := e.do("PUT", "/api/v1/cart", tok, map[string]any{"course_ids": []int64{c[0], c[4]}}); r.errCode() != "bad_cart_order" {
		t.Errorf("partial reorder: %s", r.Body)
	}
	r := e.do("POST", "/api/v1/cart/register", tok, nil)
	e.mustStatus(r, 200)
	var out struct {
		Results []struct {
			CourseID  int64  `json:"course_id"`
			Status    string `json:"status"`
			RequestID int64  `json:"request_id"`
			Position  int64  `json:"position"`
		} `json:"results"`
		WSURL string `json:"ws_url"`
	}
	mustJSON(t, r.Body, &out)
	if len(out.Results) != 3 || out.Results[0].CourseID != c[0] || out.Results[2].CourseID != c[1] {
		t.Fatalf("results not in cart order: %s", r.Body)
	}
	for i, x := range out.Results {
		if x.Status != "queued" || x.Position != int64(i+1) || (i > 0 && x.RequestID <= out.Results[i-1].RequestID) {
			t.Errorf("result %d: %+v (tickets must follow cart order)", i, x)
		}
	}
	if !strings.Contains(out.WSURL, "requests=") {
		t.Errorf("ws_url %q", out.WSURL)
	}
	// While waiting, /me/requests shows them queued with positions.
	r = e.do("GET", "/api/v1/me/requests", tok, nil)
	if strings.Count(string(r.Body), `"status":"queued"`) != 3 {
		t.Errorf("pending requests: %s", r.Body)
	}
	e.drain()
	r = e.do("GET", "/api/v1/me/requests", tok, nil)
	if !strings.Contains(string(r.Body), `"reason":"time_conflict"`) || strings.Count(string(r.Body), `"status":"enrolled"`) != 2 {
		t.Errorf("decided requests: %s", r.Body)
	}
	// A second register-all: every section refused with a stable code.
	r = e.do("POST", "/api/v1/cart/register", tok, nil)
	if !strings.Contains(string(r.Body), `"code":"already_enrolled"`) {
		t.Errorf("register again: %s", r.Body)
	}

	r = e.do("GET", "/api/v1/me/timetable", tok, nil)
	var tt struct {
		Slots []struct {
			Day      int    `json:"day"`
			StartMin int    `json:"start_min"`
			EndMin   int    `json:"end_min"`
			Code     string `json:"code"`
		} `json:"slots"`
		Credits int `json:"credits"`
	}
	mustJSON(t, r.Body, &tt)
	if len(tt.Slots) != 3 || tt.Credits != 5 || tt.Slots[0].Day != 0 || tt.Slots[0].StartMin != 540 || tt.Slots[0].Code != "CSE1001" {
		t.Errorf("timetable: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/me", tok, nil)
	if m := r.json(t); m["credits"].(float64) != 5 || m["registration_open"] != true {
		t.Errorf("me: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/me/enrollments", tok, nil)
	if !strings.Contains(string(r.Body), `"via":"queue"`) || !strings.Contains(string(r.Body), `"credits":5`) {
		t.Errorf("enrollments: %s", r.Body)
	}
	e.mustStatus(e.do("DELETE", fmt.Sprintf("/api/v1/enrollments/%d", c[4]), tok, nil), 200)
	if r := e.do("DELETE", fmt.Sprintf("/api/v1/enrollments/%d", c[4]), tok, nil); r.errCode() != "not_enrolled" {
		t.Errorf("drop twice: %s", r.Body)
	}
	e.mustStatus(e.do("DELETE", fmt.Sprintf("/api/v1/cart/%d", c[4]), tok, nil), 200)
}

// TestWaitlistAPI: join only when full, position, drop promotes the first
// eligible student, the seat hint is not given back, capacity increase
// promotes and reconciles the hint.
func TestWaitlistAPI(t *testing.T) {
	e := newTestEnv(t, 4)
	full := e.courses[2] // capacity 1
	tok := func(i int) string { return e.token(i) }
	if r := e.do("POST", "/api/v1/waitlist", tok(1), map[string]any{"course_id": full}); r.errCode() != "seats_available" {
		t.Errorf("join with seats: %d %s", r.Code, r.Body)
	}
	e.mustStatus(e.do("POST", "/api/v1/enrollments", tok(0), map[string]any{"course_id": full}), 202)
	e.drain()
	for i := 1; i <= 3; i++ {
		r := e.do("POST", "/api/v1/waitlist", tok(i), map[string]any{"course_id": full})
		e.mustStatus(r, 201)
		if p := r.json(t)["position"].(float64); int(p) != i {
			t.Errorf("student %d: position %v", i, p)
		}
	}
	r := e.do("GET", "/api/v1/me/waitlist", tok(2), nil)
	if !strings.Contains(string(r.Body), `"position":2`) || !strings.Contains(string(r.Body), `"length":3`) {
		t.Errorf("my waitlist: %s", r.Body)
	}
	e.mustStatus(e.do("DELETE", fmt.Sprintf("/api/v1/waitlist/%d", full), tok(3), nil), 200)
	if r := e.do("DELETE", fmt.Sprintf("/api/v1/waitlist/%d", full), tok(3), nil); r.errCode() != "not_waitlisted" {
		t.Errorf("leave twice: %s", r.Body)
	}
	hint := func() int64 {
		h, _, _ := e.srv.svc.Queue.SeatHint(t.Context(), full)
		return h
	}
	if h := hint(); h != 0 {
		t.Fatalf("hint before drop = %d", h)
	}
	e.mustStatus(e.do("DELETE", fmt.Sprintf("/api/v1/enrollments/%d", full), tok(0), nil), 200)
	if got := e.enrolled(e.students[1]); len(got) != 1 || got[0] != full {
		t.Errorf("first waitlisted not promoted: %v", got)
	}
	if h := hint(); h != 0 {
		t.Errorf("hint after a drop that promoted = %d, want 0 (the seat was taken again)", h)
	}
	// The promoted student's enrolled hint is set: a request is refused at once.
	if r := e.do("POST", "/api/v1/enrollments", tok(1), map[string]any{"course_id": full}); r.errCode() != "already_enrolled" {
		t.Errorf("promoted student asks again: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/me/enrollments", tok(1), nil)
	if !strings.Contains(string(r.Body), `"via":"waitlist"`) {
		t.Errorf("promoted enrollment: %s", r.Body)
	}
	// Capacity: never below enrolled; an increase promotes student 2.
	admin := e.adminToken()
	if r := e.do("PATCH", fmt.Sprintf("/api/v1/admin/courses/%d", full), admin, map[string]any{"capacity": 0}); r.errCode() != "capacity_below_enrolled" {
		t.Errorf("capacity 0: %s", r.Body)
	}
	r = e.do("PATCH", fmt.Sprintf("/api/v1/admin/courses/%d", full), admin, map[string]any{"capacity": 3})
	e.mustStatus(r, 200)
	if !strings.Contains(string(r.Body), `"enrolled":2`) || !strings.Contains(string(r.Body), `"status":"enrolled"`) {
		t.Errorf("capacity increase: %s", r.Body)
	}
	if h := hint(); h != 1 {
		t.Errorf("hint after capacity 3 with 2 enrolled = %d, want 1", h)
	}
	// A drop with nobody waiting gives the seat back to the hint.
	e.mustStatus(e.do("DELETE", fmt.Sprintf("/api/v1/enrollments/%d", full), tok(2), nil), 200)
	if h := hint(); h != 2 {
		t.Errorf("hint after a plain drop = %d, want 2", h)
	}
	r = e.do("GET", fmt.Sprintf("/api/v1/courses/%d", full), "", nil)
	if !strings.Contains(string(r.Body), `"seats_left":2`) || !strings.Contains(string(r.Body), `"seat_hint":2`) {
		t.Errorf("course detail: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/admin/students/"+studentNo(1)+"/requests", admin, nil)
	if !strings.Contains(string(r.Body), `"cause":"drop"`) || !strings.Contains(string(r.Body), `"status":"enrolled"`) {
		t.Errorf("audit: %s", r.Body)
	}
}

func TestCoursesList(t *testing.T) {
	e := newTestEnv(t, 0)
	r := e.do("GET", "/api/v1/courses?q=CSE", "", nil)
	var page struct {
		Hits []struct {
			Code      string   `json:"code"`
			SeatsLeft int      `json:"seats_left"`
			Days      []string `json:"days"`
		} `json:"hits"`
		Total int    `json:"total"`
		Next  string `json:"next"`
	}
	mustJSON(t, r.Body, &page)
	if page.Total != 2 || len(page.Hits) != 2 || page.Hits[0].Days[0] != "MON" {
		t.Errorf("q=CSE: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/courses?q=과목&days=TUE&size=1", "", nil)
	mustJSON(t, r.Body, &page)
	if page.Total != 1 || page.Hits[0].Code != "PHY1001" {
		t.Errorf("Korean text + day: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/courses?limit=2", "", nil)
	mustJSON(t, r.Body, &page)
	if page.Total != 5 || len(page.Hits) != 2 || page.Next != "2" {
		t.Errorf("page 1: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/courses?limit=2&after="+page.Next, "", nil)
	mustJSON(t, r.Body, &page)
	if len(page.Hits) != 2 || page.Next != "4" {
		t.Errorf("page 2: %s", r.Body)
	}
	r = e.do("GET", "/api/v1/courses?credits=2&open_only=true", "", nil)
	mustJSON(t, r.Body, &page)
	if page.Total != 1 || page.Hits[0].Code != "KOR1001" {
		t.Errorf("credits filter: %s", r.Body)
	}
}

func TestAdminStatsWindowsExport(t *testing.T) {
	e := newTestEnv(t, 2)
	admin := e.adminToken()
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]}), 202)
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(1), map[string]any{"course_id": e.courses[4]}), 202)
	r := e.do("GET", "/api/v1/admin/stats?top=3", admin, nil)
	e.mustStatus(r, 200)
	if m := r.json(t); m["pending"].(float64) != 2 || m["admitted"].(float64) != 2 {
		t.Errorf("stats before drain: %s", r.Body)
	}
	time.Sleep(1100 * time.Millisecond)
	e.drain()
	r = e.do("GET", "/api/v1/admin/stats?top=3", admin, nil)
	m := r.json(t)
	if m["pending"].(float64) != 0 || m["decided"].(float64) != 2 || m["decided_per_sec"].(float64) <= 0 {
		t.Errorf("stats after drain: %s", r.Body)
	}
	if fill := m["fill"].([]any); len(fill) != 3 || fill[0].(map[string]any)["code"] != "PHY1001" {
		t.Errorf("fill: %v", m["fill"])
	}
	// Students on the page: the sessions queue-ws instances report, fresh ones only.
	q := queue.New(e.rdb, e.term)
	for inst, n := range map[string]int64{"h/:8082": 120, "h/:8084": 80} {
		if err := q.ReportSessions(context.Background(), inst, n, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.ReportSessions(context.Background(), "gone/:8086", 500, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	m = e.do("GET", "/api/v1/admin/stats?top=3", admin, nil).json(t)
	if m["ws_sessions"].(float64) != 200 || m["ws_instances"].(float64) != 2 {
		t.Errorf("ws_sessions %v on %v instances; want 200 on 2 (a report a minute old does not count)", m["ws_sessions"], m["ws_instances"])
	}

	// Windows: a priority window for year 1 only, then none.
	now := time.Now().UTC()
	y := 1
	body := map[string]any{"windows": []map[string]any{
		{"year": y, "opens_at": now.Add(-time.Hour), "closes_at": now.Add(time.Hour)},
		{"year": nil, "opens_at": now.Add(time.Hour), "closes_at": now.Add(2 * time.Hour)},
	}}
	r = e.do("PUT", "/api/v1/admin/windows", admin, body)
	e.mustStatus(r, 200)
	if !strings.Contains(string(r.Body), `"open_now":[1]`) {
		t.Errorf("windows: %s", r.Body)
	}
	// Student 0 is year 1 and may enroll; student 1 (year 2) may not.
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[3]}), 202)
	if r := e.do("POST", "/api/v1/enrollments", e.token(1), map[string]any{"course_id": e.courses[3]}); r.errCode() != "window_closed" {
		t.Errorf("year 2 outside its window: %d %s", r.Code, r.Body)
	}
	bad := map[string]any{"windows": []map[string]any{{"opens_at": now, "closes_at": now.Add(-time.Hour)}}}
	if r := e.do("PUT", "/api/v1/admin/windows", admin, bad); r.errCode() != "bad_window" {
		t.Errorf("bad window: %s", r.Body)
	}
	e.mustStatus(e.do("PUT", "/api/v1/admin/windows", admin, map[string]any{"windows": []any{}}), 200)
	e.drain()

	r = e.do("GET", "/api/v1/admin/enrollments.csv", admin, nil)
	e.mustStatus(r, 200)
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(string(r.Body), "\ufeff")), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "student_no,name,code") || !strings.Contains(r.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("export: %q", r.Body)
	}
}

// Admission charges the client address's budget inside admit.lua (one Redis
// round trip): past the budget, POST /enrollments from that address is a 429
// with Retry-After and queues nothing; bad bodies are charged too; another
// address is unaffected.
func TestAdmissionIPBudget(t *testing.T) {
	e := newTestEnv(t, 4)
	e.srv.limits.IP.N = 3
	c := e.courses
	from := []string{"X-Forwarded-For", "198.51.100.4"}
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": c[0]}, from...), 202)
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(1), map[string]any{"course_id": c[0]}, from...), 202)
	if r := e.do("POST", "/api/v1/enrollments", e.token(2), `{"course_id":`, from...); r.errCode() != "bad_request" {
		t.Fatalf("bad body: %d %s", r.Code, r.Body)
	}
	r := e.do("POST", "/api/v1/enrollments", e.token(2), map[string]any{"course_id": c[0]}, from...)
	if r.Code != 429 || r.errCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request from one address: %d %q Retry-After=%q", r.Code, r.errCode(), r.Header.Get("Retry-After"))
	}
	if r := e.do("GET", "/api/v1/me/requests", e.token(2), nil); !strings.Contains(string(r.Body), `"requests":[]`) {
		t.Errorf("a refused admission queued something: %s", r.Body)
	}
	e.mustStatus(e.do("POST", "/api/v1/enrollments", e.token(3), map[string]any{"course_id": c[4]}, "X-Forwarded-For", "198.51.100.5"), 202)
	// One by one, each admission that reached Redis was its own admit.lua
	// call (the bad body never did): 3 admitted + 1 refused.
	if m := e.do("GET", "/metrics", "", nil); !strings.Contains(string(m.Body), "\nenrollq_admit_calls_total 4\n") {
		t.Errorf("admit.lua calls metric is not 4:\n%s", grepLines(string(m.Body), "enrollq_admit"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
