package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
)

// access is who may call a route.
type access int

const (
	public access = iota
	student
	admin
)

// routeCase is one registered route with a concrete path to call it on.
type routeCase struct {
	method, pattern, path string
	who                   access
	body                  any
}

// routeTable lists every route the API registers. TestRouteTableComplete
// fails when a route is added without an entry here, so every route gets
// the auth checks below.
func routeTable() []routeCase {
	return []routeCase{
		{"GET", "/healthz", "/healthz", public, nil},
		{"GET", "/readyz", "/readyz", public, nil},
		{"GET", "/metrics", "/metrics", public, nil},
		{"GET", "/api/v1/openapi.json", "/api/v1/openapi.json", public, nil},
		{"POST", "/api/v1/auth/login", "/api/v1/auth/login", public, map[string]any{"student_no": "x", "password": "y"}},
		{"POST", "/api/v1/admin/login", "/api/v1/admin/login", public, map[string]any{"username": "x", "password": "y"}},
		{"GET", "/api/v1/auth/sso", "/api/v1/auth/sso", public, nil},
		{"GET", "/api/v1/auth/sso/start", "/api/v1/auth/sso/start", public, nil},
		{"GET", "/api/v1/auth/sso/callback", "/api/v1/auth/sso/callback?state=x&code=y", public, nil},
		{"POST", "/api/v1/auth/sso/exchange", "/api/v1/auth/sso/exchange", public, map[string]any{"code": "x"}},
		{"GET", "/api/v1/courses", "/api/v1/courses", public, nil},
		{"GET", "/api/v1/courses/:id", "/api/v1/courses/1", public, nil},

		{"POST", "/api/v1/enrollments", "/api/v1/enrollments", student, map[string]any{"course_id": 1}},
		{"GET", "/api/v1/requests/:id", "/api/v1/requests/1", student, nil},
		{"DELETE", "/api/v1/requests/:id", "/api/v1/requests/1", student, nil},
		{"DELETE", "/api/v1/enrollments/:course_id", "/api/v1/enrollments/1", student, nil},
		{"POST", "/api/v1/auth/ws-token", "/api/v1/auth/ws-token", student, nil},
		{"POST", "/api/v1/auth/password", "/api/v1/auth/password", student, map[string]any{"old": "a", "new": "b"}},
		{"GET", "/api/v1/me", "/api/v1/me", student, nil},
		{"GET", "/api/v1/me/enrollments", "/api/v1/me/enrollments", student, nil},
		{"GET", "/api/v1/me/timetable", "/api/v1/me/timetable", student, nil},
		{"GET", "/api/v1/me/requests", "/api/v1/me/requests", student, nil},
		{"GET", "/api/v1/me/waitlist", "/api/v1/me/waitlist", student, nil},
		{"GET", "/api/v1/cart", "/api/v1/cart", student, nil},
		{"POST", "/api/v1/cart", "/api/v1/cart", student, map[string]any{"course_id": 1}},
		{"PUT", "/api/v1/cart", "/api/v1/cart", student, map[string]any{"course_ids": []int{}}},
		{"DELETE", "/api/v1/cart/:course_id", "/api/v1/cart/1", student, nil},
		{"POST", "/api/v1/cart/register", "/api/v1/cart/register", student, nil},
		{"POST", "/api/v1/waitlist", "/api/v1/waitlist", student, map[string]any{"course_id": 1}},
		{"DELETE", "/api/v1/waitlist/:course_id", "/api/v1/waitlist/1", student, nil},

		{"POST", "/api/v1/admin/window", "/api/v1/admin/window", admin, map[string]any{"open": true}},
		{"GET", "/api/v1/admin/window", "/api/v1/admin/window", admin, nil},
		{"POST", "/api/v1/admin/catalog", "/api/v1/admin/catalog", admin, nil},
		{"POST", "/api/v1/admin/students", "/api/v1/admin/students", admin, nil},
		{"GET", "/api/v1/admin/jobs/:id", "/api/v1/admin/jobs/abc", admin, nil},
		{"GET", "/api/v1/admin/windows", "/api/v1/admin/windows", admin, nil},
		{"PUT", "/api/v1/admin/windows", "/api/v1/admin/windows", admin, map[string]any{"windows": []any{}}},
		{"PATCH", "/api/v1/admin/courses/:id", "/api/v1/admin/courses/1", admin, map[string]any{"capacity": 5}},
		{"GET", "/api/v1/admin/stats", "/api/v1/admin/stats", admin, nil},
		{"GET", "/api/v1/admin/prequeue", "/api/v1/admin/prequeue", admin, nil},
		{"POST", "/api/v1/admin/prequeue", "/api/v1/admin/prequeue", admin, map[string]any{"open": false}},
		{"GET", "/api/v1/admin/students/:student_no/requests", "/api/v1/admin/students/202600000/requests", admin, nil},
		{"POST", "/api/v1/admin/students/:student_no/revoke-sessions", "/api/v1/admin/students/202600000/revoke-sessions", admin, nil},
		{"GET", "/api/v1/admin/enrollments.csv", "/api/v1/admin/enrollments.csv", admin, nil},
		{"POST", "/api/v1/admin/password", "/api/v1/admin/password", admin, map[string]any{"old": "a", "new": "b"}},
		{"POST", "/api/v1/admin/admins", "/api/v1/admin/admins", admin, map[string]any{"username": "abc", "password": "b"}},
	}
}

