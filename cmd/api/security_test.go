package main

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/revocation"
)

// publicRoute reports whether a route answers without a token. Everything
// else must refuse every bad token below; a new route is protected unless
// it is added here.
func publicRoute(method, path string) bool {
	switch method + " " + path {
	case "GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json",
		"POST /api/v1/auth/login", "POST /api/v1/admin/login",
		"GET /api/v1/courses", "GET /api/v1/courses/:id":
		return true
	}
	// Single sign-on flows start without a session (their own tests).
	return strings.HasPrefix(path, "/api/v1/auth/sso") || strings.HasPrefix(path, "/api/v1/auth/oidc")
}

// TestSecurityMatrix enumerates every route Gin has registered and calls
// each protected one with no token, a tampered, an expired, one of another
// kind (student on admin routes, admin on student routes, ws on both), a
// revoked one (older token_version), a must-change one, and — where a route
// names a student's resource — another student's. Each gets its stable
// 401/403 and nothing changes.
func TestSecurityMatrix(t *testing.T) {
	e := newTestEnv(t, 2)
	ctx := context.Background()
	// Both the student and the admin have had their version bumped once:
	// tokens of version 0 are revoked, tokens of version 1 are good.
	if _, err := e.db.Exec(`UPDATE students SET token_version = 1 WHERE id = ?`, e.students[0]); err != nil {
		t.Fatal(err)
	}
	var adminID int64
	if err := e.db.Get(&adminID, `SELECT id FROM admins WHERE username = ?`, testAdminUser); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`UPDATE admins SET token_version = 1 WHERE id = ?`, adminID); err != nil {
		t.Fatal(err)
	}
	sig := e.srv.signer
	stClaims := auth.Claims{Kind: auth.KindStudent, Subject: e.students[0], StudentNo: studentNo(0), Year: 1, Version: 1}
	adClaims := auth.Claims{Kind: auth.KindAdmin, Subject: adminID, StudentNo: testAdminUser, Version: 1}
	good := map[string]string{"student": sig.Issue(stClaims, time.Hour), "admin": sig.Issue(adClaims, time.Hour)}
	old := func(c auth.Claims) auth.Claims { c.Version = 0; return c }
	revoked := map[string]string{"student": sig.Issue(old(stClaims), time.Hour), "admin": sig.Issue(old(adClaims), time.Hour)}
	past := sig.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired := map[string]string{"student": past.Issue(stClaims, time.Hour), "admin": past.Issue(adClaims, time.Hour)}
	tamper := func(tok string) string {
		// The payload of a token naming student 1 with student 0's signature.
		_, s, _ := strings.Cut(tok, ".")
		p, _, _ := strings.Cut(sig.Issue(auth.Claims{Kind: auth.KindStudent, Subject: e.students[1], Version: 1}, time.Hour), ".")
		return p + "." + s
	}
	mc := stClaims
	mc.MustChange = true
	mustChange := sig.Issue(mc, time.Hour)
	ws := e.srv.svc.WSToken(stClaims)

	// A request of student 1, for the other-student checks.
	other := auth.Claims{Kind: auth.KindStudent, Subject: e.students[1], StudentNo: studentNo(1), Year: 2}
	r := e.do("POST", "/api/v1/enrollments", sig.Issue(other, time.Hour), map[string]any{"course_id": e.courses[4]})
	e.mustStatus(r, 202)
	otherReq := fmt.Sprint(int64(r.json(t)["request_id"].(float64)))

	bodies := map[string]any{}
	for _, rc := range routeTable() {
		bodies[rc.method+" "+rc.pattern] = rc.body
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	concrete := func(path string) string {
		return param.ReplaceAllStringFunc(path, func(p string) string {
			switch p {
			case ":student_no":
				return studentNo(1)
			case ":id":
				if strings.HasPrefix(path, "/api/v1/requests/") {
					return otherReq
				}
				return fmt.Sprint(e.courses[4])
			default:
				return fmt.Sprint(e.courses[4])
			}
		})
	}
	snapshot := func() string {
		var s string
		if err := e.db.Get(&s, `SELECT CONCAT_WS('/', (SELECT COUNT(*) FROM carts), (SELECT COUNT(*) FROM waitlist),
			(SELECT COUNT(*) FROM enrollments), (SELECT COUNT(*) FROM enrollment_requests), (SELECT COUNT(*) FROM registration_windows),
			(SELECT COUNT(*) FROM admins), (SELECT SUM(capacity) FROM courses), (SELECT GROUP_CONCAT(password_hash, token_version, must_change_password) FROM students),
			(SELECT GROUP_CONCAT(password_hash, token_version) FROM admins))`); err != nil {
			t.Fatal(err)
		}
		st, err := e.srv.svc.Queue.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		open, _ := e.srv.svc.Queue.IsOpen(ctx)
		return fmt.Sprintf("%s|%d/%d|%v", s, st.Waiting, st.Inflight, open)
	}
	before := snapshot()

	n := 0
	for _, rt := range e.h.Routes() {
		if strings.HasPrefix(rt.Path, "/web") || rt.Path == "/" || publicRoute(rt.Method, rt.Path) {
			continue
		}
		n++
		who := "student"
		if strings.HasPrefix(rt.Path, "/api/v1/admin/") {
			who = "admin"
		}
		path, body := concrete(rt.Path), bodies[rt.Method+" "+rt.Path]
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			type attempt struct {
				name, token string
				status      int
				code        string
			}
			as := []attempt{
				{"no token", "", 401, "unauthorized"},
				{"tampered", tamper(good[who]), 401, "token_invalid"},
				{"expired", expired[who], 401, "token_expired"},
				{"revoked (older token_version)", revoked[who], 401, "token_revoked"},
			}
			if who == "admin" {
				as = append(as, attempt{"student token", good["student"], 403, "admin_only"},
					attempt{"ws token", ws, 403, "admin_only"},
					attempt{"must-change student token", mustChange, 403, "admin_only"})
			} else {
				as = append(as, attempt{"admin token", good["admin"], 401, "token_invalid"},
					attempt{"ws token", ws, 401, "token_invalid"})
				if !mustChangeAllowedPath(rt.Method, rt.Path) {
					as = append(as, attempt{"must-change token", mustChange, 403, "password_change_required"})
				}
				if strings.HasPrefix(rt.Path, "/api/v1/requests/") {
					as = append(as, attempt{"another student's request", good["student"], 403, "forbidden"})
				}
			}
			for _, a := range as {
				r := e.do(rt.Method, path, a.token, body)
				if r.Code != a.status || r.errCode() != a.code {
					t.Errorf("%s: got %d %q, want %d %q (%s)", a.name, r.Code, r.errCode(), a.status, a.code, r.Body)
				}
			}
		})
	}
	if n < 30 {
		t.Fatalf("only %d protected routes enumerated", n)
	}
	if after := snapshot(); after != before {
		t.Errorf("refused requests changed state:\nbefore %s\nafter  %s", before, after)
	}
	// The good tokens do work (the matrix is not refusing everything).
	e.mustStatus(e.do("GET", "/api/v1/me", good["student"], nil), 200)
	e.mustStatus(e.do("GET", "/api/v1/admin/window", good["admin"], nil), 200)
}

