package enroll_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/store"
	"github.com/enrollq/enrollq/internal/verify"
)

// TestMariaDBKilledMidDrain runs a private mariadbd (its own datadir and
// port, the same durability settings as the primary), SIGKILLs it while the
// scheduler drains a burst, starts it again on the same data, and checks that
// every admitted request is decided exactly once with no seat oversold: a
// batch whose commit was lost is requeued at its tickets and decided again,
// one whose commit survived is acked from its recorded decisions.
func TestMariaDBKilledMidDrain(t *testing.T) {
	if os.Getenv("ENROLLQ_FAULT_CHILD") == "1" {
		t.Skip()
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (make up installs MariaDB): %v", bin, err)
		}
	}
	u, _ := user.Current()
	dir := t.TempDir()
	port := freePort(t)
	cnf := filepath.Join(dir, "my.cnf")
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf(`[mariadbd]
user = %s
bind-address = 127.0.0.1
port = %d
socket = %s/sock
pid-file = %s/pid
datadir = %s/data
log-error = %s/error.log
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
default-time-zone = '+00:00'
innodb_flush_log_at_trx_commit = 1
innodb_buffer_pool_size = 64M
log_bin = %s/data/bin
sync_binlog = 1
`, u.Username, port, dir, dir, dir, dir, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mariadb-install-db", "--defaults-file="+cnf, "--user="+u.Username,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command("mariadbd", "--defaults-file="+cnf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	dsn := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
	waitUp := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for {
			db, err := store.Open(ctx, dsn)
			if err == nil {
				db.Close()
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("private mariadbd did not start: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	mcmd := start()
	waitUp()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin.MustExec("CREATE DATABASE enrollq CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	admin.Close()
	db, err := store.Open(ctx, dbtest.WithDatabase(dsn, "enrollq"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := store.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	courses := dbtest.SeedCourses(t, db, dbtest.RandomCatalog(rng, 60, 15))
	students := dbtest.SeedStudents(t, db, 1500, 12, "")

	rdb, term := dbtest.Redis(t)
	q := queue.New(rdb, term)
	q.RateLimit = 0
	st := enroll.NewStore(db, term)
	seats, _ := st.Seats(ctx)
	// generous hints: many requests reach MariaDB and are refused there
	for i := range seats {
		seats[i].Capacity += 10
	}
	if err := q.Reconcile(ctx, seats, 0); err != nil {
		t.Fatal(err)
	}
	_ = q.SetOpen(ctx, true)
	var admitted []int64
	for i := 0; i < 4000; i++ {
		a, err := q.Admit(ctx, students[rng.IntN(len(students))], courses[rng.IntN(len(courses))])
		if err == nil {
			admitted = append(admitted, a.RequestID)
		}
	}
	var mu sync.Mutex
	committed := 0
	sched := enroll.NewScheduler(q, st, redsync.New(goredis.NewPool(rdb)), q.Keys().Lock(), enroll.SchedulerConfig{
		BatchSize: 50, LockTTL: time.Second, Lease: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
		AfterCommit: func(ds []enroll.Decision) { mu.Lock(); committed += len(ds); mu.Unlock() },
	})
	go func() { _ = sched.Start(ctx) }()
	defer sched.Stop()

	// Kill the database once the drain is under way, then bring it back.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		c := committed
		mu.Unlock()
		if c >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("drain did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	atKill := committed
	mu.Unlock()
	_ = mcmd.Process.Signal(syscall.SIGKILL)
	_ = mcmd.Wait()
	time.Sleep(500 * time.Millisecond)
	start()
	waitUp()

	done := time.Now().Add(2 * time.Minute)
	for {
		n, _ := rdb.ZCard(ctx, q.Keys().Pending()).Result()
		if n == 0 {
			break
		}
		if time.Now().After(done) {
			t.Fatalf("%d requests still pending after the restart", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep, err := verify.Check(ctx, db, admitted)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d admitted; mariadbd killed after %d decisions were committed; %s", len(admitted), atKill, rep)
	if !rep.OK() {
		// show a few of the offending pairs
		rows, _ := db.QueryxContext(ctx, `SELECT e.course_id, e.ticket, e.student_id, e.decided_at, x.ticket, x.student_id, x.decided_at, c.capacity, c.enrolled FROM enrollment_requests e
			JOIN enrollment_requests x ON x.course_id = e.course_id AND x.status = 'rejected' AND x.reason = 'sold_out' AND x.ticket < e.ticket
			JOIN courses c ON c.id = e.course_id WHERE e.status = 'enrolled' LIMIT 5`)
		for rows.Next() {
			r, _ := rows.SliceScan()
			t.Logf("%v", r)
		}
		t.Fatalf("laws broken across a MariaDB restart: %s", rep)
	}
}
