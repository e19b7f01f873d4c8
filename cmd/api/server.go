package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/enrollq/enrollq/internal/app"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/ratelimit"
	"github.com/enrollq/enrollq/internal/search"
)

// server holds the HTTP adapter's dependencies.
type server struct {
	svc     *app.Service
	signer  *auth.Signer
	metrics *metrics
	reg     *prometheus.Registry
	ready   func(ctx context.Context) map[string]any // readiness report; ok=false → 503
	wsURL   string
	webDir  string
	extra   []func(api *gin.RouterGroup, s *server) // further routes (search, admin, web)
	search  *search.Service                         // course search; nil answers from SQL

	limiter *ratelimit.Limiter // per-IP and per-student request budgets (nil: no limits)
	limits  ratelimit.Config
	log     *slog.Logger
	proxies []string // trusted proxies (newServer: ENROLLQ_TRUSTED_PROXIES, checked)
}

const claimsKey = "claims"

func (s *server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), s.metrics.middleware(), bodyLimit)
	r.HandleMethodNotAllowed = true
	// nginx forwards the client address in X-Forwarded-For / X-Real-IP;
	// only a trusted proxy (default loopback) is believed. newServer has
	// checked the list, so this cannot fail.
	proxies := s.proxies
	if proxies == nil {
		proxies, _ = parseTrustedProxies("")
	}
	if err := r.SetTrustedProxies(proxies); err != nil {
		panic(err)
	}
	r.NoRoute(s.noRoute)
	r.NoMethod(func(c *gin.Context) { abort(c, errMethodNotAllowed) })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))

	api := r.Group("/api/v1")
	// Public routes: per-IP budget.
	pub := api.Group("", s.limitIP)
	pub.GET("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openapiJSON) })
	pub.POST("/auth/login", s.login)
	pub.POST("/admin/login", s.adminLogin)
	s.courseRoutes(pub)

	// Student routes: a student token, then per-IP and per-student budgets.
	st := api.Group("", s.requireStudent)
	st.POST("/enrollments", s.enroll)
	st.GET("/requests/:id", s.getRequest)
	st.DELETE("/requests/:id", s.cancelRequest)
	st.DELETE("/enrollments/:course_id", s.drop)
	st.POST("/auth/ws-token", s.wsToken)
	s.studentRoutes(st)

	// Registrar routes: an admin token, then the per-IP budget.
	ad := api.Group("/admin", s.requireAdmin)
	ad.POST("/window", s.setWindow)
	ad.GET("/window", s.getWindow)
	s.adminRoutes(ad)

	for _, f := range s.extra {
		f(api, s)
	}
	if s.webDir != "" {
		r.StaticFile("/", filepath.Join(s.webDir, "index.html"))
		r.Static("/web", s.webDir)
	}
	return r
}

// noRoute serves the web UI's files from webDir (so the api alone serves the
// same paths nginx does) and answers not_found for anything else.
func (s *server) noRoute(c *gin.Context) {
	p := c.Request.URL.Path
	if s.webDir != "" && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) && !strings.HasPrefix(p, "/api/") {
		clean := filepath.Clean("/" + p)
		f := filepath.Join(s.webDir, filepath.FromSlash(clean))
		if st, err := os.Stat(f); err == nil && !st.IsDir() {
			c.File(f)
			return
		}
	}
	abort(c, errNotFound)
}

func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return ""
}

func (s *server) requireKind(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := bearer(c)
		if tok == "" {
			abort(c, errUnauthorized)
			return
		}
		cl, err := s.signer.Verify(tok, kind)
		if errors.Is(err, auth.ErrWrongKind) {
			if kind == auth.KindAdmin {
				abort(c, errAdminOnly)
			} else {
				abort(c, errTokenInvalid)
			}
			return
		}
		if err != nil {
			fail(c, err)
			return
		}
		// A token older than its subject's version is revoked; a token
		// issued for the initial password only changes it.
		if err := s.svc.CheckToken(c.Request.Context(), cl, mustChangeAllowed(c)); err != nil {
			fail(c, err)
			return
		}
		c.Set(claimsKey, cl)
		// Admission counts the student's attempts and the address's budget
		// inside admit.lua itself, in its single round trip (see enroll);
		// the generic budgets would add a second one.
		if c.Request.Method == http.MethodPost && c.FullPath() == "/api/v1/enrollments" {
			c.Next()
			return
		}
		hits := []ratelimit.Hit{s.ipHit(c)}
		if kind == auth.KindStudent {
			hits = append(hits, ratelimit.Hit{Rule: s.limits.Student, Subject: strconv.FormatInt(cl.Subject, 10)})
		}
		if !s.allow(c, hits...) {
			return
		}
		c.Next()
	}
}

func (s *server) requireStudent(c *gin.Context) { s.requireKind(auth.KindStudent)(c) }
func (s *server) requireAdmin(c *gin.Context)   { s.requireKind(auth.KindAdmin)(c) }

func claimsOf(c *gin.Context) auth.Claims {
	v, _ := c.Get(claimsKey)
	cl, _ := v.(auth.Claims)
	return cl
}

func pathID(c *gin.Context, name string) (int64, bool) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		abort(c, errBadID)
		return 0, false
	}
	return id, true
}

// bindJSON decodes the body strictly (decodeStrict: no unknown fields, no
// trailing data); a bad body is a 400, one over the cap a 413, and changes
// nothing.
func bindJSON(c *gin.Context, dst any) bool {
	if err := decodeStrict(c.Request, dst); err != nil {
		abort(c, bodyError(err))
		return false
	}
	return true
}

