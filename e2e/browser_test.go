// Package e2e drives the web UI in headless Chromium (Debian's chromium,
// through chromedp) against a real api process on a test database and Redis
// key space. scripts/install-chromium.sh installs the browser; these tests
// never skip.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/catalog"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

const (
	password      = "enrollq-2026"
	adminUser     = "registrar"
	adminPassword = "admin-pass-1234"
)

// repoRoot is the module root (where go.mod is).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// buildBin builds ./cmd/<name> once per test binary run.
func buildBin(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[name]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "enrollq-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	built[name] = bin
	return bin
}

// startProc runs bin with env until the test ends and waits until
// health answers 200.
func startProc(t *testing.T, bin string, args, env []string, health string) *os.Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(t.TempDir(), filepath.Base(bin)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a test may have stopped it
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", filepath.Base(bin), b)
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := http.Get(health)
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return cmd.Process
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s did not become healthy: %v\n%s", filepath.Base(bin), err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stack is one api process on its own database and Redis key space, with a
// drain scheduler the test starts when it wants decisions to happen.
type stack struct {
	t     *testing.T
	url   string
	db    *dbtest.DB
	rdb   *redis.Client
	term  string
	q     *queue.Redis
	st    *enroll.Store
	sched *enroll.Scheduler
	ws    *os.Process // the queue-ws process, withWS
}

// newStack seeds the fixture catalog and students 20269xxxx (password
// enrollq-2026), starts the api (and, withWS, a queue-ws) process, and opens
// the registration switch if open.
func newStack(t *testing.T, students int, open, withWS bool) *stack {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	root := repoRoot(t)

	f, err := os.Open(filepath.Join(root, "testdata", "fixtures", "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	secs, errs := catalog.ParseCatalog(f)
	f.Close()
	if len(errs) > 0 {
		t.Fatalf("fixture catalog: %v", errs[0])
	}
	if _, err := catalog.ImportCatalog(ctx, db.DB, secs, nil); err != nil {
		t.Fatal(err)
	}
	var roster []catalog.Student
	for i := 0; i < students; i++ {
		roster = append(roster, catalog.Student{StudentNo: fmt.Sprintf("20269%04d", i), Name: fmt.Sprintf("테스트%d", i), Year: 1 + i%4, Department: "컴퓨터공학과", MaxCredits: 18})
	}
	if len(roster) > 0 {
		hash, _ := auth.HashPassword(password, 4)
		if _, err := catalog.ImportStudents(ctx, db.DB, roster, hash, nil); err != nil {
			t.Fatal(err)
		}
		// These students have already replaced their initial password
		// (imported students must change it first: must_change_password).
		if _, err := db.DB.ExecContext(ctx, `UPDATE students SET must_change_password = 0`); err != nil {
			t.Fatal(err)
		}
	}

	s := &stack{t: t, db: db, rdb: rdb, term: term, q: queue.New(rdb, term), st: enroll.NewStore(db.DB, term)}
	common := []string{"ENROLLQ_DB_DSN=" + db.DSN, "ENROLLQ_REPLICA_DSN=" + db.DSN, "ENROLLQ_REDIS_ADDR=" + dbtest.RedisAddr(),
		"ENROLLQ_TERM=" + term, "ENROLLQ_TOKEN_SECRET=e2e-secret", "ENROLLQ_DEV=1"} // development mode, explicitly
	wsURL := "/ws" // nothing answers there: the UI falls back to polling
	if withWS {
		wsPort := freePort(t)
		s.ws = startProc(t, buildBin(t, "queue-ws"), nil, append(common, fmt.Sprintf("ENROLLQ_WS_ADDR=127.0.0.1:%d", wsPort), "ENROLLQ_WS_TICK=200ms"),
			fmt.Sprintf("http://127.0.0.1:%d/healthz", wsPort))
		wsURL = fmt.Sprintf("ws://127.0.0.1:%d/ws", wsPort)
	}
	port := freePort(t)
	s.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	startProc(t, buildBin(t, "api"), []string{"--scheduler=false"}, append(common,
		fmt.Sprintf("ENROLLQ_HTTP_ADDR=127.0.0.1:%d", port), "ENROLLQ_WEB_DIR="+filepath.Join(root, "web"),
		"ENROLLQ_ADMIN_USER="+adminUser, "ENROLLQ_ADMIN_PASSWORD="+adminPassword, "ENROLLQ_BCRYPT_COST=4",
		"ENROLLQ_WS_PUBLIC_URL="+wsURL, "ENROLLQ_SEARCH_INDEX="+term+"-courses"), s.url+"/healthz")
	if open {
		seats, err := s.st.Seats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.q.Reconcile(ctx, seats, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.q.SetOpen(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	s.sched = enroll.NewScheduler(s.q, s.st, redsync.New(goredis.NewPool(rdb)), s.q.Keys().Lock(),
		enroll.SchedulerConfig{Logger: slog.New(slog.DiscardHandler), Idle: 20 * time.Millisecond})
	return s
}

// searchReady waits until the api answers q from the search node (the
// indexer has loaded the catalog) with course among the first page, and
// returns the node's total.
func (s *stack) searchReady(q string, course int64) int64 {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page struct {
			Hits []struct {
				ID int64 `json:"id"`
			} `json:"hits"`
			Total  int64  `json:"total"`
			Source string `json:"source"`
		}
		resp, err := http.Get(s.url + "/api/v1/courses?q=" + url.QueryEscape(q))
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			for _, h := range page.Hits {
				if h.ID == course && page.Source == "search" {
					return page.Total
				}
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("search for %q never listed course %d from the node (last: %+v, %v)", q, course, page, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startScheduler starts draining: queued requests get decided.
func (s *stack) startScheduler() {
	go func() { _ = s.sched.Start(context.Background()) }()
	s.t.Cleanup(s.sched.Stop)
}

// browser starts a fresh headless Chromium with its own profile.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	exe := "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("%s is missing: run scripts/install-chromium.sh (make test does)", exe)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "ko-KR"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// The first run starts the browser: no timeout on its context.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancelT)
	return ctx
}

// artifactDir is where screenshots go: $ENROLLQ_ARTIFACTS/<test> when set,
// else the test's artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	if d := os.Getenv("ENROLLQ_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond)) }()
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		shot(t, ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s: %v", what, err)
	}
}

// waitText waits until the element matching sel contains want. The text is
// read in the page in one evaluation, not through a DOM node id: the queue
// screen re-renders on every frame (5 a second in these tests), and a node
// looked up a moment earlier may already be gone ("No node with given id").
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : null; })()`, sel)
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var last string
		for {
			txt, err := chromedp.Evaluate[*string](expr)(ctx, tg)
			if err == nil && txt != nil {
				if strings.Contains(*txt, want) {
					return nil
				}
				last = *txt
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never contained %q (last %q, err %v): %w", sel, want, last, err, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func within(d time.Duration, a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
		c2, cancel := context.WithTimeout(c, d)
		defer cancel()
		_, err := a(c2, tg)
		return err
	})
}

func loginStudent(t *testing.T, ctx context.Context, url, no string) {
	t.Helper()
	run(t, ctx, "log in",
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#student-no")),
		chromedp.SendKeys(chromedp.CSS("#student-no"), no),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#q")))
}

// TestPollingFallback: with no queue-ws to talk to, the registration screen
// polls GET /requests/{id} every 2 s and still shows the position, then the
// result. The request is made from the search results ("신청").
func TestPollingFallback(t *testing.T) {
	s := newStack(t, 1, true, false)
	ctx := browser(t, 1024, 768)
	run(t, ctx, "search and register",
		append(registerFromSearch(t, s, ctx),
			chromedp.WaitVisible(chromedp.CSS(`.queue-item[data-status="queued"] .queue-pos`)),
			within(10*time.Second, waitText("#queue-mode", "2초마다 확인 중")),
			waitText(`.queue-item[data-status="queued"] .queue-pos`, "1"))...)
	shot(t, ctx, "1-position-polling")
	s.startScheduler()
	run(t, ctx, "result by polling",
		within(15*time.Second, chromedp.WaitVisible(chromedp.CSS(`.queue-item[data-status="enrolled"]`))),
		waitText(`.queue-item .status`, "신청 완료"))
	shot(t, ctx, "2-result-polling")
}

// registerFromSearch logs student 202690000 in and returns the actions that
// search "컴파일러" and press 신청 on CSE4051-01 in the results.
func registerFromSearch(t *testing.T, s *stack, ctx context.Context) []chromedp.Action[chromedp.Void] {
	t.Helper()
	var courseID int64
	if err := s.db.Get(&courseID, "SELECT id FROM courses WHERE code = 'CSE4051' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`#results-body tr[data-course-id="%d"]`, courseID)
	s.searchReady("컴파일러", courseID)
	loginStudent(t, ctx, s.url, "202690000")
	return []chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS("#q"), "컴파일러"),
		chromedp.Click(chromedp.CSS("#search-btn")),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row + " .enroll-now")),
	}
}

