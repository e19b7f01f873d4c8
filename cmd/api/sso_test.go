package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/sso/ssotest"
)

// ssoEnv is an api server on a real listener with single sign-on pointed at
// a real oidcprovider process.
type ssoEnv struct {
	*testEnv
	base string
	p    *ssotest.Provider
}

const (
	ssoUser    = "kim.minji"
	ssoPass    = "pw-kim-2026"
	ghostUser  = "ghost"
	ghostPass  = "pw-ghost-2026"
	ghostStuNo = "209999999"
)

func newSSOEnv(t *testing.T) *ssoEnv {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	t.Cleanup(ts.Close)
	base := "http://" + ts.Listener.Addr().String()
	// The provider's student_no for kim has spaces around it: EnrollQ trims.
	p := ssotest.Start(t, base+"/api/v1/auth/sso/callback",
		ssotest.User{Username: ssoUser, Password: ssoPass, StudentNo: " " + studentNo(1) + " "},
		ssotest.User{Username: ghostUser, Password: ghostPass, StudentNo: ghostStuNo})
	t.Setenv("ENROLLQ_OIDC_ISSUER", p.Issuer)
	t.Setenv("ENROLLQ_OIDC_CLIENT_ID", p.ClientID)
	t.Setenv("ENROLLQ_OIDC_CLIENT_SECRET", p.ClientSecret)
	t.Setenv("ENROLLQ_OIDC_REDIRECT_URL", p.RedirectURI)
	t.Setenv("ENROLLQ_OIDC_STUDENT_CLAIM", "student_no")
	e := newTestEnv(t, 3)
	ts.Config.Handler = e.h
	ts.Start()
	return &ssoEnv{testEnv: e, base: base, p: p}
}

// browserClient is a cookie-keeping client that does not follow redirects
// (the test looks at each one).
func browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type httpResp struct {
	Code     int
	Location string
	Body     []byte
}

func (h httpResp) errCode() string { return resp{Body: h.Body}.errCode() }

func get(t *testing.T, c *http.Client, u string, hdr ...string) httpResp {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return httpResp{Code: r.StatusCode, Location: r.Header.Get("Location"), Body: b}
}

// begin opens /auth/sso/start in c and signs in at the provider; it returns
// the callback URL the provider sends the browser back to.
func (e *ssoEnv) begin(t *testing.T, c *http.Client, user, pass string) *url.URL {
	t.Helper()
	r := get(t, c, e.base+"/api/v1/auth/sso/start")
	if r.Code != http.StatusFound || !strings.HasPrefix(r.Location, e.p.Issuer+"/") {
		t.Fatalf("start: %d %q %s", r.Code, r.Location, r.Body)
	}
	return e.p.Authorize(t, r.Location, user, pass)
}

// finish opens the callback and returns the one-time code it hands the page.
func (e *ssoEnv) finish(t *testing.T, c *http.Client, back *url.URL) string {
	t.Helper()
	r := get(t, c, back.String())
	code, ok := strings.CutPrefix(r.Location, "/#sso_code=")
	if r.Code != http.StatusFound || !ok || code == "" {
		t.Fatalf("callback: %d %q %s", r.Code, r.Location, r.Body)
	}
	return code
}

func (e *ssoEnv) exchange(t *testing.T, code string) (int, map[string]any, []byte) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"code": code})
	r, err := http.Post(e.base+"/api/v1/auth/sso/exchange", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return r.StatusCode, m, body
}

