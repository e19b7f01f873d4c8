package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/enrollq/enrollq/internal/sso/ssotest"
)

// TestSSOLogin: a student signs in with their university account in
// Chromium. The api runs behind a small reverse proxy (nginx's place) whose
// address is known before the api starts, so the provider (a real
// oidcprovider process, tools/oidcprovider) can be given the redirect URI.
// The student presses "학교 계정으로 로그인", fills in the provider's own
// login form, comes back logged in as the student the student_no claim
// names and sees their page. Someone the roster does not know gets the
// bilingual refusal page.
func TestSSOLogin(t *testing.T) {
	// The front: a reverse proxy to the api once it runs.
	var target atomic.Pointer[url.URL]
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := target.Load()
		if u == nil {
			http.Error(w, "api not up yet", http.StatusBadGateway)
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	frontURL := fmt.Sprintf("http://%s", ln.Addr())
	go func() { _ = front.Serve(ln) }()
	t.Cleanup(func() { _ = front.Close() })

	const no = "202690001"
	p := ssotest.Start(t, frontURL+"/api/v1/auth/sso/callback",
		ssotest.User{Username: "hong.gildong", Password: "univ-pass-2026", StudentNo: no},
		ssotest.User{Username: "visitor", Password: "univ-pass-2026", StudentNo: "209999999"})
	// The api process inherits the test's environment (startProc).
	t.Setenv("ENROLLQ_OIDC_ISSUER", p.Issuer)
	t.Setenv("ENROLLQ_OIDC_CLIENT_ID", p.ClientID)
	t.Setenv("ENROLLQ_OIDC_CLIENT_SECRET", p.ClientSecret)
	t.Setenv("ENROLLQ_OIDC_REDIRECT_URL", p.RedirectURI)
	t.Setenv("ENROLLQ_OIDC_STUDENT_CLAIM", "student_no")
	s := newStack(t, 3, true, false)
	u, _ := url.Parse(s.url)
	target.Store(u)
	// Still on the initial password: single sign-on does not ask to change it.
	if _, err := s.db.DB.Exec(`UPDATE students SET must_change_password = 1 WHERE student_no = ?`, no); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, 1024, 768)
	run(t, ctx, "open the login page",
		chromedp.Navigate(frontURL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#student-no")),
		within(10*time.Second, chromedp.WaitVisible(chromedp.CSS("#sso-btn"))),
		waitText("#sso-btn", "학교 계정으로 로그인"))
	shot(t, ctx, "1-login-with-sso")
	run(t, ctx, "sign in at the university",
		chromedp.Click(chromedp.CSS("#sso-btn")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "hong.gildong"),
		chromedp.SendKeys(chromedp.CSS("#password"), "univ-pass-2026"))
	shot(t, ctx, "2-provider-login")
	run(t, ctx, "back logged in",
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		within(20*time.Second, chromedp.WaitVisible(chromedp.CSS("#q"))),
		waitText("#who", no))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if u, _ := url.Parse(loc); err != nil || u.Fragment != "/search" || u.RawQuery != "" {
		t.Fatalf("address after sign-in: %s", loc)
	}
	run(t, ctx, "the student's page",
		chromedp.Navigate(frontURL+"/#/me"),
		waitText("#main", "테스트1"),
		waitText("#main", "("+no+")"))
	shot(t, ctx, "3-student-page")

	// Log out, then a university account that is not on the roster.
	run(t, ctx, "unknown student refused",
		chromedp.Click(chromedp.CSS("#logout")),
		within(10*time.Second, chromedp.WaitVisible(chromedp.CSS("#sso-btn"))),
		chromedp.Click(chromedp.CSS("#sso-btn")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "visitor"),
		chromedp.SendKeys(chromedp.CSS("#password"), "univ-pass-2026"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		within(20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#sso-error[data-code="sso_unknown_student"]`))),
		waitText("#sso-error", "수강신청 명단에 없는 학번입니다"),
		waitText("#sso-error", "not on the registration roster"))
	shot(t, ctx, "4-unknown-student")
}
