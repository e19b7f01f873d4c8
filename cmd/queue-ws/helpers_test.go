package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/revocation"
)

const testSecret = "queue-ws-test-secret"

// frame is a decoded server frame.
type frame struct {
	Type      string `json:"type"`
	RequestID int64  `json:"request_id"`
	Position  int64  `json:"position"`
	Ahead     int64  `json:"ahead"`
	ETA       *int64 `json:"eta_seconds"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Code      string `json:"code"`
	TS        int64  `json:"ts"`
}

// checkGoroutines fails the test if goroutines started during it outlive
// its cleanups. Call it first so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 64<<10) // the first goroutines are enough to name the leak
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// fixture is a term with courses, students and admitted requests, in a
// fresh MariaDB database and Redis key space.
type fixture struct {
	ctx    context.Context
	db     *dbtest.DB
	rdb    *redis.Client
	term   string
	q      *queue.Redis
	store  *enroll.Store
	signer *auth.Signer
	reqs   []admitted

	versions *revocation.Versions // token versions checked by servers started after it is set (nil: none)
}

type admitted struct {
	id, student int64
}

// newFixture creates nCourses courses (3 credits, 100 seats) and nStudents
// students (every 10th with a 2-credit limit, so its request is rejected),
// and admits one request per student.
func newFixture(t *testing.T, nStudents, nCourses int) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{ctx: ctx, db: dbtest.New(t), signer: auth.NewSigner(testSecret)}
	f.rdb, f.term = dbtest.Redis(t)
	f.q = queue.New(f.rdb, f.term)
	f.q.RateLimit = 0
	f.store = enroll.NewStore(f.db.DB, f.term)
	insertRows(t, f.db, "INSERT INTO courses (id, code, section, title, department, credits, capacity) VALUES ", nCourses,
		"(?, ?, '01', 'Course', 'CS', 3, 100)", func(i int) []any { return []any{i, fmt.Sprintf("CS%03d", i)} })
	insertRows(t, f.db, "INSERT INTO students (id, student_no, name, year, department, max_credits) VALUES ", nStudents,
		"(?, ?, 'Student', 1, 'CS', ?)", func(i int) []any {
			limit := 18
			if i%10 == 0 {
				limit = 2
			}
			return []any{i, fmt.Sprintf("S%06d", i), limit}
		})
	seats, err := f.store.Seats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.q.Reconcile(ctx, seats, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	f.reqs = make([]admitted, nStudents)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range nStudents {
		g.Go(func() error {
			st := int64(i + 1)
			a, err := f.q.Admit(ctx, st, 1+st%int64(nCourses))
			if err != nil {
				return fmt.Errorf("admit student %d: %w", st, err)
			}
			f.reqs[i] = admitted{id: a.RequestID, student: st}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return f
}

func insertRows(t *testing.T, db *dbtest.DB, head string, n int, tuple string, args func(i int) []any) {
	t.Helper()
	for lo := 1; lo <= n; lo += 500 {
		var sb strings.Builder
		var all []any
		for i := lo; i < lo+500 && i <= n; i++ {
			if i > lo {
				sb.WriteByte(',')
			}
			sb.WriteString(tuple)
			all = append(all, args(i)...)
		}
		if _, err := db.ExecContext(context.Background(), head+sb.String(), all...); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) wsToken(student int64) string {
	return f.signer.Issue(auth.Claims{Kind: auth.KindWS, Subject: student, StudentNo: fmt.Sprintf("S%06d", student)}, 10*time.Minute)
}

// decide pops, decides and acks one batch like the scheduler does.
func (f *fixture) decide(t testing.TB, n int) []enroll.Decision {
	t.Helper()
	rs, err := f.q.Pop(f.ctx, n, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return nil
	}
	ds, err := f.store.DecideBatch(f.ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.q.Ack(f.ctx, ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// trackingListener remembers accepted connections so a test can kill an
// instance abruptly (as a crash would), WebSockets included.
type trackingListener struct {
	net.Listener
	writeBuffer int // SO_SNDBUF of accepted connections (0: default)
	mu          sync.Mutex
	conns       []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok && l.writeBuffer > 0 {
			_ = tc.SetWriteBuffer(l.writeBuffer)
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) killAll() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// testServer is one in-process queue-ws instance on a random port.
type testServer struct {
	srv *server
	ln  *trackingListener
	url string
}

func startServer(t *testing.T, f *fixture, o options) *testServer {
	t.Helper()
	return startServerBuf(t, f, o, 0)
}

// startServerBuf starts a server whose connections have a send buffer of
// writeBuffer bytes (0: the kernel's default).
func startServerBuf(t *testing.T, f *fixture, o options, writeBuffer int) *testServer {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: dbtest.RedisAddr(), PoolSize: 32})
	q := queue.New(rdb, f.term)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := newServer(o, deps{Line: q, Redis: rdb, Keys: q.Keys(), Decisions: newGroupedDecisions(decisionReader{primary: f.store}), Signer: f.signer, Versions: f.versions})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, ln: &trackingListener{Listener: l, writeBuffer: writeBuffer}, url: "ws://" + l.Addr().String() + "/ws"}
	srv.start()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.serve(ts.ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		began := time.Now()
		if err := srv.shutdown(ctx); err != nil {
			st := srv.eng.Stats()
			t.Errorf("shutdown after %v: %v (sessions %d, watches %d, draw waiters %d, handshakes %d)",
				time.Since(began).Round(time.Millisecond), err, st.Sessions, st.Watches, st.DrawWaiters, srv.upgrading.Load())
		}
		<-served
		rdb.Close()
	})
	waitHealthy(t, srv)
	return ts
}

func waitHealthy(t *testing.T, s *server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.eng.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy: %v", s.eng.Healthy())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops the instance abruptly: listener and every connection closed
// without a close frame, engine stopped.
func (ts *testServer) kill(t *testing.T) {
	t.Helper()
	ts.ln.killAll()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := ts.srv.shutdown(ctx); err != nil {
		t.Errorf("shutdown after kill: %v", err)
	}
}

func wsURL(base, token string, ids ...int64) string {
	v := url.Values{}
	if token != "" {
		v.Set("token", token)
	}
	if len(ids) > 0 {
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = fmt.Sprint(id)
		}
		v.Set("requests", strings.Join(s, ","))
	}
	return base + "?" + v.Encode()
}

var dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}

// readFrame reads one frame with a deadline.
func readFrame(t *testing.T, c *websocket.Conn, d time.Duration) (frame, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bad frame %q: %v", b, err)
	}
	return f, nil
}
