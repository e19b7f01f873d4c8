package enroll_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/verify"
)

func enrollDirect(t *testing.T, db *dbtest.DB, student, course int64) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO enrollments (student_id, course_id) VALUES (?, ?)`, student, course); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE courses SET enrolled = enrolled + 1 WHERE id = ?`, course); err != nil {
		t.Fatal(err)
	}
}

// TestWaitlistPromotesFirstEligible: a drop gives the seat to the first
// waitlisted student the rules allow, in waitlist order, in the drop's own
// transaction; an ineligible student earlier in line is skipped (and told
// why) but keeps their place.
func TestWaitlistPromotesFirstEligible(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	ids := dbtest.SeedCourses(t, db.DB, []dbtest.SeedCourse{
		{Code: "FUL1001", Section: "01", Credits: 3, Capacity: 1, Meetings: [][3]int{{0, 540, 615}}},  // full section
		{Code: "CLH1001", Section: "01", Credits: 3, Capacity: 10, Meetings: [][3]int{{0, 600, 675}}}, // clashes with it
		{Code: "FUL1001", Section: "02", Credits: 3, Capacity: 10, Meetings: [][3]int{{3, 540, 615}}}, // same code
	})
	full, clash, sameCode := ids[0], ids[1], ids[2]
	st := dbtest.SeedStudents(t, db.DB, 5, 18, "")
	holder, conflicted, sibling, eligible, last := st[0], st[1], st[2], st[3], st[4]
	s := enroll.NewStore(db.DB, "t")

	enrollDirect(t, db, holder, full)
	enrollDirect(t, db, conflicted, clash)
	enrollDirect(t, db, sibling, sameCode)
	for i, who := range []int64{conflicted, sibling, eligible, last} {
		pos, err := s.JoinWaitlist(ctx, who, full)
		if err != nil || pos != int64(i+1) {
			t.Fatalf("join %d: pos %d, %v", i, pos, err)
		}
	}
	if _, err := s.JoinWaitlist(ctx, eligible, full); !errors.Is(err, enroll.ErrAlreadyListed) {
		t.Errorf("second join: %v, want ErrAlreadyListed", err)
	}
	if _, err := s.JoinWaitlist(ctx, holder, full); !errors.Is(err, enroll.ErrAlreadyEnrolled) {
		t.Errorf("enrolled student joins: %v", err)
	}
	if _, err := s.JoinWaitlist(ctx, last, clash); !errors.Is(err, enroll.ErrNotFull) {
		t.Errorf("join a section with seats: %v, want ErrNotFull", err)
	}

	ps, err := s.DropPromote(ctx, holder, full)
	if err != nil {
		t.Fatal(err)
	}
	want := []enroll.Promotion{
		{CourseID: full, StudentID: conflicted, Status: enroll.StatusSkipped, Reason: enroll.ReasonTimeConflict},
		{CourseID: full, StudentID: sibling, Status: enroll.StatusSkipped, Reason: enroll.ReasonSameCode},
		{CourseID: full, StudentID: eligible, Status: enroll.StatusEnrolled},
	}
	if len(ps) != len(want) {
		t.Fatalf("promotions %+v, want %+v", ps, want)
	}
	for i := range want {
		ps[i].WaitlistID = 0
		if ps[i] != want[i] {
			t.Errorf("promotion %d = %+v, want %+v", i, ps[i], want[i])
		}
	}
	var enrolled int
	_ = db.Get(&enrolled, `SELECT enrolled FROM courses WHERE id = ?`, full)
	var holders []int64
	_ = db.Select(&holders, `SELECT student_id FROM enrollments WHERE course_id = ?`, full)
	if enrolled != 1 || len(holders) != 1 || holders[0] != eligible {
		t.Errorf("after drop: enrolled=%d holders=%v, want 1 [%d]", enrolled, holders, eligible)
	}
	var left []struct {
		StudentID int64  `db:"student_id"`
		Skipped   string `db:"skipped_reason"`
	}
	_ = db.Select(&left, `SELECT student_id, skipped_reason FROM waitlist WHERE course_id = ? ORDER BY id`, full)
	wantLeft := []int64{conflicted, sibling, last}
	if len(left) != 3 || left[0].StudentID != wantLeft[0] || left[1].StudentID != wantLeft[1] || left[2].StudentID != wantLeft[2] ||
		left[0].Skipped != "time_conflict" || left[1].Skipped != "same_course_code" || left[2].Skipped != "" {
		t.Errorf("waitlist after: %+v, want %v with skip reasons", left, wantLeft)
	}
	var logged int
	_ = db.Get(&logged, `SELECT COUNT(*) FROM waitlist_promotions WHERE course_id = ? AND cause = 'drop'`, full)
	if logged != 3 {
		t.Errorf("waitlist_promotions rows = %d, want 3", logged)
	}

	// The conflicted student drops the clash: at the next freed seat they are
	// first in line again and eligible.
	if _, err := s.DropPromote(ctx, conflicted, clash); err != nil {
		t.Fatal(err)
	}
	// A capacity increase of one fills from the waitlist too.
	sc, ps, err := s.SetCapacity(ctx, full, 2)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Enrolled != 2 || len(enroll.Enrolled(ps)) != 1 || enroll.Enrolled(ps)[0].StudentID != conflicted {
		t.Errorf("capacity increase: %+v %+v, want the formerly conflicted student enrolled", sc, ps)
	}
	var capErr *enroll.CapacityError
	if _, _, err := s.SetCapacity(ctx, full, 1); !errors.As(err, &capErr) || capErr.Enrolled != 2 {
		t.Errorf("capacity below enrolled: %v", err)
	}
	if err := s.LeaveWaitlist(ctx, last, full); err != nil {
		t.Errorf("leave: %v", err)
	}
	if err := s.LeaveWaitlist(ctx, last, full); !errors.Is(err, enroll.ErrNotListed) {
		t.Errorf("leave twice: %v", err)
	}
	if r, err := verify.Check(ctx, db.DB, nil); err != nil || !r.OK() {
		t.Errorf("verify: %v %v", r, err)
	}
}

