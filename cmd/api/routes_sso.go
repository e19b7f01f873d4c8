package main

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/app"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/sso"
)

// Single sign-on through the university's OpenID Connect provider
// (internal/sso): GET /auth/sso says whether it is on, /auth/sso/start sends
// the browser to the provider, /auth/sso/callback comes back with the code
// and hands the page a one-time code (in the URL fragment, never a query
// string), which POST /auth/sso/exchange turns into the student's access
// token — the same token a password login gives.

var (
	errSSODisabled       = apiError{http.StatusNotFound, "sso_disabled", "학교 계정 로그인(SSO)이 설정되어 있지 않습니다.", "Single sign-on is not configured."}
	errSSOBadState       = apiError{http.StatusBadRequest, "sso_bad_state", "로그인 요청이 만료되었거나 올바르지 않습니다. 다시 시도하세요.", "The sign-in request expired or does not belong to this browser; start again."}
	errSSOFailed         = apiError{http.StatusUnauthorized, "sso_failed", "학교 계정 로그인에 실패했습니다. 다시 시도하세요.", "Signing in with the university account failed; try again."}
	errSSONoClaim        = apiError{http.StatusForbidden, "sso_no_student_no", "학교 계정에 학번 정보가 없습니다. 학사지원팀에 문의하세요.", "The university account carries no student number; contact the registrar."}
	errSSOUnknownStudent = apiError{http.StatusForbidden, "sso_unknown_student", "수강신청 명단에 없는 학번입니다. 학사지원팀에 문의하세요.", "This student number is not on the registration roster; contact the registrar."}
	errSSOBadCode        = apiError{http.StatusBadRequest, "sso_bad_code", "로그인 코드가 만료되었거나 이미 사용되었습니다. 다시 로그인하세요.", "The sign-in code expired or was already used; sign in again."}
)

const ssoCookie = "enrollq_sso"

func init() {
	extensions = append(extensions, setupSSO)
	allErrors = append(allErrors, errSSODisabled, errSSOBadState, errSSOFailed, errSSONoClaim, errSSOUnknownStudent, errSSOBadCode)
}

// ssoRoutes serves single sign-on; cl is nil when it is off.
type ssoRoutes struct {
	s      *server
	cl     *sso.Client
	secure bool // the redirect URL is https: the cookie is Secure
}

// setupSSO discovers the provider when ENROLLQ_OIDC_ISSUER is set (failing
// startup if it cannot) and registers the routes (always: answering
// sso_disabled when off).
func setupSSO(ctx context.Context, cfg config.Config, d *deps, s *server, _ *prometheus.Registry, log *slog.Logger) error {
	r := &ssoRoutes{s: s}
	if sc := sso.FromEnv(); sc.Enabled() {
		cl, err := sso.New(ctx, sc, sso.NewRedisStore(d.rdb, "eqsso:{"+cfg.Term+"}:"))
		if err != nil {
			return err
		}
		r.cl, r.secure = cl, strings.HasPrefix(sc.RedirectURL, "https://")
		log.Info("single sign-on on", "issuer", sc.Issuer, "client", sc.ClientID, "claim", cl.Config().StudentClaim)
	}
	s.extra = append(s.extra, func(api *gin.RouterGroup, s *server) {
		g := api.Group("/auth/sso", s.limitIP)
		g.GET("", r.status)
		g.GET("/start", r.start)
		g.GET("/callback", r.callback)
		g.POST("/exchange", r.exchange)
	})
	return nil
}

func (r *ssoRoutes) status(c *gin.Context) {
	if r.cl == nil {
		c.JSON(http.StatusOK, gin.H{"enabled": false})
		return
	}
	c.JSON(http.StatusOK, gin.H{"enabled": true, "start_url": "/api/v1/auth/sso/start"})
}

func (r *ssoRoutes) start(c *gin.Context) {
	if r.cl == nil {
		abort(c, errSSODisabled)
		return
	}
	authURL, binding, err := r.cl.Start(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	// The binding ties the callback to this browser (login CSRF): HttpOnly,
	// SameSite=Lax (sent on the provider's top-level redirect back), only
	// to the SSO paths, for as long as a login may take.
	http.SetCookie(c.Writer, &http.Cookie{Name: ssoCookie, Value: binding, Path: "/api/v1/auth/sso",
		MaxAge: int(r.cl.Config().StateTTL.Seconds()), HttpOnly: true, Secure: r.secure, SameSite: http.SameSiteLaxMode})
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, authURL)
}

