package seat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/seat"
)

// TestReconcileRepairsHints: hints that drifted (too low, too high, missing)
// are reset from MariaDB, counting requests still pending; closed sections
// lose their hint; the ticket counter is raised above recorded ids.
func TestReconcileRepairsHints(t *testing.T) {
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	ctx := context.Background()
	ids := dbtest.SeedCourses(t, db.DB, []dbtest.SeedCourse{
		{Code: "S1", Section: "01", Credits: 3, Capacity: 10},
		{Code: "S2", Section: "01", Credits: 3, Capacity: 5},
		{Code: "S3", Section: "01", Credits: 3, Capacity: 5},
	})
	students := dbtest.SeedStudents(t, db.DB, 3, 18, "")
	st := enroll.NewStore(db.DB, term)
	q := queue.New(rdb, term)
	if err := seat.Reconcile(ctx, st, q); err != nil {
		t.Fatal(err)
	}
	if err := q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Two requests pending for S1.
	for _, s := range students[:2] {
		if _, err := q.Admit(ctx, s, ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	// Drift: S1 hint far too low, S2 too high, S3 closed in MariaDB, and a
	// request id recorded above the counter.
	k := q.Keys()
	rdb.HSet(ctx, k.Seats(), ids[0], -7, ids[1], 99)
	db.MustExec(`UPDATE courses SET enrolled = 4 WHERE id = ?`, ids[1])
	db.MustExec(`UPDATE courses SET is_open = 0 WHERE id = ?`, ids[2])
	db.MustExec(`INSERT INTO enrollment_requests (id, student_id, course_id, ticket, status, created_at, decided_at) VALUES (500, ?, ?, 500, 'rejected', ?, ?)`,
		students[2], ids[1], time.Now(), time.Now())

	if err := seat.Reconcile(ctx, st, q); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   int64
		want int64
		ok   bool
	}{{ids[0], 8, true}, {ids[1], 1, true}, {ids[2], 0, false}} {
		got, ok, err := q.SeatHint(ctx, c.id)
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("hint of %d = %d,%v,%v; want %d,%v", c.id, got, ok, err, c.want, c.ok)
		}
	}
	a, err := q.Admit(ctx, students[2], ids[0])
	if err != nil || a.Ticket != 501 {
		t.Fatalf("admission after reconcile = %+v, %v; want ticket 501", a, err)
	}
	if _, err := q.Admit(ctx, students[2], ids[2]); !errors.Is(err, enroll.ErrUnknownCourse) {
		t.Fatalf("closed section admit err = %v, want no hint", err)
	}
}
