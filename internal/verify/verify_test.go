package verify

import (
	"context"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestCheckDetectsEachViolation builds a clean state, then breaks one law at
// a time and expects Check to notice it.
func TestCheckDetectsEachViolation(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	cs := dbtest.SeedCourses(t, db.DB, []dbtest.SeedCourse{{Code: "A1", Section: "01", Credits: 3, Capacity: 1}})
	ss := dbtest.SeedStudents(t, db.DB, 3, 18, "")
	now := time.Now().UTC()
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// ticket 1 rejected sold_out, ticket 2 enrolled: unfair unless a drop explains it.
	mustExec(`INSERT INTO enrollment_requests (id, student_id, course_id, ticket, status, reason, created_at, decided_at) VALUES
		(1, ?, ?, 1, 'rejected', 'sold_out', ?, ?), (2, ?, ?, 2, 'enrolled', '', ?, ?)`,
		ss[0], cs[0], now, now, ss[1], cs[0], now, now.Add(time.Second))
	mustExec(`INSERT INTO enrollments (student_id, course_id, request_id) VALUES (?, ?, 2)`, ss[1], cs[0])
	mustExec(`UPDATE courses SET enrolled = 1`)

	rep, err := Check(ctx, db.DB, []int64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Report{FIFOViolations: 1, Lost: 1}); rep != want {
		t.Fatalf("report = %+v, want %+v", rep, want)
	}
	mustExec(`INSERT INTO enrollment_drops (student_id, course_id, dropped_at) VALUES (?, ?, ?)`, ss[2], cs[0], now.Add(500*time.Millisecond))
	if rep, _ = Check(ctx, db.DB, []int64{1, 2}); !rep.OK() {
		t.Fatalf("a drop between the decisions explains the seat; got %s", rep)
	}
	if rep, _ = Check(ctx, db.DB, []int64{1}); rep.Unexpected != 1 {
		t.Fatalf("decision for an id never admitted not reported: %s", rep)
	}
	// enrolled ≠ count(enrollments)
	mustExec(`UPDATE courses SET enrolled = 0`)
	if rep, _ = Check(ctx, db.DB, nil); rep.EnrolledMismatch != 1 {
		t.Fatalf("mismatch not reported: %s", rep)
	}
	mustExec(`DELETE FROM enrollment_requests WHERE id = 2`)
	if rep, _ = Check(ctx, db.DB, nil); rep.EnrollmentOrphans != 1 {
		t.Fatalf("orphan enrollment not reported: %s", rep)
	}
}

// TestCheckDetectsOversell forces enrolled above capacity by switching the
// CHECK constraint off for one connection.
func TestCheckDetectsOversell(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	dbtest.SeedCourses(t, db.DB, []dbtest.SeedCourse{{Code: "B1", Section: "01", Credits: 3, Capacity: 1}})
	conn, err := db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `UPDATE courses SET enrolled = 2`); err == nil {
		t.Fatal("CHECK constraint did not refuse enrolled > capacity")
	}
	if _, err := conn.ExecContext(ctx, `SET SESSION check_constraint_checks = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `UPDATE courses SET enrolled = 2`); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(ctx, db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OversoldSections != 1 {
		t.Fatalf("oversell not reported: %s", rep)
	}
}
