package positions

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

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

// recSink records every frame it accepts. refuse makes it refuse frames:
// "droppable" refuses positions, "all" refuses everything.
type recSink struct {
	mu     sync.Mutex
	frames []frame
	raw    [][]byte
	refuse string
	closed []int
}

func (r *recSink) Send(b []byte, droppable bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse == "all" || (r.refuse == "droppable" && droppable) {
		return false
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		panic(fmt.Sprintf("invalid frame %q: %v", b, err))
	}
	r.frames = append(r.frames, f)
	r.raw = append(r.raw, b)
	return true
}

func (r *recSink) Close(code int, reason string) {
	r.mu.Lock()
	r.closed = append(r.closed, code)
	r.mu.Unlock()
}

func (r *recSink) all() []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]frame(nil), r.frames...)
}

// of returns the frames about request id.
func (r *recSink) of(id int64) []frame {
	var out []frame
	for _, f := range r.all() {
		if f.RequestID == id {
			out = append(out, f)
		}
	}
	return out
}

func (r *recSink) results(id int64) []frame {
	var out []frame
	for _, f := range r.of(id) {
		if f.Type == "result" {
			out = append(out, f)
		}
	}
	return out
}

func (r *recSink) lastPosition(id int64) (frame, bool) {
	fs := r.of(id)
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Type == "position" {
			return fs[i], true
		}
	}
	return frame{}, false
}

// discardSink accepts every frame and keeps nothing.
type discardSink struct{}

func (discardSink) Send([]byte, bool) bool { return true }
func (discardSink) Close(int, string)      {}

// checkGoroutines fails the test if goroutines started during it are still
// running a few seconds after its cleanups. Call it first in a test, so its
// cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

type bundle struct {
	ctx   context.Context
	rdb   *redis.Client
	q     *queue.Redis
	db    *dbtest.DB
	store *enroll.Store
}

// setupLine returns a queue on its own key space, window open, with seat
// hints for courses 1..5 (1000 seats each).
func setupLine(t testing.TB) *bundle {
	t.Helper()
	rdb, term := dbtest.Redis(t)
	q := queue.New(rdb, term)
	q.RateLimit = 0
	ctx := context.Background()
	var sc []enroll.SeatCount
	for c := int64(1); c <= 5; c++ {
		sc = append(sc, enroll.SeatCount{ID: c, Capacity: 1000, Open: true})
	}
	if err := q.Reconcile(ctx, sc, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	return &bundle{ctx: ctx, rdb: rdb, q: q}
}

// withDB adds a migrated MariaDB database with courses 1..5 (3 credits, 1000
// seats) and students 1..n.
func withDB(t testing.TB, b *bundle, n int) {
	t.Helper()
	b.db = dbtest.New(t)
	b.store = enroll.NewStore(b.db.DB, "test")
	for c := 1; c <= 5; c++ {
		if _, err := b.db.ExecContext(b.ctx, `INSERT INTO courses (id, code, section, title, department, credits, capacity)
			VALUES (?, ?, '01', 'Course', 'CS', 3, 1000)`, c, fmt.Sprintf("CS%03d", c)); err != nil {
			t.Fatal(err)
		}
	}
	var sb strings.Builder
	args := []any{}
	for s := 1; s <= n; s++ {
		if s > 1 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?, ?, 'Student', 1, 'CS')")
		args = append(args, s, fmt.Sprintf("S%06d", s))
	}
	if _, err := b.db.ExecContext(b.ctx, "INSERT INTO students (id, student_no, name, year, department) VALUES "+sb.String(), args...); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) admit(t *testing.T, student, course int64) int64 {
	t.Helper()
	a, err := b.q.Admit(b.ctx, student, course)
	if err != nil {
		t.Fatalf("admit student %d course %d: %v", student, course, err)
	}
	return a.RequestID
}

// fakeDecide acks requests with made-up decisions (no MariaDB).
func (b *bundle) fakeDecide(t *testing.T, rs []enroll.Request) []enroll.Decision {
	t.Helper()
	ds := make([]enroll.Decision, len(rs))
	for i, r := range rs {
		st := enroll.StatusEnrolled
		if r.Cancelled {
			st = enroll.StatusCancelled
		}
		ds[i] = enroll.Decision{RequestID: r.ID, StudentID: r.StudentID, CourseID: r.CourseID, Ticket: r.Ticket, Status: st}
	}
	if err := b.q.Ack(b.ctx, ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// pendingAhead is the ground truth: pending requests with a lower ticket.
func (b *bundle) pendingAhead(t *testing.T, id int64) (int64, bool) {
	t.Helper()
	if _, err := b.rdb.ZScore(b.ctx, b.q.Keys().Pending(), fmt.Sprint(id)).Result(); err == redis.Nil {
		return 0, false
	} else if err != nil {
		t.Fatal(err)
	}
	n, err := b.rdb.ZCount(b.ctx, b.q.Keys().Pending(), "-inf", fmt.Sprintf("(%d", id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n, true
}

// runEngine runs e's loops until the test ends.
func runEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSubscribed waits for e's events subscription.
func waitSubscribed(t *testing.T, e *Engine) {
	t.Helper()
	eventually(t, 5*time.Second, "events subscription", func() bool { return e.Stats().Subscribed })
}