// TestSilentSocketFallsBackToPolling: the socket stays open but queue-ws
// stops sending (the process is frozen, as behind a NAT that dropped the
// mapping): within a few seconds the screen stops trusting it and polls;
// when queue-ws is back the screen goes live again, and shows the result.
func TestSilentSocketFallsBackToPolling(t *testing.T) {
	s := newStack(t, 1, true, true)
	ctx := browser(t, 1024, 768)
	run(t, ctx, "register, live",
		append(registerFromSearch(t, s, ctx),
			waitText("#queue-mode", "실시간 연결됨"),
			waitText(`.queue-item[data-status="queued"] .queue-pos`, "1"))...)
	if err := s.ws.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.ws.Signal(syscall.SIGCONT) }()
	run(t, ctx, "silence noticed",
		within(25*time.Second, waitText("#queue-mode", "2초마다 확인 중")),
		waitText(`.queue-item[data-status="queued"] .queue-pos`, "1"))
	// queue-ws comes back: within the retry period (15–30 s) the screen is
	// live again.
	if err := s.ws.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "live again",
		within(45*time.Second, waitText("#queue-mode", "실시간 연결됨")))
	s.startScheduler()
	run(t, ctx, "result",
		within(15*time.Second, chromedp.WaitVisible(chromedp.CSS(`.queue-item[data-status="enrolled"]`))))
}

