package app

import (
	"context"
	"fmt"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
)

// JoinWaitlist puts the student on a full section's waitlist (while their
// registration window is open) and returns their position.
func (s *Service) JoinWaitlist(ctx context.Context, c auth.Claims, course int64) (int64, error) {
	if course <= 0 {
		return 0, fmt.Errorf("course_id must be a positive integer: %w", ErrBadInput)
	}
	open, err := s.Queue.IsOpen(ctx)
	if err != nil {
		return 0, err
	}
	ws, err := s.windows(ctx)
	if err != nil {
		return 0, err
	}
	if !open || !enroll.WindowOpen(ws, c.Year, time.Now()) {
		return 0, enroll.ErrWindowClosed
	}
	return s.Store.JoinWaitlist(ctx, c.Subject, course)
}

// LeaveWaitlist takes the student off a section's waitlist.
func (s *Service) LeaveWaitlist(ctx context.Context, c auth.Claims, course int64) error {
	return s.Store.LeaveWaitlist(ctx, c.Subject, course)
}

// WaitlistEntry is one of the student's waitlist places.
type WaitlistEntry struct {
	CourseView
	Position      int64      `json:"position" db:"position"` // 1 = next to get a freed seat
	Length        int64      `json:"length" db:"length"`     // students on this waitlist
	JoinedAt      time.Time  `json:"joined_at" db:"joined_at"`
	SkippedReason string     `json:"skipped_reason,omitempty" db:"skipped_reason"` // why a freed seat passed them over last time
	SkippedAt     *time.Time `json:"skipped_at,omitempty" db:"skipped_at"`
}

// Waitlist returns the student's waitlist places with their positions.
func (s *Service) Waitlist(ctx context.Context, c auth.Claims) ([]WaitlistEntry, error) {
	q := `SELECT ` + courseCols + `, w.created_at AS joined_at, w.skipped_reason, w.skipped_at,
		(SELECT COUNT(*) FROM waitlist x WHERE x.course_id = w.course_id AND x.id <= w.id) AS position,
		(SELECT COUNT(*) FROM waitlist x WHERE x.course_id = w.course_id) AS length
		FROM waitlist w JOIN courses c ON c.id = w.course_id WHERE w.student_id = ? ORDER BY w.id`
	out := []WaitlistEntry{}
	if err := s.DB.SelectContext(ctx, &out, q, c.Subject); err != nil {
		return nil, fmt.Errorf("read waitlist: %w", err)
	}
	for i := range out {
		out[i].fill()
	}
	return out, nil
}

// Drop removes the student's enrollment in course and frees the seat at once.
// The hints learn of it inside the drop's transaction, before the commit
// (enroll.HintSink): the course leaves the student's enrolled hint and, unless
// a waitlisted student took the seat in the same transaction, the seat is
// back in the seat hint. A promoted student's enrolled hint is rewritten
// after the commit.
func (s *Service) Drop(ctx context.Context, c auth.Claims, course int64) error {
	ps, err := s.Store.DropPromoteHinted(ctx, c.Subject, course, s.Queue)
	if err != nil {
		return err
	}
	return s.refreshEnrolledHints(ctx, studentsOf(enroll.Enrolled(ps)))
}

func studentsOf(ps []enroll.Promotion) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.StudentID
	}
	return out
}

func (s *Service) refreshEnrolledHints(ctx context.Context, students []int64) error {
	for _, st := range students {
		cs, err := s.Store.EnrolledCourses(ctx, st)
		if err != nil {
			return err
		}
		if err := s.Queue.SetEnrolledHint(ctx, st, cs); err != nil {
			return err
		}
	}
	return nil
}

// CapacityChange is the result of SetCapacity.
type CapacityChange struct {
	CourseID  int64              `json:"course_id"`
	Capacity  int                `json:"capacity"`
	Enrolled  int                `json:"enrolled"`
	SeatsLeft int                `json:"seats_left"`
	Promoted  []enroll.Promotion `json:"promoted"` // waitlisted students examined (enrolled or skipped)
}

// SetCapacity changes a section's capacity (never below enrolled); an
// increase enrolls waitlisted students in order. The seat hint is then reset
// from the committed numbers.
func (s *Service) SetCapacity(ctx context.Context, course int64, capacity int) (CapacityChange, error) {
	if capacity < 0 || capacity > 100000 {
		return CapacityChange{}, fmt.Errorf("capacity must be 0..100000: %w", ErrBadInput)
	}
	sc, ps, err := s.Store.SetCapacityHinted(ctx, course, capacity, s.Queue)
	if err != nil {
		return CapacityChange{}, err
	}
	// A raise reached the hint before the commit; a cut reaches it now.
	if _, err := s.resetHint(ctx, course); err != nil {
		return CapacityChange{}, err
	}
	if err := s.refreshEnrolledHints(ctx, studentsOf(enroll.Enrolled(ps))); err != nil {
		return CapacityChange{}, err
	}
	if ps == nil {
		ps = []enroll.Promotion{}
	}
	return CapacityChange{CourseID: course, Capacity: sc.Capacity, Enrolled: sc.Enrolled, SeatsLeft: sc.Capacity - sc.Enrolled, Promoted: ps}, nil
}

// PromoteAll fills free seats from every waitlist (after a catalog import)
// and updates the hints.
func (s *Service) PromoteAll(ctx context.Context) ([]enroll.Promotion, error) {
	ps, err := s.Store.PromoteAll(ctx, enroll.CauseImport)
	if err != nil {
		return ps, err
	}
	if len(enroll.Enrolled(ps)) > 0 {
		if err := s.Reconcile(ctx); err != nil {
			return ps, err
		}
		if err := s.refreshEnrolledHints(ctx, studentsOf(enroll.Enrolled(ps))); err != nil {
			return ps, err
		}
	}
	return ps, nil
}
