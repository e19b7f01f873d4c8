package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/app"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/seat"
	"github.com/enrollq/enrollq/internal/verify"
)

// env is the use cases over their own database and Redis key space.
type env struct {
	t        *testing.T
	db       *dbtest.DB
	rdb      *redis.Client
	term     string
	svc      *app.Service
	courses  []int64
	students []int64
}

func newEnv(t *testing.T, courses []dbtest.SeedCourse, students int) *env {
	t.Helper()
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	e := &env{t: t, db: db, rdb: rdb, term: term}
	e.courses = dbtest.SeedCourses(t, db.DB, courses)
	e.students = dbtest.SeedStudents(t, db.DB, students, 18, "")
	q := queue.New(rdb, term)
	q.RateLimit = 0
	e.svc = &app.Service{DB: db.DB, Replica: db.DB, Queue: q, Store: enroll.NewStore(db.DB, term),
		Signer: auth.NewSigner("seams-test-secret-0123456789abcdef"), TokenTTL: time.Hour, WSTokenTTL: time.Minute,
		CancelLease: time.Minute, BcryptCost: 4, Term: term, Log: slog.New(slog.DiscardHandler)}
	if _, err := e.svc.SetWindow(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) claims(i int) auth.Claims {
	return auth.Claims{Kind: auth.KindStudent, Subject: e.students[i], Year: 1}
}

// scheduler is a drain leader over rdb (the env's client unless given).
func (e *env) scheduler(rdb *redis.Client, cfg enroll.SchedulerConfig) *enroll.Scheduler {
	if rdb == nil {
		rdb = e.rdb
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	q := queue.New(rdb, e.term)
	return enroll.NewScheduler(q, enroll.NewStore(e.db.DB, e.term), redsync.New(goredis.NewPool(rdb)), q.Keys().Lock(), cfg)
}

func (e *env) start(s *enroll.Scheduler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Start(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *env) waitDrained(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.svc.Queue.Stats(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if st.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d requests still pending after %v", st.Pending, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// laws copies the refusal marks (as the drain does) and checks every law.
func (e *env) laws(admitted []int64) verify.Report {
	e.t.Helper()
	ctx := context.Background()
	marks, err := e.svc.Queue.Refusals(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.Store.RecordRefusals(ctx, marks); err != nil {
		e.t.Fatal(err)
	}
	rep, err := verify.Check(ctx, e.db.DB, admitted)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func (e *env) status(id int64) enroll.Decision {
	e.t.Helper()
	d, err := e.svc.Store.Decision(context.Background(), id)
	if err != nil {
		e.t.Fatalf("decision of %d: %v", id, err)
	}
	return d
}

// TestDropBetweenCommitAndAck (seam 1): the student drops a course after
// its batch committed and before the batch's ack ran. The late ack must not
// lock the student out of the section, and neither may a stale enrolled
// hint (a drop whose hint update was lost): "already enrolled" is said only
// when MariaDB says so.
func TestDropBetweenCommitAndAck(t *testing.T) {
	e := newEnv(t, []dbtest.SeedCourse{{Code: "SEAM1", Section: "01", Credits: 3, Capacity: 5}}, 2)
	ctx := context.Background()
	course := e.courses[0]
	committed, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.start(e.scheduler(nil, enroll.SchedulerConfig{AfterCommit: func([]enroll.Decision) {
		once.Do(func() { close(committed); <-release })
	}}))
	a, err := e.svc.Enroll(ctx, e.claims(0), course, queue.Limit{})
	if err != nil {
		t.Fatal(err)
	}
	<-committed
	if err := e.svc.Drop(ctx, e.claims(0), course); err != nil {
		t.Fatalf("drop in the commit→ack gap: %v", err)
	}
	close(release)
	e.waitDrained(5 * time.Second)
	if d := e.status(a.RequestID); d.Status != enroll.StatusEnrolled {
		t.Fatalf("first request: %+v", d)
	}
	again, err := e.svc.Enroll(ctx, e.claims(0), course, queue.Limit{})
	if err != nil {
		t.Fatalf("enroll again after the drop: %v (the late ack resurrected the enrolled hint)", err)
	}
	e.waitDrained(5 * time.Second)
	if d := e.status(again.RequestID); d.Status != enroll.StatusEnrolled {
		t.Fatalf("second request: %+v", d)
	}
	// Truly enrolled: the refusal is true.
	if _, err := e.svc.Enroll(ctx, e.claims(0), course, queue.Limit{}); !errors.Is(err, enroll.ErrAlreadyEnrolled) {
		t.Fatalf("enrolled student: err = %v, want already_enrolled", err)
	}
	// A stale hint (student 1 never enrolled) must not refuse.
	e.rdb.SAdd(ctx, e.svc.Queue.Keys().Enrolled(e.students[1]), course)
	third, err := e.svc.Enroll(ctx, e.claims(1), course, queue.Limit{})
	if err != nil {
		t.Fatalf("stale enrolled hint: %v, want admitted", err)
	}
	e.waitDrained(5 * time.Second)
	if rep := e.laws([]int64{a.RequestID, again.RequestID, third.RequestID}); !rep.OK() {
		t.Fatalf("laws: %s", rep)
	}
}

// TestReconcileBetweenCommitAndAck (seam 2): a reconcile that runs between
// a batch's commit and its ack must not count the batch twice (in MariaDB's
// enrolled and as pending), which would tell the next student "sold out"
// while a seat is free.
func TestReconcileBetweenCommitAndAck(t *testing.T) {
	e := newEnv(t, []dbtest.SeedCourse{{Code: "SEAM2", Section: "01", Credits: 3, Capacity: 2}}, 3)
	ctx := context.Background()
	course := e.courses[0]
	var (
		once    sync.Once
		inGap   app.Admitted
		gapErr  error
		hintGap int64
		done    = make(chan struct{})
	)
	e.start(e.scheduler(nil, enroll.SchedulerConfig{AfterCommit: func([]enroll.Decision) {
		once.Do(func() {
			defer close(done)
			if err := e.svc.Reconcile(ctx); err != nil {
				gapErr = err
				return
			}
			hintGap, _, _ = e.svc.Queue.SeatHint(ctx, course)
			inGap, gapErr = e.svc.Enroll(ctx, e.claims(1), course, queue.Limit{})
		})
	}}))
	first, err := e.svc.Enroll(ctx, e.claims(0), course, queue.Limit{})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if gapErr != nil {
		t.Fatalf("student 2 in the gap: %v (hint after the reconcile: %d, want 1)", gapErr, hintGap)
	}
	e.waitDrained(5 * time.Second)
	if d := e.status(inGap.RequestID); d.Status != enroll.StatusEnrolled {
		t.Fatalf("student 2: %+v", d)
	}
	if _, err := e.svc.Enroll(ctx, e.claims(2), course, queue.Limit{}); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatalf("student 3 with both seats taken: err = %v, want sold_out", err)
	}
	if rep := e.laws([]int64{first.RequestID, inGap.RequestID}); !rep.OK() {
		t.Fatalf("laws: %s", rep)
	}
}

// staleSource reads MariaDB's seats and then lets a drop commit before
// handing back what it read, as a drop racing a reconcile does.
type staleSource struct {
	*enroll.Store
	between func()
}

func (s staleSource) Seats(ctx context.Context) ([]enroll.SeatCount, error) {
	out, err := s.Store.Seats(ctx)
	s.between()
	return out, err
}

// TestDropDuringReconcile: a reconcile whose counts were read before a drop
// committed must not take the drop's seat back out of the hint.
func TestDropDuringReconcile(t *testing.T) {
	e := newEnv(t, []dbtest.SeedCourse{{Code: "SEAM2B", Section: "01", Credits: 3, Capacity: 1}}, 2)
	ctx := context.Background()
	course := e.courses[0]
	e.start(e.scheduler(nil, enroll.SchedulerConfig{}))
	a, err := e.svc.Enroll(ctx, e.claims(0), course, queue.Limit{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitDrained(5 * time.Second)
	src := staleSource{Store: e.svc.Store, between: func() {
		if err := e.svc.Drop(ctx, e.claims(0), course); err != nil {
			t.Errorf("drop: %v", err)
		}
	}}
	if err := seat.Reconcile(ctx, src, e.svc.Queue); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := e.svc.Queue.SeatHint(ctx, course); h != 1 {
		t.Fatalf("hint after a drop raced the reconcile: %d, want 1", h)
	}
	b, err := e.svc.Enroll(ctx, e.claims(1), course, queue.Limit{})
	if err != nil {
		t.Fatalf("the freed seat: %v", err)
	}
	e.waitDrained(5 * time.Second)
	if rep := e.laws([]int64{a.RequestID, b.RequestID}); !rep.OK() {
		t.Fatalf("laws: %s", rep)
	}
}

// TestFalseSoldOutIsCaught: the law 7 check itself. A hint wrongly at 0
// refuses a student; after the hint is repaired a later student takes the
// seat with no seat freed in between: verify must report it.
func TestFalseSoldOutIsCaught(t *testing.T) {
	e := newEnv(t, []dbtest.SeedCourse{{Code: "SEAM7", Section: "01", Credits: 3, Capacity: 3}}, 2)
	ctx := context.Background()
	course := e.courses[0]
	e.rdb.HSet(ctx, e.svc.Queue.Keys().Seats(), course, 0)
	if _, err := e.svc.Enroll(ctx, e.claims(0), course, queue.Limit{}); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatalf("want a (false) sold_out: %v", err)
	}
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	later, err := e.svc.Enroll(ctx, e.claims(1), course, queue.Limit{})
	if err != nil {
		t.Fatal(err)
	}
	e.start(e.scheduler(nil, enroll.SchedulerConfig{}))
	e.waitDrained(5 * time.Second)
	// The drain copies the marks when the line empties.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := e.db.DB.Get(&n, `SELECT COUNT(*) FROM refusal_marks WHERE course_id = ?`, course); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the drain did not copy the refusal mark to MariaDB")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep, err := verify.Check(ctx, e.db.DB, []int64{later.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FalseSoldOut != 1 {
		var dump []struct {
			Ticket int64     `db:"ticket"`
			At     time.Time `db:"at"`
			Kind   string    `db:"kind"`
		}
		_ = e.db.DB.Select(&dump, `SELECT ticket, refused_at AS at, 'mark' AS kind FROM refusal_marks UNION ALL SELECT ticket, decided_at, status FROM enrollment_requests`)
		t.Fatalf("report %s, want false_sold_out=1; rows %+v", rep, dump)
	}
	// A seat freed between the refusal and the enrollment explains it.
	e.db.MustExec(`INSERT INTO capacity_changes (course_id, old_capacity, new_capacity, changed_at)
		SELECT ?, 2, 3, refused_at FROM refusal_marks WHERE course_id = ?`, course, course)
	if rep, _ := verify.Check(ctx, e.db.DB, []int64{later.RequestID}); rep.FalseSoldOut != 0 {
		t.Fatalf("with a capacity raise in between: %s, want false_sold_out=0", rep)
	}
}

// proxy is a TCP relay to Redis whose client-to-server direction can be
// held: commands sent while it is paused reach Redis when it resumes, as a
// stalled process's or a partitioned link's do.
type proxy struct {
	addr   string
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	p.cond = sync.NewCond(&p.mu)
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); p.resume(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); defer s.Close(); p.pump(s, c) }()
			go func() { defer conns.Done(); defer c.Close(); _, _ = io.Copy(c, s) }()
		}
	}()
	return p
}

func (p *proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.paused {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) pause() { p.mu.Lock(); p.paused = true; p.mu.Unlock() }
func (p *proxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// TestStalledPopOfFormerLeader (seam 3): leader A's link to Redis stalls
// right as it sends a pop; its lock expires and B takes over and drains;
// then A's pop reaches Redis. The pop must be refused by Redis (the fence):
// otherwise it moves the lowest waiting tickets into A's in-flight set,
// B decides every later ticket first, and the stolen ones wait for the
// lease. Capacity 30 of 200 requests: FIFO means tickets 1..30 enroll.
func TestStalledPopOfFormerLeader(t *testing.T) {
	const students, capacity = 200, 30
	e := newEnv(t, []dbtest.SeedCourse{{Code: "SEAM3", Section: "01", Credits: 3, Capacity: capacity}}, students)
	ctx := context.Background()
	course := e.courses[0]
	// A hint far above the capacity: all 200 wait in line and MariaDB
	// refuses 170 under its row lock, so the order of decisions shows.
	e.rdb.HSet(ctx, e.svc.Queue.Keys().Seats(), course, 1000)
	var admitted []int64
	for i := range students {
		a, err := e.svc.Enroll(ctx, e.claims(i), course, queue.Limit{})
		if err != nil {
			t.Fatal(err)
		}
		admitted = append(admitted, a.RequestID)
	}
	px := newProxy(t, dbtest.RedisAddr())
	rdbA := redis.NewClient(&redis.Options{Addr: px.addr, MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	t.Cleanup(func() { rdbA.Close() })
	const lease = 5 * time.Second
	var (
		mu      sync.Mutex
		pops    int
		stalled = make(chan struct{})
	)
	a := e.scheduler(rdbA, enroll.SchedulerConfig{BatchSize: 5, LockTTL: 600 * time.Millisecond, Lease: lease,
		BeforePop: func() {
			mu.Lock()
			defer mu.Unlock()
			pops++
			if pops == 2 { // after the first batch: this pop is the one that stalls
				px.pause()
				close(stalled)
			}
		}})
	e.start(a)
	<-stalled
	took := make(chan struct{})
	var tookOnce sync.Once
	b := e.scheduler(nil, enroll.SchedulerConfig{BatchSize: 5, LockTTL: 600 * time.Millisecond, Lease: lease,
		AfterFence: func(int64) { tookOnce.Do(func() { close(took) }) }})
	e.start(b)
	select {
	case <-took:
	case <-time.After(10 * time.Second):
		t.Fatal("B never took the drain")
	}
	// B is draining; A's stalled pop now reaches Redis.
	for b.Decided() == 0 {
		time.Sleep(time.Millisecond)
	}
	px.resume()
	resumed := time.Now()
	e.waitDrained(30 * time.Second)
	if waited := time.Since(resumed); waited > lease-time.Second {
		t.Errorf("the line drained %v after A's pop landed: something waited for a lease (%v)", waited.Round(time.Millisecond), lease)
	}
	var enrolled []int64
	if err := e.db.DB.Select(&enrolled, `SELECT ticket FROM enrollment_requests WHERE course_id = ? AND status = 'enrolled' ORDER BY ticket`, course); err != nil {
		t.Fatal(err)
	}
	if len(enrolled) != capacity || enrolled[capacity-1] != admitted[capacity-1] {
		t.Fatalf("enrolled tickets %v, want the first %d (%d..%d)", enrolled, capacity, admitted[0], admitted[capacity-1])
	}
	if rep := e.laws(admitted); !rep.OK() {
		t.Fatalf("laws: %s", rep)
	}
}