// TestRouteTableComplete: every route registered in Gin is in routeTable
// (and so is checked below), and vice versa.
func TestRouteTableComplete(t *testing.T) {
	e := newTestEnv(t, 0)
	have := map[string]bool{}
	for _, r := range e.h.Routes() {
		if strings.HasPrefix(r.Path, "/web") || r.Path == "/" {
			continue // static files of the web UI
		}
		have[r.Method+" "+r.Path] = true
	}
	want := map[string]bool{}
	for _, rc := range routeTable() {
		want[rc.method+" "+rc.pattern] = true
	}
	for k := range have {
		if !want[k] {
			t.Errorf("route %s is registered but not in routeTable: add it (and its auth expectations)", k)
		}
	}
	for k := range want {
		if !have[k] {
			t.Errorf("routeTable lists %s, which is not registered", k)
		}
	}
}

// TestAuthEveryRoute calls every protected route with no token, an expired
// one, a tampered one, one of the wrong kind (student on admin routes, admin
// on student routes) and a ws token, and checks the stable error codes and
// that nothing changed. Public routes must answer without a token.
func TestAuthEveryRoute(t *testing.T) {
	e := newTestEnv(t, 2)
	past := e.srv.signer.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	good := map[access]string{student: e.token(0), admin: e.adminToken()}
	expired := map[access]string{
		student: past.Issue(auth.Claims{Kind: auth.KindStudent, Subject: e.students[0], StudentNo: studentNo(0)}, time.Hour),
		admin:   past.Issue(auth.Claims{Kind: auth.KindAdmin, StudentNo: testAdminUser}, time.Hour),
	}
	tamper := func(tok string) string {
		// Re-sign nothing: swap the payload for one naming student 2.
		_, sig, _ := strings.Cut(tok, ".")
		other := e.srv.signer.Issue(auth.Claims{Kind: auth.KindStudent, Subject: e.students[1]}, time.Hour)
		op, _, _ := strings.Cut(other, ".")
		return op + "." + sig
	}
	foreign := auth.NewSigner("another-secret").Issue(auth.Claims{Kind: auth.KindAdmin, StudentNo: testAdminUser}, time.Hour)
	ws := e.srv.svc.WSToken(auth.Claims{Subject: e.students[0], StudentNo: studentNo(0)})

	countRows := func() string {
		var s string
		_ = e.db.Get(&s, `SELECT CONCAT((SELECT COUNT(*) FROM carts), '/', (SELECT COUNT(*) FROM waitlist), '/',
			(SELECT COUNT(*) FROM enrollments), '/', (SELECT COUNT(*) FROM registration_windows), '/',
			(SELECT COUNT(*) FROM admins), '/', (SELECT SUM(capacity) FROM courses), '/',
			(SELECT GROUP_CONCAT(password_hash) FROM students))`)
		return s
	}
	before := countRows()

	for _, rc := range routeTable() {
		t.Run(rc.method+" "+rc.pattern, func(t *testing.T) {
			if rc.who == public {
				r := e.do(rc.method, rc.path, "", rc.body)
				if c := r.errCode(); c == "unauthorized" || strings.HasPrefix(c, "token_") || c == "admin_only" {
					t.Fatalf("public route answered %d without a token: %s", r.Code, r.Body)
				}
				return
			}
			type attempt struct {
				name, token string
				status      int
				code        string
			}
			wrongKind := attempt{"admin token on a student route", good[admin], 401, "token_invalid"}
			if rc.who == admin {
				wrongKind = attempt{"student token on an admin route", good[student], 403, "admin_only"}
			}
			for _, a := range []attempt{
				{"no token", "", 401, "unauthorized"},
				{"expired", expired[rc.who], 401, "token_expired"},
				{"tampered", tamper(good[rc.who]), 401, "token_invalid"},
				{"garbage", "not-a-token", 401, "token_invalid"},
				{"signed with another key", foreign, 401, "token_invalid"},
				{"ws token", ws, map[access]int{student: 401, admin: 403}[rc.who], map[access]string{student: "token_invalid", admin: "admin_only"}[rc.who]},
				wrongKind,
			} {
				r := e.do(rc.method, rc.path, a.token, rc.body)
				if r.Code != a.status || r.errCode() != a.code {
					t.Errorf("%s: got %d %q, want %d %q (%s)", a.name, r.Code, r.errCode(), a.status, a.code, r.Body)
				}
			}
		})
	}
	if after := countRows(); after != before {
		t.Errorf("refused requests changed data: before %s, after %s", before, after)
	}
}

