package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestBadInput: malformed JSON, wrong types, unknown courses, bad ids and
// bad query parameters get stable error codes and change nothing.
func TestBadInput(t *testing.T) {
	e := newTestEnv(t, 1)
	st, ad := e.token(0), e.adminToken()
	snapshot := func() string {
		var s string
		_ = e.db.Get(&s, `SELECT CONCAT((SELECT COUNT(*) FROM carts), '/', (SELECT COUNT(*) FROM waitlist), '/',
			(SELECT COUNT(*) FROM enrollments), '/', (SELECT COUNT(*) FROM registration_windows), '/',
			(SELECT COUNT(*) FROM admins), '/', (SELECT SUM(capacity) FROM courses), '/', (SELECT COUNT(*) FROM courses), '/',
			(SELECT COUNT(*) FROM students), '/', (SELECT GROUP_CONCAT(password_hash) FROM students))`)
		n, _ := e.rdb.ZCard(t.Context(), e.srv.svc.Queue.Keys().Pending()).Result()
		return s + "/" + strings.Repeat("q", int(n))
	}
	before := snapshot()
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"malformed JSON", "POST", "/api/v1/enrollments", st, `{"course_id":`, 400, "bad_request"},
		{"wrong type", "POST", "/api/v1/enrollments", st, `{"course_id":"CSE1001"}`, 400, "bad_request"},
		{"missing field", "POST", "/api/v1/enrollments", st, `{}`, 400, "bad_request"},
		{"not an object", "POST", "/api/v1/cart", st, `[1,2]`, 400, "bad_request"},
		{"negative course", "POST", "/api/v1/enrollments", st, `{"course_id":-3}`, 400, "bad_request"},
		{"unknown course enroll", "POST", "/api/v1/enrollments", st, `{"course_id":987654}`, 404, "unknown_course"},
		{"unknown course cart", "POST", "/api/v1/cart", st, `{"course_id":987654}`, 404, "unknown_course"},
		{"unknown course waitlist", "POST", "/api/v1/waitlist", st, `{"course_id":987654}`, 404, "unknown_course"},
		{"unknown course detail", "GET", "/api/v1/courses/987654", "", nil, 404, "unknown_course"},
		{"bad id", "GET", "/api/v1/requests/abc", st, nil, 400, "bad_id"},
		{"zero id", "DELETE", "/api/v1/enrollments/0", st, nil, 400, "bad_id"},
		{"bad id cart", "DELETE", "/api/v1/cart/1e3", st, nil, 400, "bad_id"},
		{"unknown request", "GET", "/api/v1/requests/424242", st, nil, 404, "not_found"},
		{"bad credits", "GET", "/api/v1/courses?credits=nine", "", nil, 400, "bad_query"},
		{"bad day", "GET", "/api/v1/courses?days=FUNDAY", "", nil, 400, "bad_query"},
		{"bad size", "GET", "/api/v1/courses?size=1000", "", nil, 400, "bad_query"},
		{"bad limit requests", "GET", "/api/v1/me/requests?limit=0", st, nil, 400, "bad_query"},
		{"password wrong types", "POST", "/api/v1/auth/password", st, `{"old":1,"new":2}`, 400, "bad_request"},
		{"login malformed", "POST", "/api/v1/auth/login", "", `{"student_no":`, 400, "bad_request"},
		{"login missing password", "POST", "/api/v1/auth/login", "", `{"student_no":"202600000"}`, 400, "bad_request"},
		{"capacity wrong type", "PATCH", "/api/v1/admin/courses/1", ad, `{"capacity":"many"}`, 400, "bad_request"},
		{"capacity negative", "PATCH", "/api/v1/admin/courses/1", ad, `{"capacity":-1}`, 400, "bad_request"},
		{"capacity unknown course", "PATCH", "/api/v1/admin/courses/987654", ad, `{"capacity":10}`, 404, "unknown_course"},
		{"windows malformed", "PUT", "/api/v1/admin/windows", ad, `{"windows":[{"opens_at":"yesterday"}]}`, 400, "bad_request"},
		{"windows bad year", "PUT", "/api/v1/admin/windows", ad, `{"windows":[{"year":9,"opens_at":"2026-01-01T00:00:00Z","closes_at":"2026-01-02T00:00:00Z"}]}`, 400, "bad_window"},
		{"window flag wrong type", "POST", "/api/v1/admin/window", ad, `{"open":"yes"}`, 400, "bad_request"},
		{"import without a file", "POST", "/api/v1/admin/catalog", ad, `{}`, 400, "bad_file"},
		{"unknown job", "GET", "/api/v1/admin/jobs/nope", ad, nil, 404, "unknown_job"},
		{"unknown student audit", "GET", "/api/v1/admin/students/999999999/requests", ad, nil, 404, "unknown_student"},
		{"bad stats top", "GET", "/api/v1/admin/stats?top=x", ad, nil, 400, "bad_query"},
		{"unknown route", "GET", "/api/v1/nope", st, nil, 404, "not_found"},
		{"wrong method", "PATCH", "/api/v1/cart", st, nil, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			if r.Code != tc.status || r.errCode() != tc.code {
				t.Errorf("got %d %q, want %d %q: %s", r.Code, r.errCode(), tc.status, tc.code, r.Body)
			}
			m := r.json(t)["error"].(map[string]any)
			if m["message"] == "" || m["message_en"] == "" {
				t.Errorf("error without Korean and English messages: %s", r.Body)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Errorf("bad input changed data:\n before %s\n after  %s", before, after)
	}
}