// TestSSOCodeFlow: the whole authorization code flow against the real
// provider process, driven like a browser: start → provider login form →
// callback → one-time code → the student's normal access token, which works
// on the student's routes. The code and the callback are good once.
func TestSSOCodeFlow(t *testing.T) {
	e := newSSOEnv(t)
	if r := e.do("GET", "/api/v1/auth/sso", "", nil); r.Code != 200 || r.json(t)["enabled"] != true {
		t.Fatalf("GET /auth/sso: %d %s", r.Code, r.Body)
	}
	// Still on the initial password: a single sign-on does not ask to change it.
	if _, err := e.db.Exec(`UPDATE students SET must_change_password = 1 WHERE id = ?`, e.students[1]); err != nil {
		t.Fatal(err)
	}
	c := browserClient()
	start := get(t, c, e.base+"/api/v1/auth/sso/start")
	au, _ := url.Parse(start.Location)
	q := au.Query()
	if q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != e.p.ClientID {
		t.Fatalf("authorization URL %s", start.Location)
	}
	base, _ := url.Parse(e.base)
	var binding *http.Cookie
	for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "http", Host: base.Host, Path: "/api/v1/auth/sso/callback"}) {
		if ck.Name == ssoCookie {
			binding = ck
		}
	}
	if binding == nil || binding.Value == "" {
		t.Fatal("start set no binding cookie")
	}
	back := e.p.Authorize(t, start.Location, ssoUser, ssoPass)
	if strings.Contains(back.RawQuery, "token") {
		t.Fatalf("callback URL %s", back)
	}
	code := e.finish(t, c, back)

	st, m, body := e.exchange(t, code)
	if st != 200 || m["student_no"] != studentNo(1) || m["student_id"] != float64(e.students[1]) || m["expires_at"] == nil || m["must_change_password"] != false {
		t.Fatalf("exchange: %d %s", st, body)
	}
	tok, _ := m["token"].(string)
	me := e.do("GET", "/api/v1/me", tok, nil)
	if me.Code != 200 || me.json(t)["student_no"] != studentNo(1) {
		t.Fatalf("GET /me with the SSO token: %d %s", me.Code, me.Body)
	}
	// The token is the one the password login issues (same signer, kind,
	// claims); an enrollment works with it.
	cl, err := e.srv.signer.Verify(tok, "student")
	if err != nil || cl.Subject != e.students[1] || cl.StudentNo != studentNo(1) || cl.MustChange {
		t.Fatalf("token claims %+v %v", cl, err)
	}
	// One-time: the code again, and the callback again, are refused.
	if st, _, body := e.exchange(t, code); st != 400 || !strings.Contains(string(body), "sso_bad_code") {
		t.Fatalf("second exchange: %d %s", st, body)
	}
	if r := get(t, c, back.String(), "Accept", "application/json"); r.Code != 400 || r.errCode() != "sso_bad_state" {
		t.Fatalf("callback replay: %d %s", r.Code, r.Body)
	}
	if st, _, body := e.exchange(t, "made-up"); st != 400 || !strings.Contains(string(body), "sso_bad_code") {
		t.Fatalf("made-up code: %d %s", st, body)
	}
	// It carries the token version: a registrar's revoke ends it like a
	// password login's token.
	e.mustStatus(e.do("POST", "/api/v1/admin/students/"+studentNo(1)+"/revoke-sessions", e.adminToken(), nil), 200)
	if r := e.do("GET", "/api/v1/me", tok, nil); r.Code != 401 {
		t.Fatalf("GET /me with a revoked SSO token: %d %s", r.Code, r.Body)
	}
}