// TestStudentRegisters: log in, search in Korean, add to the cart, register
// everything in it, see the queue position while the line is held, then the
// result once the scheduler runs, the timetable, and drop.
func TestStudentRegisters(t *testing.T) {
	s := newStack(t, 3, true, true)
	ctx := browser(t, 1280, 900)
	var courseID int64
	if err := s.db.Get(&courseID, "SELECT id FROM courses WHERE code = 'CSE2000' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`#results-body tr[data-course-id="%d"]`, courseID)
	s.searchReady("자료", courseID)

	loginStudent(t, ctx, s.url, "202690000")
	run(t, ctx, "search in Korean",
		chromedp.SendKeys(chromedp.CSS("#q"), "자료"),
		chromedp.Click(chromedp.CSS("#search-btn")),
		chromedp.WaitVisible(chromedp.CSS(row)),
		// The count depends on the backend that answered: the node (bigram
		// match) or, if it was slow under load, the SQL fallback (LIKE).
		waitText("#search-total", "검색 결과"))
	shot(t, ctx, "1-search")
	run(t, ctx, "add to cart",
		chromedp.Click(chromedp.CSS(row+" .add-cart")),
		waitText(row+" .inline-note", "장바구니에 담았습니다"),
		chromedp.Click(chromedp.CSS(`#nav a[href="#/cart"]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#cart-table tr[data-course-id="%d"]`, courseID))))
	shot(t, ctx, "2-cart")

	// The scheduler is not running yet: the request waits at position 1,
	// pushed by queue-ws.
	run(t, ctx, "register the cart",
		chromedp.Click(chromedp.CSS("#register-all")),
		waitText("#queue-mode", "실시간 연결됨"),
		chromedp.WaitVisible(chromedp.CSS(`.queue-item[data-status="queued"] .queue-pos`)),
		waitText(`.queue-item[data-status="queued"] .queue-pos`, "1"),
		waitText(`.queue-item .status`, "대기 중"))
	shot(t, ctx, "3-position")
	s.startScheduler()
	run(t, ctx, "see the result",
		within(30*time.Second, chromedp.WaitVisible(chromedp.CSS(`.queue-item[data-status="enrolled"]`))),
		waitText(`.queue-item .status`, "신청 완료"))
	shot(t, ctx, "4-result")
	var n int
	_ = s.db.Get(&n, "SELECT COUNT(*) FROM enrollments WHERE course_id = ?", courseID)
	if n != 1 {
		t.Fatalf("enrollments in the course = %d, want 1", n)
	}

	run(t, ctx, "timetable",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/timetable"]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#timetable .block[data-course-id="%d"]`, courseID))),
		waitText("#timetable", "자료구조"))
	shot(t, ctx, "5-timetable")

	run(t, ctx, "drop",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/enrollments"]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#enrollments tr[data-course-id="%d"] .drop-btn`, courseID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#enrollments tr[data-course-id="%d"] .drop-btn`, courseID))),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog #confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#enrollments tr[data-course-id="%d"][data-state="dropped"]`, courseID))),
		waitText("#enrollments .inline-note", "수강 취소되었습니다"))
	shot(t, ctx, "6-dropped")
	_ = s.db.Get(&n, "SELECT COUNT(*) FROM enrollments")
	if n != 0 {
		t.Fatalf("enrollments after the drop = %d, want 0", n)
	}

	// English switch and phone width.
	run(t, ctx, "english at phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Click(chromedp.CSS(`#nav a[href="#/search"]`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS("#lang-toggle")),
		waitText("#view-title", "Find courses"),
		chromedp.WaitVisible(chromedp.CSS(row)))
	shot(t, ctx, "7-phone-english")
}