func mustChangeAllowedPath(method, path string) bool {
	return method == "POST" && path == "/api/v1/auth/password"
}

// TestRevokeAndPasswordChange: a registrar's revoke and a password change
// end older tokens (access and ws) at once on the instance that bumped and
// within about a second on another instance sharing MariaDB and Redis.
func TestRevokeAndPasswordChange(t *testing.T) {
	e := newTestEnv(t, 2)
	tok := e.login(t, studentNo(0), testPassword)
	e.mustStatus(e.do("GET", "/api/v1/me", tok, nil), 200)

	// A second api instance on the same database and Redis.
	cfg := config.FromEnv()
	cfg.Dev, cfg.Term, cfg.TokenSecret, cfg.BcryptCost = true, e.term, testSecret, 4
	cfg.AdminUser, cfg.AdminPassword, cfg.WebDir = testAdminUser, testAdminPassword, ""
	reg := prometheus.NewRegistry()
	srv2, err := newServer(context.Background(), cfg, &deps{db: e.db.DB, replica: e.db.DB, rdb: e.rdb}, reg, newMetrics(reg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h2 := srv2.routes()
	other := &testEnv{t: t, srv: srv2, h: h2, db: e.db, rdb: e.rdb, term: e.term, students: e.students}
	other.mustStatus(other.do("GET", "/api/v1/me", tok, nil), 200) // cached there now

	r := e.do("POST", "/api/v1/admin/students/"+studentNo(0)+"/revoke-sessions", e.login(t, "", ""), nil)
	e.mustStatus(r, 200)
	if r := e.do("GET", "/api/v1/me", tok, nil); r.Code != 401 || r.errCode() != "token_revoked" {
		t.Fatalf("revoked token on the same instance: %d %s", r.Code, r.Body)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := other.do("GET", "/api/v1/me", tok, nil)
		if r.errCode() == "token_revoked" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still works on another instance after 3s: %d %s", r.Code, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := e.do("POST", "/api/v1/admin/students/999999999/revoke-sessions", e.login(t, "", ""), nil); r.errCode() != "unknown_student" {
		t.Errorf("revoke unknown student: %d %s", r.Code, r.Body)
	}

	// A password change ends every older token, returns the next one.
	tok = e.login(t, studentNo(0), testPassword)
	ws := e.srv.svc.WSToken(claimsFor(t, e, tok))
	r = e.do("POST", "/api/v1/auth/password", tok, map[string]any{"old": testPassword, "new": "a-new-password-1"})
	e.mustStatus(r, 200)
	next, _ := r.json(t)["token"].(string)
	if r := e.do("GET", "/api/v1/me", tok, nil); r.errCode() != "token_revoked" {
		t.Errorf("token from before the password change: %d %s", r.Code, r.Body)
	}
	e.mustStatus(e.do("GET", "/api/v1/me", next, nil), 200)
	cl, err := e.srv.signer.Verify(ws, auth.KindWS)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.svc.Versions.Check(context.Background(), cl); err == nil {
		t.Error("ws token from before the password change still passes the version check")
	}
}

func claimsFor(t *testing.T, e *testEnv, tok string) auth.Claims {
	t.Helper()
	c, err := e.srv.signer.Verify(tok, auth.KindStudent)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login logs a student in (or, with no student number, the registrar) and
// returns the token.
func (e *testEnv) login(t *testing.T, no, pw string) string {
	t.Helper()
	var r resp
	if no == "" {
		r = e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": testAdminUser, "password": testAdminPassword})
	} else {
		r = e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": no, "password": pw})
	}
	e.mustStatus(r, 200)
	tok, _ := r.json(t)["token"].(string)
	return tok
}

// TestMustChangePassword: an imported student (initial password) can log in
// but only change the password; afterwards everything works.
func TestMustChangePassword(t *testing.T) {
	e := newTestEnv(t, 1)
	if _, err := e.db.Exec(`UPDATE students SET must_change_password = 1 WHERE id = ?`, e.students[0]); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": testPassword})
	e.mustStatus(r, 200)
	if r.json(t)["must_change_password"] != true {
		t.Fatalf("login does not say must_change_password: %s", r.Body)
	}
	tok := r.json(t)["token"].(string)
	for _, p := range []string{"/api/v1/me", "/api/v1/cart"} {
		if r := e.do("GET", p, tok, nil); r.Code != 403 || r.errCode() != "password_change_required" {
			t.Errorf("GET %s with the initial password: %d %s", p, r.Code, r.Body)
		}
	}
	if r := e.do("POST", "/api/v1/enrollments", tok, map[string]any{"course_id": e.courses[4]}); r.errCode() != "password_change_required" {
		t.Errorf("enroll with the initial password: %d %s", r.Code, r.Body)
	}
	body := e.do("GET", "/api/v1/me", tok, nil).json(t)["error"].(map[string]any)
	if body["message"] == "" || body["message_en"] == "" {
		t.Errorf("not bilingual: %v", body)
	}
	r = e.do("POST", "/api/v1/auth/password", tok, map[string]any{"old": testPassword, "new": "mine-at-last-1"})
	e.mustStatus(r, 200)
	next := r.json(t)["token"].(string)
	e.mustStatus(e.do("GET", "/api/v1/me", next, nil), 200)
	r = e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": "mine-at-last-1"})
	e.mustStatus(r, 200)
	if r.json(t)["must_change_password"] != false {
		t.Errorf("must_change_password after the change: %s", r.Body)
	}
}

// TestImportSetsMustChange: students imported through the admin path must
// change the initial password; production mode refuses the public one.
func TestImportSetsMustChange(t *testing.T) {
	e := newTestEnv(t, 0)
	ad := e.adminToken()
	roster := "student_no,name,year,department,max_credits\n202611111,가나다,1,컴퓨터공학과,18\n"
	e.srv.svc.Dev = false
	if r := e.do("POST", "/api/v1/admin/students", ad, multipartFile(t, "s.csv", []byte(roster), "initial_password", "enrollq-2026")); r.errCode() != "weak_password" {
		t.Errorf("public initial password in production mode: %d %s", r.Code, r.Body)
	}
	r := e.do("POST", "/api/v1/admin/students", ad, multipartFile(t, "s.csv", []byte(roster), "initial_password", "spring-start-77"))
	e.mustStatus(r, 202)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var mc []bool
		_ = e.db.Select(&mc, `SELECT must_change_password FROM students WHERE student_no = '202611111'`)
		if len(mc) == 1 {
			if !mc[0] {
				t.Fatal("imported student need not change the initial password")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("import did not finish")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": "202611111", "password": "spring-start-77"})
	e.mustStatus(r, 200)
	if r.json(t)["must_change_password"] != true {
		t.Errorf("login of an imported student: %s", r.Body)
	}
}

// TestLoginLimitConcurrent: 20 concurrent wrong guesses at one account from
// one address: at most the budget reach bcrypt.
func TestLoginLimitConcurrent(t *testing.T) {
	e := newTestEnv(t, 1)
	e.srv.limits.LoginFailed.N = 3
	e.srv.limits.LoginIP.N = 0
	before := e.srv.svc.PasswordChecks()
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": studentNo(0), "password": fmt.Sprint("guess-", i)},
				"X-Forwarded-For", "198.51.100.9")
			codes[i] = r.Code
		}()
	}
	wg.Wait()
	checked := e.srv.svc.PasswordChecks() - before
	if checked > 3 {
		t.Errorf("%d guesses were checked against bcrypt, budget 3 (codes %v)", checked, codes)
	}
	n429 := 0
	for _, c := range codes {
		if c == 429 {
			n429++
		}
	}
	if n429 < 17 {
		t.Errorf("%d of 20 refused with 429, want >= 17 (codes %v)", n429, codes)
	}
}

// TestLoginLimitVariants: case and trailing-space variants of one account
// share one budget; a login through a variant while locked is refused; a
// variant's successful login gets the canonical student number. Another
// address is not locked out by one address's failures.
func TestLoginLimitVariants(t *testing.T) {
	e := newTestEnv(t, 1)
	e.srv.limits.LoginFailed.N = 3
	e.srv.limits.LoginIP.N = 0
	no := studentNo(0)
	// A variant login works and carries the canonical number.
	r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": no + "   ", "password": testPassword}, "X-Forwarded-For", "198.51.100.1")
	e.mustStatus(r, 200)
	if got := r.json(t)["student_no"]; got != no {
		t.Errorf("student_no of a variant login: %q", got)
	}
	if c := claimsFor(t, e, r.json(t)["token"].(string)); c.StudentNo != no {
		t.Errorf("token's student_no: %q", c.StudentNo)
	}
	variants := []string{no, no + " ", no + "  "}
	for i, v := range variants {
		r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": v, "password": fmt.Sprint("wrong-", i)}, "X-Forwarded-For", "198.51.100.1")
		if r.errCode() != "bad_credentials" {
			t.Fatalf("guess %d: %d %s", i, r.Code, r.Body)
		}
	}
	for _, v := range []string{no + "     ", no} {
		r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": v, "password": testPassword}, "X-Forwarded-For", "198.51.100.1")
		if r.Code != 429 {
			t.Errorf("variant %q while locked: %d %s", v, r.Code, r.Body)
		}
	}
	// The owner, from their own address, is not locked out.
	r = e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": no, "password": testPassword}, "X-Forwarded-For", "203.0.113.5")
	e.mustStatus(r, 200)

	// Admin names fold case and trailing spaces the same way.
	for i, v := range []string{"REGISTRAR", "Registrar ", "registrar"} {
		r := e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": v, "password": fmt.Sprint("nope-", i)}, "X-Forwarded-For", "198.51.100.2")
		if r.errCode() != "bad_credentials" {
			t.Fatalf("admin guess %d: %d %s", i, r.Code, r.Body)
		}
	}
	if r := e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": "rEgIsTrAr", "password": testAdminPassword}, "X-Forwarded-For", "198.51.100.2"); r.Code != 429 {
		t.Errorf("admin variant while locked: %d %s", r.Code, r.Body)
	}
}

// TestLoginBackoff: many addresses failing at one account make it back off
// (refused for a moment), which the owner's success clears.
func TestLoginBackoff(t *testing.T) {
	e := newTestEnv(t, 1)
	e.srv.limits.LoginIP.N = 0
	e.srv.limits.LoginBackoff.After, e.srv.limits.LoginBackoff.Base = 4, 5*time.Second
	no := studentNo(0)
	for i := 0; i < 4; i++ {
		r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": no, "password": "x-wrong-x"}, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1))
		if r.errCode() != "bad_credentials" {
			t.Fatalf("guess %d: %d %s", i, r.Code, r.Body)
		}
	}
	r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": no, "password": testPassword}, "X-Forwarded-For", "203.0.113.5")
	if r.Code != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("during the back-off: %d %s", r.Code, r.Body)
	}
}

