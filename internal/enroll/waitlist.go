package enroll

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/store"
)

// Waitlist errors.
var (
	ErrNotFull          = errors.New("section has free seats: register instead of waitlisting")
	ErrAlreadyListed    = errors.New("already on the waitlist of this section")
	ErrNotListed        = errors.New("not on the waitlist of this section")
	ErrCapacityTooSmall = errors.New("capacity below the number enrolled")
)

// CapacityError says a capacity was refused because Enrolled students hold
// seats already.
type CapacityError struct{ Enrolled int }

func (e *CapacityError) Error() string {
	return fmt.Sprintf("capacity below the %d students enrolled", e.Enrolled)
}
func (e *CapacityError) Unwrap() error { return ErrCapacityTooSmall }

// What freed the seats a promotion filled (waitlist_promotions.cause).
const (
	CauseDrop     = "drop"
	CauseCapacity = "capacity"
	CauseImport   = "import"
)

// Promotion is one waitlisted student examined for a freed seat.
type Promotion struct {
	CourseID   int64  `json:"course_id" db:"course_id"`
	StudentID  int64  `json:"student_id" db:"student_id"`
	WaitlistID int64  `json:"waitlist_id" db:"waitlist_id"`
	Status     Status `json:"status" db:"status"` // StatusEnrolled, or "skipped"
	Reason     Reason `json:"reason,omitempty" db:"reason"`
}

// StatusSkipped marks a waitlisted student passed over by a promotion.
const StatusSkipped Status = "skipped"

// Enrolled returns the promotions that gave a seat.
func Enrolled(ps []Promotion) []Promotion {
	var out []Promotion
	for _, p := range ps {
		if p.Status == StatusEnrolled {
			out = append(out, p)
		}
	}
	return out
}