// TestAdminImportsAndOpens: an admin logs in, uploads a bad catalog and sees
// every bad row (nothing imported), uploads a good one and sees it finish,
// opens the registration window, and watches the dashboard.
func TestAdminImportsAndOpens(t *testing.T) {
	s := newStack(t, 0, false, false)
	ctx := browser(t, 1280, 900)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad-catalog.csv")
	good := filepath.Join(dir, "catalog.csv")
	header := "code,section,title,title_en,department,professor,credits,capacity,meetings,room,category\n"
	if err := os.WriteFile(bad, []byte(header+
		"NEW1001,01,새 강좌,New Course,컴퓨터공학과,김교수,3,40,MON 09:00-10:15,공학관 101,전공선택\n"+
		"NEW1002,01,잘못된 강좌,Broken,컴퓨터공학과,김교수,9,-5,FUN 09:00-10:15,공학관 101,전공선택\n"+
		"NEW1001,01,중복,Dup,컴퓨터공학과,김교수,3,40,TUE 09:00-10:15,공학관 101,전공선택\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte(header+
		"NEW1001,01,새 강좌,New Course,컴퓨터공학과,김교수,3,40,MON 09:00-10:15,공학관 101,전공선택\n"+
		"NEW1002,01,새 실험,New Lab,컴퓨터공학과,이교수,2,20,TUE 13:00-15:50,공학관 102,전공필수\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		_ = s.db.Get(&n, "SELECT COUNT(*) FROM courses")
		return n
	}
	before := count()

	run(t, ctx, "admin log in",
		chromedp.Navigate(s.url+"/#/admin/login"),
		chromedp.WaitVisible(chromedp.CSS("#admin-user")),
		chromedp.SendKeys(chromedp.CSS("#admin-user"), adminUser),
		chromedp.SendKeys(chromedp.CSS("#admin-password"), adminPassword),
		chromedp.Click(chromedp.CSS("#admin-login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#kpi-pending")))
	run(t, ctx, "bad catalog",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/import"]`)),
		chromedp.WaitVisible(chromedp.CSS("#catalog-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#catalog-file"), []string{bad}),
		chromedp.Click(chromedp.CSS("#catalog-upload")),
		chromedp.WaitVisible(chromedp.CSS("#catalog-errors tbody tr")),
		waitText("#catalog-errors", "credits_out_of_range"),
		waitText("#catalog-errors", "duplicate_section"))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#catalog-errors tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows < 4 {
		t.Errorf("error report has %d rows, want every problem (≥4)", rows)
	}
	shot(t, ctx, "1-import-errors")
	if n := count(); n != before {
		t.Fatalf("a refused import changed courses: %d → %d", before, n)
	}
	run(t, ctx, "good catalog",
		chromedp.SetUploadFiles(chromedp.CSS("#catalog-file"), []string{good}),
		chromedp.Click(chromedp.CSS("#catalog-upload")),
		within(30*time.Second, chromedp.WaitVisible(chromedp.CSS("#catalog-done"))),
		waitText("#catalog-done", "추가 2"))
	shot(t, ctx, "2-import-done")
	if n := count(); n != before+2 {
		t.Fatalf("courses after import = %d, want %d", n, before+2)
	}

	run(t, ctx, "open the window",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/windows"]`)),
		chromedp.WaitVisible(chromedp.CSS("#window-open")),
		waitText("#window-state", "닫힘"),
		chromedp.Click(chromedp.CSS("#window-open")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog #confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS("#window-close")),
		waitText("#window-state", "열림"))
	shot(t, ctx, "3-window-open")
	if open, err := s.q.IsOpen(context.Background()); err != nil || !open {
		t.Fatalf("window flag after opening: %v %v", open, err)
	}
	// Opening reconciled the seat hints, new sections included.
	var id int64
	_ = s.db.Get(&id, "SELECT id FROM courses WHERE code = 'NEW1002'")
	if h, ok, _ := s.q.SeatHint(context.Background(), id); !ok || h != 20 {
		t.Errorf("seat hint of an imported section: %d %v", h, ok)
	}

	// Students on the page, as queue-ws instances report them.
	if err := s.q.ReportSessions(context.Background(), "e2e/127.0.0.1:1", 1234, time.Now()); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "dashboard",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS("#chart-queue svg")),
		waitText("#kpi-open", "열림"),
		waitText("#kpi-sessions", "1,234"),
		chromedp.WaitVisible(chromedp.CSS("#fill tbody tr")),
		chromedp.Sleep(2200*time.Millisecond))
	shot(t, ctx, "4-dashboard")
}