// TestImports: a bad catalog is refused with every bad row (Korean and
// English) and imports nothing; a good one runs as a job with progress, then
// its sections are searchable and have seat hints.
func TestImports(t *testing.T) {
	e := newTestEnv(t, 0)
	ad := e.adminToken()
	var before int
	_ = e.db.Get(&before, "SELECT COUNT(*) FROM courses")
	bad := "code,section,title,title_en,department,professor,credits,capacity,meetings,room,category\n" +
		"CSE9001,01,좋은 강좌,Good,컴퓨터공학과,김교수,3,40,MON 09:00-10:15,공학관 101,전공\n" +
		"BAD,01,나쁜 강좌,Bad,컴퓨터공학과,김교수,9,-1,FUN 25:00-26:00,공학관 101,전공\n"
	r := e.do("POST", "/api/v1/admin/catalog", ad, multipartFile(t, "bad.csv", []byte(bad)))
	if r.Code != 422 || r.errCode() != "import_invalid" {
		t.Fatalf("bad catalog: %d %s", r.Code, r.Body)
	}
	var rep struct {
		Error struct {
			Rows []struct {
				Row       int    `json:"row"`
				Column    string `json:"column"`
				Code      string `json:"code"`
				Message   string `json:"message"`
				MessageEN string `json:"message_en"`
			} `json:"rows"`
		} `json:"error"`
	}
	mustJSON(t, r.Body, &rep)
	cols := map[string]bool{}
	for _, row := range rep.Error.Rows {
		if row.Row != 3 || row.Message == "" || row.MessageEN == "" {
			t.Errorf("row error %+v", row)
		}
		cols[row.Column] = true
	}
	for _, c := range []string{"code", "credits", "capacity", "meetings"} {
		if !cols[c] {
			t.Errorf("no error reported for column %s: %s", c, r.Body)
		}
	}
	var after int
	_ = e.db.Get(&after, "SELECT COUNT(*) FROM courses")
	if after != before {
		t.Fatalf("a refused import changed courses: %d → %d", before, after)
	}

	data, err := os.ReadFile(dbtest.Fixture(t, "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r = e.do("POST", "/api/v1/admin/catalog", ad, multipartFile(t, "catalog.csv", data))
	e.mustStatus(r, 202)
	id := r.json(t)["job_id"].(string)
	job := waitJob(t, e, id)
	if job["state"] != "done" || job["done"].(float64) != job["total"].(float64) || job["total"].(float64) < 1000 {
		t.Fatalf("job: %v", job)
	}
	r = e.do("GET", "/api/v1/courses?q=자료", "", nil)
	if r.json(t)["total"].(float64) < 1 {
		t.Errorf("Korean search after import: %s", r.Body)
	}
	var cid int64
	_ = e.db.Get(&cid, "SELECT id FROM courses WHERE code = 'CSE4051'")
	if h, ok, _ := e.srv.svc.Queue.SeatHint(t.Context(), cid); !ok || h != 60 {
		t.Errorf("seat hint of an imported section: %d %v", h, ok)
	}

	roster := "student_no,name,year,department,max_credits\n202690001,새학생,1,컴퓨터공학과,18\n"
	r = e.do("POST", "/api/v1/admin/students", ad, multipartFile(t, "s.csv", []byte(roster), "initial_password", "first-pass-2026"))
	e.mustStatus(r, 202)
	if job := waitJob(t, e, r.json(t)["job_id"].(string)); job["state"] != "done" {
		t.Fatalf("roster job: %v", job)
	}
	e.mustStatus(e.do("POST", "/api/v1/auth/login", "", map[string]any{"student_no": "202690001", "password": "first-pass-2026"}), 200)
	badRoster := "student_no,name,year,department,max_credits\n12,이름,9,학과,99\n"
	if r := e.do("POST", "/api/v1/admin/students", ad, multipartFile(t, "s.csv", []byte(badRoster), "initial_password", "first-pass-2026")); r.Code != 422 {
		t.Errorf("bad roster: %d %s", r.Code, r.Body)
	}
}

func waitJob(t *testing.T, e *testEnv, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := e.do("GET", "/api/v1/admin/jobs/"+id, e.adminToken(), nil)
		e.mustStatus(r, 200)
		m := r.json(t)
		if m["state"] != "running" {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %s still running", id)
	return nil
}