// TestUnknownAccountCostsBcrypt: an unknown account runs bcrypt too, at the
// configured cost.
func TestUnknownAccountCostsBcrypt(t *testing.T) {
	e := newTestEnv(t, 1)
	before := e.srv.svc.PasswordChecks()
	r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": "209999999", "password": "whatever-1"})
	if r.errCode() != "bad_credentials" || e.srv.svc.PasswordChecks()-before != 1 {
		t.Errorf("unknown account: %d %s, %d checks", r.Code, r.Body, e.srv.svc.PasswordChecks()-before)
	}
}

// TestProductionDefaults: in production mode no default credential works:
// without ENROLLQ_ADMIN_PASSWORD a fresh install gets a generated one, and
// admin/admin1234 is refused.
func TestProductionDefaults(t *testing.T) {
	e := newTestEnv(t, 0)
	if _, err := e.db.Exec(`DELETE FROM admins`); err != nil {
		t.Fatal(err)
	}
	svc := e.srv.svc
	svc.Dev = false
	pw, err := svc.BootstrapAdmin(context.Background(), config.DevAdminUser, "")
	if err != nil || len(pw) < 20 {
		t.Fatalf("generated password %q, %v", pw, err)
	}
	again, err := svc.BootstrapAdmin(context.Background(), config.DevAdminUser, "")
	if err != nil || again != "" {
		t.Errorf("second start generated again: %q, %v", again, err)
	}
	if _, err := svc.BootstrapAdmin(context.Background(), "other", "short"); err == nil {
		t.Error("short admin password accepted in production mode")
	}
	if r := e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": config.DevAdminUser, "password": config.DevAdminPassword}); r.Code != 401 {
		t.Errorf("admin/admin1234 in production mode: %d %s", r.Code, r.Body)
	}
	r := e.do("POST", "/api/v1/admin/login", "", map[string]any{"username": config.DevAdminUser, "password": pw})
	e.mustStatus(r, 200)
	_ = revocation.Student
}

// TestRefusesUnsafeStart: without ENROLLQ_DEV the api does not start with a
// missing, short or known secret, or a known admin password.
func TestRefusesUnsafeStart(t *testing.T) {
	for _, tc := range []struct{ secret, adminPW string }{
		{"", ""}, {"short-secret", ""}, {config.DevTokenSecret, ""},
		{"0123456789abcdef0123456789abcdef-ok", config.DevAdminPassword},
	} {
		t.Setenv("ENROLLQ_DEV", "")
		t.Setenv("ENROLLQ_TOKEN_SECRET", tc.secret)
		t.Setenv("ENROLLQ_ADMIN_PASSWORD", tc.adminPW)
		err := run(slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), "configuration") {
			t.Errorf("secret %q admin password %q: %v", tc.secret, tc.adminPW, err)
		}
	}
}
