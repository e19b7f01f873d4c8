package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/store"
)

// raiseNoFile lifts RLIMIT_NOFILE to the hard limit (or to want, when the
// process may raise the hard limit too, as root may). It returns the soft
// limit in force afterwards.
func raiseNoFile(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if l.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			return want, nil
		}
	}
	l.Cur = min(max(l.Cur, want), l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return l.Cur, nil
}

// connect opens MariaDB and Redis.
func (r *run) connect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(cctx, r.cfg.DBDSN)
	if err != nil {
		return fmt.Errorf("connect MariaDB: %w", err)
	}
	r.db = db
	r.rdb = redis.NewClient(&redis.Options{Addr: r.cfg.RedisAddr, PoolSize: 16})
	if err := r.rdb.Ping(cctx).Err(); err != nil {
		return fmt.Errorf("connect Redis %s: %w", r.cfg.RedisAddr, err)
	}
	r.q = queue.New(r.rdb, r.cfg.Term)
	return nil
}

func (r *run) close() {
	if r.rdb != nil {
		r.rdb.Close()
	}
	if r.db != nil {
		r.db.Close()
	}
}

// resetTables are the registration tables a -reset run empties. The
// catalog and the roster stay.
// refusal_marks and capacity_changes go with them: law 7's check reads the
// marks of this run against this run's decisions. drain_fences stays (a
// fence never goes back).
var resetTables = []string{"enrollments", "enrollment_requests", "enrollment_drops", "waitlist", "refusal_marks", "capacity_changes"}

// reset forgets every registration of the term: enrollments, requests,
// drops and waitlists in MariaDB (courses.enrolled back to 0) and the
// term's queue in Redis except the ticket counter (request ids keep
// growing, so nothing that outlived the reset can confuse two requests) and
// the drainer lock and fence. It refuses while requests are still undecided.
func (r *run) reset(ctx context.Context) error {
	st, err := r.q.Stats(ctx)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if st.Pending > 0 {
		return fmt.Errorf("reset: %d requests of term %s are still undecided; wait for the scheduler (or stop the run using them) and try again", st.Pending, r.cfg.Term)
	}
	for _, t := range resetTables {
		if _, err := r.db.ExecContext(ctx, "TRUNCATE TABLE "+t); err != nil {
			if strings.Contains(err.Error(), "1146") { // table does not exist (yet)
				continue
			}
			if _, derr := r.db.ExecContext(ctx, "DELETE FROM "+t); derr != nil {
				return fmt.Errorf("reset: empty %s: %w", t, derr)
			}
		}
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE courses SET enrolled = 0 WHERE enrolled <> 0`); err != nil {
		return fmt.Errorf("reset: courses.enrolled: %w", err)
	}
	k := r.q.Keys()
	keep := map[string]bool{k.Seq(): true, k.Lock(): true, k.Fence(): true}
	var batch []string
	iter := r.rdb.Scan(ctx, 0, strings.TrimSuffix(k.Open(), "open")+"*", 1000).Iterator()
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("reset: redis unlink: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		if keep[iter.Val()] {
			continue
		}
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("reset: redis scan: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	r.logf("reset: registration tables emptied, %d Redis keys of term %s removed", n, r.cfg.Term)
	return nil
}

// prepareStudents makes sure the roster is big enough and returns the
// students' tokens: from cfg.TokensFile, or issued in process.
func (r *run) prepareStudents(ctx context.Context) ([]students.Token, error) {
	if r.cfg.TokensFile != "" {
		f, err := os.Open(r.cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		defer f.Close()
		toks, err := students.ReadCSV(f)
		if err != nil {
			return nil, err
		}
		if len(toks) < r.cfg.Students {
			return nil, fmt.Errorf("tokens: %s holds %d students, -students is %d", r.cfg.TokensFile, len(toks), r.cfg.Students)
		}
		return toks[:r.cfg.Students], nil
	}
	if r.cfg.Ensure {
		t0 := time.Now()
		res, err := students.Ensure(ctx, r.db, r.cfg.Students, r.cfg.StudentPW, r.cfg.BcryptCost, nil)
		if err != nil {
			return nil, err
		}
		if res.Imported > 0 {
			r.logf("roster: imported %d load students in %.1fs (%d -> %d)", res.Imported, time.Since(t0).Seconds(), res.Before, res.After)
		}
	}
	signer := auth.NewSigner(r.cfg.TokenSecret)
	return students.Issue(ctx, r.db, signer, r.cfg.Students, r.cfg.TokenTTL)
}

// openCourses returns the ids of the sections students may ask for.
func (r *run) openCourses(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := r.db.SelectContext(ctx, &ids, `SELECT id FROM courses WHERE is_open = 1 AND deleted_at IS NULL ORDER BY id`); err != nil {
		return nil, fmt.Errorf("read courses: %w", err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no open course in the catalog (import one: enrollctl import-catalog)")
	}
	return ids, nil
}

// existingRequests returns the ids of requests recorded before the run, so
// that verification does not count them as unexpected.
func (r *run) existingRequests(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := r.db.SelectContext(ctx, &ids, `SELECT id FROM enrollment_requests`); err != nil {
		return nil, fmt.Errorf("read existing requests: %w", err)
	}
	return ids, nil
}