// loginAdmin logs the registrar in and waits for the dashboard.
func loginAdmin(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	run(t, ctx, "admin log in",
		chromedp.Navigate(url+"/#/admin/login"),
		chromedp.WaitVisible(chromedp.CSS("#admin-user")),
		chromedp.SendKeys(chromedp.CSS("#admin-user"), adminUser),
		chromedp.SendKeys(chromedp.CSS("#admin-password"), adminPassword),
		chromedp.Click(chromedp.CSS("#admin-login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#kpi-pending")))
}

// TestPrequeueLottery: registration is closed; the registrar opens the
// pre-queue from the dashboard. A student presses 신청 in the search results
// and is told the request is in the pre-queue (no position), registers a
// second section from the cart, and the requests screen lists both as
// waiting for the draw; the dashboard counts them. The second section is
// then closed to new students (capacity 0). The registrar opens registration
// on the windows page, which draws the pre-queue; the student's requests
// screen, never reloaded, shows the first entry as a request with its live
// position and then its result, and the second as refused at the draw.
func TestPrequeueLottery(t *testing.T) {
	s := newStack(t, 1, false, true)
	bg := context.Background()
	admin := browser(t, 1280, 1000)
	student := browser(t, 1024, 768)
	var courseID, fullID int64
	if err := s.db.Get(&courseID, "SELECT id FROM courses WHERE code = 'CSE4051' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Get(&fullID, "SELECT id FROM courses WHERE code = 'CSE2000' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	item := fmt.Sprintf(`.queue-item[data-course-id="%d"]`, courseID)
	fullItem := fmt.Sprintf(`.queue-item[data-course-id="%d"]`, fullID)
	s.searchReady("자료", fullID)

	loginAdmin(t, admin, s.url)
	run(t, admin, "open the pre-queue from the dashboard",
		waitText("#kpi-open", "닫힘"),
		waitText("#prequeue-state", "닫힘"),
		waitText("#prequeue-toggle", "사전 대기열 열기"),
		chromedp.WaitEnabled(chromedp.CSS("#prequeue-toggle")),
		chromedp.Click(chromedp.CSS("#prequeue-toggle")),
		waitText("#flash", "사전 대기열을 열었습니다"),
		waitText("#prequeue-state", "열림"),
		waitText("#prequeue-toggle", "사전 대기열 닫기"),
		waitText("#prequeue-count", "학생 0명"))
	if st, err := s.q.DrawStatus(bg); err != nil || !st.Open {
		t.Fatalf("pre-queue after the dashboard's button: %+v %v", st, err)
	}

	run(t, student, "register into the pre-queue",
		append(registerFromSearch(t, s, student),
			waitText("#flash", "사전 대기열에 담겼습니다. 신청 시작 시각에 추첨으로 순서가 정해집니다."),
			waitText("#view-title", "강좌 검색"))...)
	shot(t, student, "1-prequeued-message")
	// A marker that a reload would wipe: the drawn request must appear
	// without one.
	if _, err := chromedp.Run(student, chromedp.Evaluate[bool](`window.eqNoReload = true`)); err != nil {
		t.Fatal(err)
	}
	run(t, student, "waiting for the draw",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/queue"]`)),
		chromedp.WaitVisible(chromedp.CSS(item+`[data-status="prequeued"]`)),
		waitText(item+" .status", "추첨 대기"),
		waitText(item, "신청 시작 시각에 추첨으로 순서가 정해집니다"),
		waitText("#queue-mode", "추첨 결과를 기다리는 중"))
	run(t, student, "register the cart into the pre-queue",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/search"]`)),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#q').value = '자료'`),
		chromedp.Click(chromedp.CSS("#search-btn")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#results-body tr[data-course-id="%d"] .add-cart`, fullID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#results-body tr[data-course-id="%d"] .add-cart`, fullID))),
		waitText(fmt.Sprintf(`#results-body tr[data-course-id="%d"] .inline-note`, fullID), "장바구니에 담았습니다"),
		chromedp.Click(chromedp.CSS(`#nav a[href="#/cart"]`)),
		chromedp.WaitVisible(chromedp.CSS("#register-all")),
		chromedp.Click(chromedp.CSS("#register-all")),
		waitText("#flash", "사전 대기열에 1개 강좌를 담았습니다"),
		chromedp.WaitVisible(chromedp.CSS(fullItem+`[data-status="prequeued"]`)),
		chromedp.WaitVisible(chromedp.CSS(item+`[data-status="prequeued"]`)),
		waitText(fullItem+" .status", "추첨 대기"))
	if n, err := chromedp.Run(student, chromedp.Evaluate[int](`document.querySelectorAll('.queue-pos').length`)); err != nil || n != 0 {
		t.Fatalf("a pre-queue entry shows a position (%d elements, %v)", n, err)
	}
	shot(t, student, "2-waiting-for-draw")

	run(t, admin, "dashboard counts the pre-queue",
		waitText("#prequeue-count", "학생 1명 · 담긴 신청 2건"),
		waitText("#prequeue-draw", "수강신청을 열면 1명을 추첨합니다"))
	shot(t, admin, "3-dashboard-prequeue")
	// The opening reconciles the seat hints from MariaDB: this section is
	// full by then, and its entry is refused at the draw.
	if _, err := s.db.Exec("UPDATE courses SET capacity = 0 WHERE id = ?", fullID); err != nil {
		t.Fatal(err)
	}

	run(t, admin, "open registration: the draw",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/windows"]`)),
		chromedp.WaitVisible(chromedp.CSS("#window-open")),
		waitText("#prequeue-count", "학생 1명"),
		chromedp.Click(chromedp.CSS("#window-open")),
		waitText("#confirm-dialog", "대기 중인 사전 대기열 1명이 추첨"),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS("#window-close")),
		waitText("#window-result", "사전 대기열 1명을 추첨했습니다"),
		waitText("#window-state", "열림"),
		// One of the two was refused (sold out): only the other counts as
		// admitted, and the refusal is shown with its reason.
		waitText("#prequeue-done", "추첨 완료: 2건 중 1건 배정"),
		waitText("#prequeue-refused", "거절 1건: 정원 마감 1"),
		waitText("#prequeue-note", "수강신청이 닫혀 있을 때만"))
	shot(t, admin, "4-drawn")
	if st, err := s.q.DrawStatus(bg); err != nil || st.State != queue.DrawDone || st.Total != 2 || st.Cursor != 2 || st.Open ||
		st.Admitted != 1 || st.Refused["sold_out"] != 1 {
		t.Fatalf("draw after opening: %+v %v", st, err)
	}

	// The scheduler is not running: the drawn request waits at position 1.
	// The screen learns each entry's outcome from queue-ws's drawn frames
	// (else from one read after the opened frame; its fallback read comes
	// only after 60–120 s with a socket) and watches the request live.
	run(t, student, "drawn request, live",
		within(20*time.Second, chromedp.WaitVisible(chromedp.CSS(item+`[data-status="queued"] .queue-pos`))),
		waitText(item+" .queue-pos", "1"),
		waitText(item+" .status", "대기 중"),
		within(15*time.Second, waitText("#queue-mode", "실시간 연결됨")),
		waitText(fullItem+`[data-status="error"] .status`, "접수 안 됨"),
		waitText(fullItem, "추첨 후 접수되지 않음: 정원 마감"))
	type screen struct {
		Prequeued int  `json:"prequeued"`
		ID        int  `json:"id"`
		NoReload  bool `json:"no_reload"`
	}
	left, err := chromedp.Run(student, chromedp.Evaluate[screen](`({
		prequeued: document.querySelectorAll('.queue-item[data-status="prequeued"]').length,
		id: Number(document.querySelector('.queue-item[data-status="queued"]').dataset.requestId),
		no_reload: window.eqNoReload === true })`))
	if err != nil {
		t.Fatal(err)
	}
	if left.Prequeued != 0 || left.ID <= 0 || !left.NoReload {
		t.Fatalf("after the draw: %+v (want no entry waiting for the draw, the request's id, no reload)", left)
	}
	shot(t, student, "5-drawn-live")

	s.startScheduler()
	run(t, student, "result",
		within(20*time.Second, chromedp.WaitVisible(chromedp.CSS(item+`[data-status="enrolled"]`))),
		waitText(item+" .status", "신청 완료"))
	shot(t, student, "6-result")
	var n int
	if err := s.db.Get(&n, "SELECT COUNT(*) FROM enrollments WHERE course_id = ?", courseID); err != nil || n != 1 {
		t.Fatalf("enrollments in the course = %d (%v), want 1", n, err)
	}
}

// TestOpeningRetry: a student who presses 신청 while the opening draws the
// pre-queue gets 503 opening (nothing is queued); the page says so and sends
// the request again after Retry-After, so once the window is open the
// request is queued without the student pressing again.
func TestOpeningRetry(t *testing.T) {
	s := newStack(t, 1, false, true)
	bg := context.Background()
	ctx := browser(t, 1280, 900)
	var courseID int64
	if err := s.db.Get(&courseID, "SELECT id FROM courses WHERE code = 'CSE4051' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	// The opening is drawing: admit.lua tells every arrival "opening".
	draw := s.q.Keys().Draw()
	if err := s.rdb.HSet(bg, draw, "state", queue.DrawDrawing, "total", 1, "cursor", 0).Err(); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "press 신청 during the draw",
		append(registerFromSearch(t, s, ctx),
			waitText("#flash", "수강신청을 여는 중입니다"))...)
	shot(t, ctx, "1-opening")
	if n, err := s.rdb.ZCard(bg, s.q.Keys().Pending()).Result(); err != nil || n != 0 {
		t.Fatalf("queued during the draw: %d requests, %v", n, err)
	}
	// The draw ends and the window opens; the page's next try is queued.
	if err := s.rdb.HSet(bg, draw, "state", queue.DrawDone, "cursor", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.q.SetOpen(bg, true); err != nil {
		t.Fatal(err)
	}
	item := fmt.Sprintf(`.queue-item[data-course-id="%d"]`, courseID)
	run(t, ctx, "queued after the opening, without pressing again",
		within(15*time.Second, chromedp.WaitVisible(chromedp.CSS(item+`[data-status="queued"]`))),
		waitText("#view-title", "신청 현황"))
	shot(t, ctx, "2-queued")
	if n, err := s.rdb.ZCard(bg, s.q.Keys().Pending()).Result(); err != nil || n != 1 {
		t.Fatalf("after the opening: %d requests queued, want 1 (%v)", n, err)
	}
}