func (r *ssoRoutes) callback(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	if r.cl == nil {
		r.refuse(c, errSSODisabled, nil)
		return
	}
	binding, _ := c.Cookie(ssoCookie)
	// The binding is used once, whatever the outcome.
	http.SetCookie(c.Writer, &http.Cookie{Name: ssoCookie, Value: "", Path: "/api/v1/auth/sso", MaxAge: -1,
		HttpOnly: true, Secure: r.secure, SameSite: http.SameSiteLaxMode})
	if e := c.Query("error"); e != "" {
		r.refuse(c, errSSOFailed, errors.New("provider: "+e+": "+c.Query("error_description")))
		return
	}
	ctx := c.Request.Context()
	id, err := r.cl.Finish(ctx, c.Query("state"), c.Query("code"), binding)
	if err != nil {
		switch {
		case errors.Is(err, sso.ErrBadState):
			r.refuse(c, errSSOBadState, err)
		case errors.Is(err, sso.ErrNoStudent):
			r.refuse(c, errSSONoClaim, err)
		case errors.Is(err, sso.ErrExchange), errors.Is(err, sso.ErrIDToken), errors.Is(err, sso.ErrNonce):
			r.refuse(c, errSSOFailed, err)
		default:
			r.refuse(c, errUnavailable, err)
		}
		return
	}
	tok, cl, err := r.s.svc.SSOLogin(ctx, id.StudentNo)
	if errors.Is(err, app.ErrUnknownSSOStudent) {
		r.refuse(c, errSSOUnknownStudent, err)
		return
	}
	if err != nil {
		r.refuse(c, errUnavailable, err)
		return
	}
	payload, _ := json.Marshal(r.s.loginAnswer(tok, cl))
	code, err := r.cl.IssueCode(ctx, payload)
	if err != nil {
		r.refuse(c, errUnavailable, err)
		return
	}
	r.s.log.Info("sso login", "student_no", cl.StudentNo, "subject", id.Subject)
	// The fragment never reaches a server or a Referer; the page exchanges
	// the one-time code for the token and removes it from the address bar.
	c.Redirect(http.StatusFound, "/#sso_code="+url.QueryEscape(code))
}

// loginAnswer is the body of a successful student login (the shape of
// POST /auth/login's answer).
func (s *server) loginAnswer(tok string, cl auth.Claims) gin.H {
	return gin.H{"token": tok, "student_id": cl.Subject, "student_no": cl.StudentNo, "year": cl.Year,
		"expires_at": s.expiresAt(tok, auth.KindStudent), "must_change_password": cl.MustChange}
}

func (r *ssoRoutes) exchange(c *gin.Context) {
	if r.cl == nil {
		abort(c, errSSODisabled)
		return
	}
	var in struct {
		Code string `json:"code"`
	}
	if !bindJSON(c, &in) {
		return
	}
	b, err := r.cl.Redeem(c.Request.Context(), in.Code)
	if errors.Is(err, sso.ErrBadCode) {
		abort(c, errSSOBadCode)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}

var ssoErrorPage = template.Must(template.New("sso").Parse(`<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>EnrollQ — 로그인 실패 / Sign-in failed</title><link rel="stylesheet" href="/web/css/app.css"></head>
<body><main class="sso-error" id="sso-error" data-code="{{.Code}}" style="max-width:36rem;margin:4rem auto;padding:0 1rem;font-family:sans-serif">
<h1>학교 계정 로그인 실패 <small>/ Sign-in failed</small></h1>
<p lang="ko">{{.Message}}</p><p lang="en">{{.MessageEN}}</p>
<p><code>{{.Code}}</code></p>
<p><a href="/" id="sso-back">로그인 화면으로 / Back to sign-in</a></p>
</main></body></html>`))

// refuse answers a failed callback: a bilingual page for the browser, or
// the API's JSON error when the client asks for JSON.
func (r *ssoRoutes) refuse(c *gin.Context, e apiError, err error) {
	if err != nil {
		r.s.log.Info("sso login refused", "code", e.Code, "err", err)
	}
	if c.NegotiateFormat(gin.MIMEHTML, gin.MIMEJSON) == gin.MIMEJSON {
		abort(c, e)
		return
	}
	c.Status(e.Status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	_ = ssoErrorPage.Execute(c.Writer, e)
	c.Abort()
}