// TestWrongStudent: a student cannot see or act on another student's
// requests, cart, waitlist or enrollments.
func TestWrongStudent(t *testing.T) {
	e := newTestEnv(t, 2)
	a, b := e.token(0), e.token(1)
	c0, c4 := e.courses[0], e.courses[4]

	// A queues a request (kept waiting), fills the cart and enrolls in c4.
	r := e.do("POST", "/api/v1/enrollments", a, map[string]any{"course_id": c0})
	e.mustStatus(r, 202)
	reqID := int64(r.json(t)["request_id"].(float64))
	e.mustStatus(e.do("POST", "/api/v1/cart", a, map[string]any{"course_id": c4}), 201)

	// B cannot read or cancel A's request.
	for _, m := range []string{"GET", "DELETE"} {
		r := e.do(m, fmt.Sprintf("/api/v1/requests/%d", reqID), b, nil)
		if r.Code != 403 || r.errCode() != "forbidden" {
			t.Errorf("%s A's request as B: %d %s", m, r.Code, r.Body)
		}
	}
	// B's lists do not show A's data.
	for _, p := range []string{"/api/v1/cart", "/api/v1/me/requests", "/api/v1/me/enrollments", "/api/v1/me/waitlist"} {
		r := e.do("GET", p, b, nil)
		e.mustStatus(r, 200)
		if strings.Contains(string(r.Body), fmt.Sprint(c4)+",") || strings.Contains(string(r.Body), fmt.Sprintf(`"request_id":%d`, reqID)) {
			t.Errorf("B sees A's data at %s: %s", p, r.Body)
		}
	}
	if r := e.do("GET", "/api/v1/cart", b, nil); strings.Contains(string(r.Body), `"code":"KOR1001"`) {
		t.Errorf("B's cart shows A's item: %s", r.Body)
	}
	// B cannot remove from A's cart: it is B's (empty) cart that is asked.
	if r := e.do("DELETE", fmt.Sprintf("/api/v1/cart/%d", c4), b, nil); r.Code != 404 || r.errCode() != "not_in_cart" {
		t.Errorf("B removes A's cart item: %d %s", r.Code, r.Body)
	}
	e.drain()
	// A is enrolled in c0; B cannot drop it.
	if r := e.do("DELETE", fmt.Sprintf("/api/v1/enrollments/%d", c0), b, nil); r.Code != 404 || r.errCode() != "not_enrolled" {
		t.Errorf("B drops A's enrollment: %d %s", r.Code, r.Body)
	}
	if got := e.enrolled(e.students[0]); len(got) != 1 || got[0] != c0 {
		t.Errorf("A's enrollments changed: %v", got)
	}
	if r := e.do("GET", "/api/v1/cart", a, nil); !strings.Contains(string(r.Body), `"code":"KOR1001"`) {
		t.Errorf("A's cart lost its item: %s", r.Body)
	}
	// A still reads their own request.
	if r := e.do("GET", fmt.Sprintf("/api/v1/requests/%d", reqID), a, nil); r.Code != 200 || !strings.Contains(string(r.Body), `"enrolled"`) {
		t.Errorf("A reads own request: %d %s", r.Code, r.Body)
	}
}
