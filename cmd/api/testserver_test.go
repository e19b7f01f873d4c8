package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
)

const (
	testPassword      = "enrollq-2026"
	testAdminUser     = "registrar"
	testAdminPassword = "admin-pass-1234"
	testSecret        = "test-secret"
)

// testEnv is a full API server on its own database and Redis key space.
type testEnv struct {
	t        testing.TB
	srv      *server
	h        *gin.Engine
	db       *dbtest.DB
	rdb      *redis.Client
	term     string
	courses  []int64
	students []int64 // ids; student numbers are 2026%05d of the index
	sched    *enroll.Scheduler
}

// testCourses: 0 and 1 are capacity 2 with a Monday 09:00 clash; 2 is
// capacity 1 on Tuesday; 3 is another section of 0's code; 4 is capacity 30
// on Wednesday.
var testCourses = []dbtest.SeedCourse{
	{Code: "CSE1001", Section: "01", Credits: 3, Capacity: 2, Meetings: [][3]int{{0, 540, 615}, {2, 540, 615}}},
	{Code: "MTH1001", Section: "01", Credits: 3, Capacity: 2, Meetings: [][3]int{{0, 570, 645}}},
	{Code: "PHY1001", Section: "01", Credits: 3, Capacity: 1, Meetings: [][3]int{{1, 600, 675}}},
	{Code: "CSE1001", Section: "02", Credits: 3, Capacity: 2, Meetings: [][3]int{{3, 540, 615}}},
	{Code: "KOR1001", Section: "01", Credits: 2, Capacity: 30, Meetings: [][3]int{{2, 780, 900}}},
}

// newTestEnv seeds testCourses and n students (password testPassword),
// opens the registration flag and builds the server.
func newTestEnv(t testing.TB, n int) *testEnv {
	t.Helper()
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	hash, err := auth.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, db: db, rdb: rdb, term: term}
	e.courses = dbtest.SeedCourses(t, db.DB, testCourses)
	if n > 0 {
		e.students = dbtest.SeedStudents(t, db.DB, n, 18, hash)
	}
	cfg := config.FromEnv()
	// Tests run in development mode, explicitly (issue #16): the test
	// secret is short and public.
	cfg.Dev = true
	cfg.Term, cfg.TokenSecret, cfg.BcryptCost = term, testSecret, 4
	cfg.AdminUser, cfg.AdminPassword = testAdminUser, testAdminPassword
	cfg.WSPublicURL, cfg.WebDir, cfg.TokenTTL = "/ws", "", time.Hour
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	d := &deps{db: db.DB, replica: db.DB, rdb: rdb}
	srv, err := newServer(ctx, cfg, d, reg, newMetrics(reg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.svc.Queue.RateLimit = 0
	e.srv, e.h = srv, srv.routes()
	if _, err := srv.svc.SetWindow(ctx, true); err != nil {
		t.Fatal(err)
	}
	rs := redsync.New(goredis.NewPool(rdb))
	q := srv.svc.Queue
	e.sched = enroll.NewScheduler(q, srv.svc.Store, rs, q.Keys().Lock(), enroll.SchedulerConfig{
		Logger: slog.New(slog.DiscardHandler), Reconcile: srv.svc.Reconcile})
	return e
}

// drain decides everything waiting.
func (e *testEnv) drain() {
	e.t.Helper()
	for {
		n, err := e.sched.DrainOnce(context.Background())
		if err != nil {
			e.t.Fatalf("drain: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

func studentNo(i int) string { return "2026" + pad5(i) }

func pad5(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}

// token issues a student token for student index i directly.
func (e *testEnv) token(i int) string {
	return e.srv.signer.Issue(auth.Claims{Kind: auth.KindStudent, Subject: e.students[i], StudentNo: studentNo(i), Year: i%4 + 1}, time.Hour)
}

func (e *testEnv) adminToken() string {
	return e.srv.signer.Issue(auth.Claims{Kind: auth.KindAdmin, Subject: 1, StudentNo: testAdminUser}, time.Hour)
}

// resp is a recorded response.
type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.Code, err, r.Body)
	}
	return m
}

// errCode returns error.code of an error response ("" if none).
func (r resp) errCode() string {
	var m struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &m)
	return m.Error.Code
}

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (e *testEnv) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	case *multipartBody:
		rd, ctype = bytes.NewReader(b.buf.Bytes()), b.ctype
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "127.0.0.1:40000" // as if through nginx on loopback
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return resp{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
}

type multipartBody struct {
	buf   bytes.Buffer
	ctype string
}

func multipartFile(t testing.TB, name string, data []byte, fields ...string) *multipartBody {
	t.Helper()
	m := &multipartBody{}
	w := multipart.NewWriter(&m.buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = w.WriteField(fields[i], fields[i+1])
	}
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = w.Close()
	m.ctype = w.FormDataContentType()
	return m
}

func (e *testEnv) mustStatus(r resp, want int) {
	e.t.Helper()
	if r.Code != want {
		e.t.Fatalf("status %d, want %d: %s", r.Code, want, r.Body)
	}
}

// enrolled returns the course ids a student holds in MariaDB.
func (e *testEnv) enrolled(student int64) []int64 {
	e.t.Helper()
	var ids []int64
	if err := e.db.Select(&ids, "SELECT course_id FROM enrollments WHERE student_id = ? ORDER BY course_id", student); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