// PromoteWaitlist fills the free seats of a section from its waitlist, in
// waitlist order, inside tx — the transaction that freed the seats, so no
// other decider can take them in between. Each waitlisted student is checked
// with the same rules as a queued request (Check: open section, not already
// in it or in another section of the code, credit limit, time conflict); an
// ineligible student is skipped, keeps their place and is told why
// (waitlist.skipped_reason), except one already in the section, whose entry
// is removed. The registration window is not checked: a student who joined
// the waitlist while their window was open keeps their claim.
//
// It locks the section row (again, if the caller holds it already), the
// waitlist entries of the section, and each examined student's row, in that
// order; enrolled ≤ capacity holds under those locks. Every examined student
// gets a row in waitlist_promotions.
func PromoteWaitlist(ctx context.Context, tx *sqlx.Tx, courseID int64, cause string, now time.Time) ([]Promotion, error) {
	const qCourse = `SELECT id, code, credits, capacity, enrolled, is_open, deleted_at FROM courses WHERE id = ? FOR UPDATE`
	var cr courseRow
	if err := tx.GetContext(ctx, &cr, qCourse, courseID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, fmt.Errorf("promote waitlist %d: lock course: %w", courseID, store.Interpret(err))
	}
	if !cr.IsOpen || cr.DeletedAt.Valid || cr.Capacity-cr.Enrolled <= 0 {
		return nil, nil
	}
	const qEntries = `SELECT id, student_id, created_at FROM waitlist WHERE course_id = ? ORDER BY id FOR UPDATE`
	var entries []struct {
		ID        int64     `db:"id"`
		StudentID int64     `db:"student_id"`
		CreatedAt time.Time `db:"created_at"`
	}
	if err := tx.SelectContext(ctx, &entries, qEntries, courseID); err != nil {
		return nil, fmt.Errorf("promote waitlist %d: lock entries: %w", courseID, store.Interpret(err))
	}
	if len(entries) == 0 {
		return nil, nil
	}
	var mts []meetingRow
	if err := inSelect(ctx, tx, &mts, `SELECT course_id, day, start_min, end_min FROM course_meetings WHERE course_id IN (?)`, []int64{courseID}); err != nil {
		return nil, fmt.Errorf("promote waitlist %d: meetings: %w", courseID, err)
	}
	course := Course{ID: cr.ID, Code: cr.Code, Credits: cr.Credits, Capacity: cr.Capacity, Enrolled: cr.Enrolled, Open: true}
	for _, m := range mts {
		course.Meetings = append(course.Meetings, Meeting{Day: m.Day, Start: m.Start, End: m.End})
	}

	var out []Promotion
	for _, e := range entries {
		if course.Free() <= 0 {
			break
		}
		p := Promotion{CourseID: courseID, StudentID: e.StudentID, WaitlistID: e.ID}
		st, ok, err := lockStudent(ctx, tx, e.StudentID)
		if err != nil {
			return nil, fmt.Errorf("promote waitlist %d: %w", courseID, err)
		}
		switch {
		case !ok:
			p.Status, p.Reason = StatusSkipped, ReasonUnknownStudent
		default:
			p.Reason = Check(st, course)
			if p.Reason == ReasonNone {
				p.Status = StatusEnrolled
			} else {
				p.Status = StatusSkipped
			}
		}
		switch {
		case p.Status == StatusEnrolled:
			const qEnroll = `INSERT INTO enrollments (student_id, course_id, request_id) VALUES (?, ?, NULL)`
			if _, err := tx.ExecContext(ctx, qEnroll, e.StudentID, courseID); err != nil {
				return nil, fmt.Errorf("promote waitlist %d: enroll student %d: %w", courseID, e.StudentID, store.Interpret(err))
			}
			course.Enrolled++
			if err := deleteEntry(ctx, tx, e.ID); err != nil {
				return nil, err
			}
		case p.Reason == ReasonAlreadyEnrolled || p.Reason == ReasonUnknownStudent:
			if err := deleteEntry(ctx, tx, e.ID); err != nil {
				return nil, err
			}
		default:
			const qSkip = `UPDATE waitlist SET skipped_reason = ?, skipped_at = ? WHERE id = ?`
			if _, err := tx.ExecContext(ctx, qSkip, string(p.Reason), now, e.ID); err != nil {
				return nil, fmt.Errorf("promote waitlist %d: mark skipped: %w", courseID, store.Interpret(err))
			}
		}
		const qLog = `INSERT INTO waitlist_promotions (course_id, student_id, waitlist_id, waitlisted_at, status, reason, cause, decided_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
		if _, err := tx.ExecContext(ctx, qLog, courseID, e.StudentID, e.ID, e.CreatedAt, string(p.Status), string(p.Reason), cause, now); err != nil {
			return nil, fmt.Errorf("promote waitlist %d: log: %w", courseID, store.Interpret(err))
		}
		out = append(out, p)
	}
	if course.Enrolled != cr.Enrolled {
		const qSeats = `UPDATE courses SET enrolled = ? WHERE id = ?`
		if _, err := tx.ExecContext(ctx, qSeats, course.Enrolled, courseID); err != nil {
			return nil, fmt.Errorf("promote waitlist %d: update seats: %w", courseID, store.Interpret(err))
		}
	}
	return out, nil
}

func deleteEntry(ctx context.Context, tx *sqlx.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM waitlist WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove waitlist entry %d: %w", id, store.Interpret(err))
	}
	return nil
}

// lockStudent locks a student's row and reads what the rules need.
func lockStudent(ctx context.Context, tx *sqlx.Tx, id int64) (Student, bool, error) {
	var sr studentRow
	if err := tx.GetContext(ctx, &sr, `SELECT id, year, max_credits FROM students WHERE id = ? FOR UPDATE`, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Student{}, false, nil
		}
		return Student{}, false, fmt.Errorf("lock student %d: %w", id, store.Interpret(err))
	}
	st := Student{ID: sr.ID, Year: sr.Year, MaxCredits: sr.MaxCredits}
	const qEnrolled = `SELECT c.id, c.code, c.credits FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.student_id = ?`
	var enr []struct {
		ID      int64  `db:"id"`
		Code    string `db:"code"`
		Credits int    `db:"credits"`
	}
	if err := tx.SelectContext(ctx, &enr, qEnrolled, id); err != nil {
		return Student{}, false, fmt.Errorf("read enrollments of student %d: %w", id, store.Interpret(err))
	}
	ids := make([]int64, len(enr))
	for i, e := range enr {
		ids[i] = e.ID
	}
	var mts []meetingRow
	if err := inSelect(ctx, tx, &mts, `SELECT course_id, day, start_min, end_min FROM course_meetings WHERE course_id IN (?)`, ids); err != nil {
		return Student{}, false, fmt.Errorf("read meetings of student %d: %w", id, err)
	}
	meetings := map[int64][]Meeting{}
	for _, m := range mts {
		meetings[m.CourseID] = append(meetings[m.CourseID], Meeting{Day: m.Day, Start: m.Start, End: m.End})
	}
	for _, e := range enr {
		st.Enrolled = append(st.Enrolled, Course{ID: e.ID, Code: e.Code, Credits: e.Credits, Meetings: meetings[e.ID]})
	}
	return st, true, nil
}

// DropPromote removes the student's enrollment in course, frees the seat and
// gives it to the first eligible waitlisted student, all in one transaction
// (see PromoteWaitlist). It returns the promotions made.
func (s *Store) DropPromote(ctx context.Context, studentID, courseID int64) ([]Promotion, error) {
	return s.DropPromoteHinted(ctx, studentID, courseID, nil)
}

// DropPromoteHinted is DropPromote telling hints, before the commit, what
// the drop frees (HintSink.Dropping); nil hints: the caller updates them.
func (s *Store) DropPromoteHinted(ctx context.Context, studentID, courseID int64, hints HintSink) ([]Promotion, error) {
	for attempt := 0; ; attempt++ {
		ps, err := s.dropOnce(ctx, studentID, courseID, hints)
		if err == nil || !errors.Is(err, store.ErrDeadlock) || attempt >= maxTxAttempts {
			return ps, err
		}
	}
}

// retryTx runs fn in a READ COMMITTED transaction and commits, retrying the
// whole transaction when InnoDB picks it as a deadlock victim.
func (s *Store) retryTx(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		err = s.txOnce(ctx, what, fn)
		if err == nil || !errors.Is(err, store.ErrDeadlock) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

func (s *Store) txOnce(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, store.Interpret(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, store.Interpret(err))
	}
	return nil
}

// JoinWaitlist puts the student at the end of the section's waitlist. Only a
// full section has a waitlist: with a free seat the student registers through
// the queue instead (ErrNotFull). The section row is locked while checking, so
// a concurrent drop either happens first (and the join sees the free seat) or
// after (and promotes from the waitlist). It returns the 1-based position.
func (s *Store) JoinWaitlist(ctx context.Context, studentID, courseID int64) (int64, error) {
	var pos int64
	err := s.retryTx(ctx, "join waitlist", func(tx *sqlx.Tx) error {
		var cr courseRow
		if err := tx.GetContext(ctx, &cr, `SELECT id, code, credits, capacity, enrolled, is_open, deleted_at FROM courses WHERE id = ? FOR UPDATE`, courseID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrUnknownCourse
			}
			return fmt.Errorf("join waitlist: lock course: %w", store.Interpret(err))
		}
		if !cr.IsOpen || cr.DeletedAt.Valid {
			return ErrCourseClosed
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM enrollments WHERE student_id = ? AND course_id = ?`, studentID, courseID); err != nil {
			return fmt.Errorf("join waitlist: %w", store.Interpret(err))
		}
		if n > 0 {
			return ErrAlreadyEnrolled
		}
		if cr.Capacity-cr.Enrolled > 0 {
			return ErrNotFull
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO waitlist (student_id, course_id, created_at) VALUES (?, ?, ?)`, studentID, courseID, s.now())
		if err != nil {
			err = store.Interpret(err)
			if errors.Is(err, store.ErrDuplicate) {
				return ErrAlreadyListed
			}
			return fmt.Errorf("join waitlist: insert: %w", err)
		}
		id, _ := res.LastInsertId()
		return tx.GetContext(ctx, &pos, `SELECT COUNT(*) FROM waitlist WHERE course_id = ? AND id <= ?`, courseID, id)
	})
	return pos, err
}

// LeaveWaitlist takes the student off the section's waitlist.
func (s *Store) LeaveWaitlist(ctx context.Context, studentID, courseID int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM waitlist WHERE student_id = ? AND course_id = ?`, studentID, courseID)
	if err != nil {
		return fmt.Errorf("leave waitlist: %w", store.Interpret(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotListed
	}
	return nil
}

// SetCapacity changes a section's capacity. It never goes below the number
// enrolled (*CapacityError); an increase is filled from the waitlist in the
// same transaction. It returns the section's seats after the change.
func (s *Store) SetCapacity(ctx context.Context, courseID int64, capacity int) (SeatCount, []Promotion, error) {
	return s.SetCapacityHinted(ctx, courseID, capacity, nil)
}

// SetCapacityHinted is SetCapacity telling hints, before the commit, of the
// free seats a raise adds (HintSink.Raising); a cut reaches the hints after
// the commit (the caller reconciles the section). Every change is logged in
// capacity_changes, stamped after the hints knew.
func (s *Store) SetCapacityHinted(ctx context.Context, courseID int64, capacity int, hints HintSink) (SeatCount, []Promotion, error) {
	var sc SeatCount
	var ps []Promotion
	err := s.retryTx(ctx, "set capacity", func(tx *sqlx.Tx) error {
		var cr courseRow
		if err := tx.GetContext(ctx, &cr, `SELECT id, code, credits, capacity, enrolled, is_open, deleted_at FROM courses WHERE id = ? FOR UPDATE`, courseID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrUnknownCourse
			}
			return fmt.Errorf("set capacity: lock course: %w", store.Interpret(err))
		}
		if capacity < cr.Enrolled {
			return &CapacityError{Enrolled: cr.Enrolled}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE courses SET capacity = ? WHERE id = ?`, capacity, courseID); err != nil {
			return fmt.Errorf("set capacity: %w", store.Interpret(err))
		}
		var err error
		ps, err = PromoteWaitlist(ctx, tx, courseID, CauseCapacity, s.now())
		if err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &sc, `SELECT id, capacity, enrolled, (is_open = 1 AND deleted_at IS NULL) AS open FROM courses WHERE id = ?`, courseID); err != nil {
			return fmt.Errorf("set capacity: %w", store.Interpret(err))
		}
		if more := (sc.Capacity - sc.Enrolled) - (cr.Capacity - cr.Enrolled); hints != nil && more > 0 {
			if err := hints.Raising(ctx, courseID, more); err != nil {
				return fmt.Errorf("set capacity: %w", err)
			}
		}
		const qLog = `INSERT INTO capacity_changes (course_id, old_capacity, new_capacity, changed_at) VALUES (?, ?, ?, ?)`
		if _, err := tx.ExecContext(ctx, qLog, courseID, cr.Capacity, capacity, s.now()); err != nil {
			return fmt.Errorf("set capacity: log: %w", store.Interpret(err))
		}
		return nil
	})
	if err != nil {
		return SeatCount{}, nil, err
	}
	return sc, ps, nil
}

// PromoteAll fills free seats from waitlists in every section that has both
// (after a catalog import raised capacities, for example), one transaction
// per section. It returns the promotions made.
func (s *Store) PromoteAll(ctx context.Context, cause string) ([]Promotion, error) {
	const q = `SELECT DISTINCT w.course_id FROM waitlist w JOIN courses c ON c.id = w.course_id
		WHERE c.capacity > c.enrolled AND c.is_open = 1 AND c.deleted_at IS NULL ORDER BY w.course_id`
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, q); err != nil {
		return nil, fmt.Errorf("promote all: %w", store.Interpret(err))
	}
	var out []Promotion
	for _, id := range ids {
		var ps []Promotion
		err := s.retryTx(ctx, "promote waitlist", func(tx *sqlx.Tx) error {
			var err error
			ps, err = PromoteWaitlist(ctx, tx, id, cause, s.now())
			return err
		})
		if err != nil {
			return out, err
		}
		out = append(out, ps...)
	}
	return out, nil
}