// TestWaitlistStress runs queued enrollments, drops (each promoting from the
// waitlist) and waitlist joins and leaves at once, then checks the laws: no
// section oversold, enrolled counts equal to the enrollment rows, every
// admitted request decided exactly once, FIFO (drops excepted).
func TestWaitlistStress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	rng := rand.New(rand.NewPCG(3, 5))
	courses := dbtest.SeedCourses(t, db.DB, dbtest.RandomCatalog(rng, 16, 3))
	students := dbtest.SeedStudents(t, db.DB, 80, 12, "")
	q := queue.New(rdb, term)
	q.RateLimit = 0
	st := enroll.NewStore(db.DB, term)
	seats, err := st.Seats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Reconcile(ctx, seats, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	sched := enroll.NewScheduler(q, st, redsync.New(goredis.NewPool(rdb)), q.Keys().Lock(),
		enroll.SchedulerConfig{BatchSize: 16, Logger: slog.New(slog.DiscardHandler)})

	var mu sync.Mutex
	var admitted []int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	const workers = 6
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; i < 250; i++ {
				s := students[r.IntN(len(students))]
				c := courses[r.IntN(len(courses))]
				switch r.IntN(4) {
				case 0, 1:
					a, err := q.Admit(ctx, s, c)
					if err == nil {
						mu.Lock()
						admitted = append(admitted, a.RequestID)
						mu.Unlock()
					}
				case 2:
					if _, err := st.JoinWaitlist(ctx, s, c); err != nil && !isExpected(err) {
						t.Errorf("join: %v", err)
						return
					}
					if r.IntN(4) == 0 {
						_ = st.LeaveWaitlist(ctx, s, c)
					}
				case 3:
					var e struct {
						S int64 `db:"student_id"`
						C int64 `db:"course_id"`
					}
					if db.GetContext(ctx, &e, `SELECT student_id, course_id FROM enrollments ORDER BY RAND() LIMIT 1`) == nil {
						s, c = e.S, e.C
					}
					ps, err := st.DropPromote(ctx, s, c)
					if errors.Is(err, enroll.ErrNotEnrolled) {
						continue
					}
					if err != nil {
						t.Errorf("drop: %v", err)
						return
					}
					if len(enroll.Enrolled(ps)) == 0 {
						_ = q.Dropping(ctx, enroll.DropHint{StudentID: s, CourseID: c, SeatsFreed: 1})
					}
				}
			}
		}(w)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, err := sched.DrainOnce(ctx); err != nil {
				t.Errorf("drain: %v", err)
				return
			} else if n == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-drained
	for {
		n, err := sched.DrainOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	rep, err := verify.Check(ctx, db.DB, admitted)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("laws broken: %s", rep)
	}
	var promoted, drops int
	_ = db.Get(&promoted, `SELECT COUNT(*) FROM waitlist_promotions WHERE status = 'enrolled'`)
	_ = db.Get(&drops, `SELECT COUNT(*) FROM enrollment_drops`)
	t.Logf("%d admitted, %d drops, %d waitlist promotions", len(admitted), drops, promoted)
	if drops == 0 || promoted == 0 {
		t.Errorf("the run exercised too little: %d drops, %d promotions", drops, promoted)
	}
	// A promoted student's enrollment has no request row: every enrollment
	// without one must be explained by a promotion.
	var unexplained int
	_ = db.Get(&unexplained, `SELECT COUNT(*) FROM enrollments e WHERE e.request_id IS NULL AND NOT EXISTS
		(SELECT 1 FROM waitlist_promotions p WHERE p.student_id = e.student_id AND p.course_id = e.course_id AND p.status = 'enrolled')`)
	if unexplained != 0 {
		t.Errorf("%d enrollments neither decided nor promoted", unexplained)
	}
}

func isExpected(err error) bool {
	for _, e := range []error{enroll.ErrNotFull, enroll.ErrAlreadyListed, enroll.ErrAlreadyEnrolled, enroll.ErrCourseClosed, enroll.ErrUnknownCourse} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