// TestSSORefusals: wrong state, another browser's callback, a replayed
// authorization code, a nonce that is not the login's, and a student the
// roster does not know are all refused, and no token is handed out.
func TestSSORefusals(t *testing.T) {
	e := newSSOEnv(t)
	js := []string{"Accept", "application/json"}

	t.Run("wrong state", func(t *testing.T) {
		c := browserClient()
		back := e.begin(t, c, ssoUser, ssoPass)
		q := back.Query()
		q.Set("state", q.Get("state")+"x")
		back.RawQuery = q.Encode()
		if r := get(t, c, back.String(), js...); r.Code != 400 || r.errCode() != "sso_bad_state" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	})
	t.Run("other browser", func(t *testing.T) {
		back := e.begin(t, browserClient(), ssoUser, ssoPass)
		// A victim's browser is sent the attacker's callback (login CSRF).
		if r := get(t, browserClient(), back.String(), js...); r.Code != 400 || r.errCode() != "sso_bad_state" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		c := browserClient()
		back := e.begin(t, c, ssoUser, ssoPass)
		e.finish(t, c, back)
		// A fresh login in the same browser, called back with the used code.
		back2 := e.begin(t, c, ssoUser, ssoPass)
		q := back2.Query()
		q.Set("code", back.Query().Get("code"))
		back2.RawQuery = q.Encode()
		if r := get(t, c, back2.String(), js...); r.Code != 401 || r.errCode() != "sso_failed" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	})
	t.Run("wrong nonce", func(t *testing.T) {
		c := browserClient()
		back := e.begin(t, c, ssoUser, ssoPass)
		// The stored login expects another nonce than the ID token carries.
		h := sha256.Sum256([]byte(back.Query().Get("state")))
		key := "eqsso:{" + e.term + "}:state:" + hex.EncodeToString(h[:])
		ctx := context.Background()
		var p map[string]string
		b, err := e.rdb.Get(ctx, key).Bytes()
		if err != nil || json.Unmarshal(b, &p) != nil {
			t.Fatalf("pending login %s: %v %s", key, err, b)
		}
		p["n"] = "not-the-nonce"
		b, _ = json.Marshal(p)
		if err := e.rdb.Set(ctx, key, b, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if r := get(t, c, back.String(), js...); r.Code != 401 || r.errCode() != "sso_failed" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	})
	t.Run("unknown student", func(t *testing.T) {
		c := browserClient()
		r := get(t, c, e.begin(t, c, ghostUser, ghostPass).String(), js...)
		if r.Code != 403 || r.errCode() != "sso_unknown_student" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
		// A browser gets the bilingual page.
		c = browserClient()
		r = get(t, c, e.begin(t, c, ghostUser, ghostPass).String(), "Accept", "text/html")
		if r.Code != 403 || !strings.Contains(string(r.Body), `data-code="sso_unknown_student"`) ||
			!strings.Contains(string(r.Body), "수강신청 명단에 없는 학번입니다") || !strings.Contains(string(r.Body), "not on the registration roster") {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		r := get(t, browserClient(), e.base+"/api/v1/auth/sso/callback?error=access_denied&state=x", js...)
		if r.Code != 401 || r.errCode() != "sso_failed" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	})
}

// TestSSODisabled: without ENROLLQ_OIDC_ISSUER the routes answer that SSO
// is off.
func TestSSODisabled(t *testing.T) {
	t.Setenv("ENROLLQ_OIDC_ISSUER", "")
	e := newTestEnv(t, 0)
	if r := e.do("GET", "/api/v1/auth/sso", "", nil); r.Code != 200 || r.json(t)["enabled"] != false {
		t.Fatalf("GET /auth/sso: %d %s", r.Code, r.Body)
	}
	if r := e.do("GET", "/api/v1/auth/sso/start", "", nil); r.Code != 404 || r.errCode() != "sso_disabled" {
		t.Fatalf("start: %d %s", r.Code, r.Body)
	}
	if r := e.do("POST", "/api/v1/auth/sso/exchange", "", map[string]string{"code": "x"}); r.Code != 404 || r.errCode() != "sso_disabled" {
		t.Fatalf("exchange: %d %s", r.Code, r.Body)
	}
}

// TestSSOStartupFailsWhenUnreachable: a configured issuer nobody answers
// at fails the api's startup with a clear error, within the timeout.
func TestSSOStartupFailsWhenUnreachable(t *testing.T) {
	iss := "http://127.0.0.1:" + strconv.Itoa(ssotest.FreePort(t))
	t.Setenv("ENROLLQ_OIDC_ISSUER", iss)
	t.Setenv("ENROLLQ_OIDC_CLIENT_ID", "enrollq")
	t.Setenv("ENROLLQ_OIDC_REDIRECT_URL", "https://enroll.example/api/v1/auth/sso/callback")
	t.Setenv("ENROLLQ_OIDC_TIMEOUT", "2s")
	start := time.Now()
	err := setupSSO(context.Background(), config.FromEnv(), &deps{}, &server{}, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), iss) {
		t.Fatalf("setupSSO: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}
