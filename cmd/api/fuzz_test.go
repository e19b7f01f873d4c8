package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// jsonRoutes are the routes that take a JSON body, with who may call them
// ("" public, "student", "admin") and a valid body.
var jsonRoutes = []struct {
	method, path, who, valid string
}{
	{http.MethodPost, "/api/v1/auth/login", "", `{"student_no":"202600000","password":"wrong-password"}`},
	{http.MethodPost, "/api/v1/admin/login", "", `{"username":"registrar","password":"wrong-password"}`},
	{http.MethodPost, "/api/v1/enrollments", "student", `{"course_id":1}`},
	{http.MethodPost, "/api/v1/auth/password", "student", `{"old":"wrong-password","new":"another-password"}`},
	{http.MethodPost, "/api/v1/cart", "student", `{"course_id":1}`},
	{http.MethodPut, "/api/v1/cart", "student", `{"course_ids":[1,2]}`},
	{http.MethodPost, "/api/v1/waitlist", "student", `{"course_id":1}`},
	{http.MethodPost, "/api/v1/admin/window", "admin", `{"open":true}`},
	{http.MethodPut, "/api/v1/admin/windows", "admin", `{"windows":[{"year":1,"opens_at":"2026-02-01T09:00:00Z","closes_at":"2026-02-01T18:00:00Z"}]}`},
	{http.MethodPatch, "/api/v1/admin/courses/1", "admin", `{"capacity":30}`},
	{http.MethodPost, "/api/v1/admin/password", "admin", `{"old":"wrong-password","new":"another-password"}`},
	{http.MethodPost, "/api/v1/admin/admins", "admin", `{"username":"fuzzadmin","password":"x"}`},
	{http.MethodPost, "/api/v1/admin/prequeue", "admin", `{"open":false}`},
	{http.MethodPost, "/api/v1/auth/sso/exchange", "", `{"code":"x"}`},
}

// FuzzJSONBodies sends arbitrary bodies to every JSON route: the api never
// panics or answers 5xx, and every refusal is an API error with a code.
func FuzzJSONBodies(f *testing.F) {
	for i, r := range jsonRoutes {
		for _, b := range []string{r.valid, r.valid + "x", r.valid + r.valid, `{"zzz":1}`, `[]`, `null`, ``, `{`,
			`{"course_id":-1}`, `{"course_id":1e400}`, `{"course_id":"1"}`, `{"course_ids":[` + fmtRepeat("1,", 200) + `1]}`,
			`{"open":null}`, `{"windows":[{"year":99,"opens_at":"x","closes_at":null}]}`, `{"capacity":-5}`,
			`{"student_no":"` + fmtRepeat("9", 30) + `","password":""}`, "\xff\xfe\x00"} {
			f.Add(uint8(i), []byte(b))
		}
	}
	e := newTestEnv(f, 2)
	tokens := map[string]string{"": "", "student": e.token(0), "admin": e.adminToken()}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := jsonRoutes[int(route)%len(jsonRoutes)]
		if r.path == "/api/v1/admin/window" || r.path == "/api/v1/admin/prequeue" {
			// Keep the window open and the pre-queue closed for the others.
			var in struct {
				Open *bool `json:"open"`
			}
			if json.Unmarshal(body, &in) == nil && in.Open != nil && *in.Open != (r.path == "/api/v1/admin/window") {
				return
			}
		}
		te := *e // the fuzz target's t, not f, reports
		te.t = t
		res := te.do(r.method, r.path, tokens[r.who], body)
		if res.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, res.Code, res.Body)
		}
		if res.Code >= 400 && res.errCode() == "" {
			t.Fatalf("%s %s %q: %d without an error code: %s", r.method, r.path, body, res.Code, res.Body)
		}
	})
}

func fmtRepeat(s string, n int) string { return strings.Repeat(s, n) }