func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	rep := s.ready(ctx)
	code := http.StatusOK
	if ok, _ := rep["ok"].(bool); !ok {
		code = http.StatusServiceUnavailable
	}
	c.JSON(code, rep)
}

func (s *server) login(c *gin.Context) {
	var in struct {
		StudentNo string `json:"student_no" binding:"required,max=20"`
		Password  string `json:"password" binding:"required,max=200"`
	}
	if !bindJSON(c, &in) {
		return
	}
	key, ok := s.allowLogin(c, "s", in.StudentNo)
	if !ok {
		return
	}
	tok, cl, err := s.svc.Login(c.Request.Context(), in.StudentNo, in.Password)
	s.loginDone(c, key, err)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok, "student_id": cl.Subject, "student_no": cl.StudentNo, "year": cl.Year,
		"expires_at": s.expiresAt(tok, auth.KindStudent), "must_change_password": cl.MustChange})
}

// expiresAt is when tok expires, as its signer wrote it into the token (the
// claims Login returns are those before signing, without the expiry).
func (s *server) expiresAt(tok, kind string) time.Time {
	cl, err := s.svc.Signer.Verify(tok, kind)
	if err != nil { // not for a token just issued; an estimate rather than 1970
		return time.Now().Add(s.svc.TokenTTL).UTC().Truncate(time.Second)
	}
	return time.Unix(cl.Expires, 0).UTC()
}

func (s *server) adminLogin(c *gin.Context) {
	var in struct {
		Username string `json:"username" binding:"required,max=50"`
		Password string `json:"password" binding:"required,max=200"`
	}
	if !bindJSON(c, &in) {
		return
	}
	key, ok := s.allowLogin(c, "a", in.Username)
	if !ok {
		return
	}
	tok, err := s.svc.AdminLogin(c.Request.Context(), in.Username, in.Password)
	s.loginDone(c, key, err)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok})
}

func (s *server) enroll(c *gin.Context) {
	key, ok := idempotencyKey(c)
	if !ok {
		// Like a bad body, a bad key never reaches admit.lua: the address
		// is charged here.
		if s.allow(c, s.ipHit(c)) {
			abort(c, errBadIdemKey)
		}
		return
	}
	var in struct {
		CourseID *int64 `json:"course_id" binding:"required"`
	}
	if err := decodeStrict(c.Request, &in); err != nil {
		// A bad body never reaches admit.lua, so the address is charged here.
		if s.allow(c, s.ipHit(c)) {
			abort(c, bodyError(err))
		}
		return
	}
	a, err := s.svc.EnrollKeyed(c.Request.Context(), claimsOf(c), *in.CourseID, s.admissionBudget(c), key)
	if a.Replayed {
		// The answer (admission or refusal) given the first time this key
		// was sent; nothing new was queued.
		c.Header(replayedHeader, "true")
	}
	if err != nil {
		s.metrics.admissions.WithLabelValues(replayLabel(a.Replayed, admissionLabel(err))).Inc()
		fail(c, err)
		return
	}
	if a.Prequeued {
		s.metrics.admissions.WithLabelValues(replayLabel(a.Replayed, "prequeued")).Inc()
		c.JSON(http.StatusAccepted, gin.H{"status": "prequeued", "course_id": *in.CourseID, "entries": a.Entries,
			"students": a.Students, "ws_token": a.WSToken})
		return
	}
	s.metrics.admissions.WithLabelValues(replayLabel(a.Replayed, "admitted")).Inc()
	c.JSON(http.StatusAccepted, gin.H{"status": "queued", "request_id": a.RequestID, "ticket": a.Ticket, "position": a.Position,
		"ws_token": a.WSToken, "ws_url": s.wsURL + "?token=" + a.WSToken + "&requests=" + strconv.FormatInt(a.RequestID, 10)})
}

func admissionLabel(err error) string {
	if e, ok := classify(err); ok {
		return e.Code
	}
	return "error"
}

func (s *server) getRequest(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	v, err := s.svc.Request(c.Request.Context(), claimsOf(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *server) cancelRequest(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	v, err := s.svc.Cancel(c.Request.Context(), claimsOf(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *server) drop(c *gin.Context) {
	id, ok := pathID(c, "course_id")
	if !ok {
		return
	}
	if err := s.svc.Drop(c.Request.Context(), claimsOf(c), id); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"course_id": id, "status": "dropped"})
}

func (s *server) wsToken(c *gin.Context) {
	tok := s.svc.WSToken(claimsOf(c))
	c.JSON(http.StatusOK, gin.H{"ws_token": tok, "ws_url": s.wsURL + "?token=" + tok})
}

func (s *server) setWindow(c *gin.Context) {
	var in struct {
		Open *bool `json:"open" binding:"required"`
	}
	if !bindJSON(c, &in) {
		return
	}
	// Opening may draw a large pre-queue (seconds): finish it even if the
	// registrar's browser or nginx stops waiting (nginx waits 600 s).
	extendDeadlines(c, 11*time.Minute)
	// The answer is the window's state afterwards: an opening whose draw
	// was overtaken by a close leaves it closed.
	open, err := s.svc.SetWindow(context.WithoutCancel(c.Request.Context()), *in.Open)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"open": open})
}

func (s *server) getWindow(c *gin.Context) {
	open, err := s.svc.Queue.IsOpen(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"open": open})
}
