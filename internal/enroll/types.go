package enroll

import (
	"context"
	"errors"
	"time"
)

// Status is the state of an enrollment request. queued is the only
// non-final state; every admitted request ends in exactly one final state.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusEnrolled  Status = "enrolled"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// Final reports whether s is a final decision.
func (s Status) Final() bool {
	return s == StatusEnrolled || s == StatusRejected || s == StatusCancelled
}

// Reason says why a request was rejected. The values are stable API codes.
type Reason string

const (
	ReasonNone            Reason = ""
	ReasonFull            Reason = "sold_out"         // no seat left under the row lock
	ReasonWindowClosed    Reason = "window_closed"    // outside the student's registration window
	ReasonCourseClosed    Reason = "course_closed"    // section closed or deleted
	ReasonUnknownCourse   Reason = "unknown_course"   // no such section
	ReasonUnknownStudent  Reason = "unknown_student"  // no such student
	ReasonAlreadyEnrolled Reason = "already_enrolled" // already in this section
	ReasonSameCode        Reason = "same_course_code" // already in another section of the course
	ReasonCreditLimit     Reason = "credit_limit"     // credits would exceed the student's limit
	ReasonTimeConflict    Reason = "time_conflict"    // meeting times overlap an enrollment
)

// Request is one admitted enrollment request. ID equals Ticket: tickets come
// from one Redis counter, so they are unique and in arrival order.
type Request struct {
	ID         int64
	Ticket     int64
	StudentID  int64
	CourseID   int64
	AdmittedAt time.Time
	Cancelled  bool // the student left the queue; decide it as cancelled
}

// Decision is the final outcome of a request.
type Decision struct {
	RequestID int64     `json:"request_id" db:"id"`
	StudentID int64     `json:"student_id" db:"student_id"`
	CourseID  int64     `json:"course_id" db:"course_id"`
	Ticket    int64     `json:"ticket" db:"ticket"`
	Status    Status    `json:"status" db:"status"`
	Reason    Reason    `json:"reason,omitempty" db:"reason"`
	DecidedAt time.Time `json:"decided_at" db:"decided_at"`
}

// Sentinel errors of the enrollment domain. cmd/api maps them to HTTP.
var (
	ErrNotFound         = errors.New("not found")
	ErrNotEnrolled      = errors.New("not enrolled in this course")
	ErrForbidden        = errors.New("belongs to another student")
	ErrWindowClosed     = errors.New("registration window closed")
	ErrSoldOut          = errors.New("sold out")
	ErrAlreadyQueued    = errors.New("already queued for this course")
	ErrAlreadyEnrolled  = errors.New("already enrolled in this course")
	ErrRateLimited      = errors.New("too many requests")
	ErrUnknownCourse    = errors.New("unknown course")
	ErrCourseClosed     = errors.New("course closed")
	ErrTooLate          = errors.New("request is already being decided")
	ErrNotLeader        = errors.New("not the drain leader")
	ErrAlreadyPrequeued = errors.New("already in the pre-queue for this course")
	ErrPrequeueFull     = errors.New("too many pre-queue entries")
	ErrOpening          = errors.New("the window is opening: the pre-queue is being drawn")
	// ErrFenced: Redis or MariaDB refused a drain step (pop, pre-ack, ack,
	// requeue, commit) because another scheduler has taken the drain since.
	ErrFenced = errors.New("fenced: the drain passed to another leader")
)

// DropHint is what a drop about to commit tells the Redis hints (see
// HintSink): the student leaves the section, SeatsFreed seats come back (0
// when a waitlisted student took the seat in the same transaction), and
// RequestID is the request of the dropped enrollment (0 if none).
type DropHint struct {
	StudentID  int64
	CourseID   int64
	RequestID  int64
	SeatsFreed int
}

// HintSink is told, inside a transaction and just before its commit, of the
// seats it frees (implemented by queue.Redis). Seats come back to the hints
// before MariaDB frees them, so no student is told "sold out" while MariaDB
// has a seat no earlier request holds (law 7); a commit that then fails
// leaves a hint too generous, which costs speed, never a seat (law 5).
// Seats taken are counted in the hints after the commit (or, for queued
// requests, at admission), never before.
type HintSink interface {
	Dropping(ctx context.Context, h DropHint) error
	Raising(ctx context.Context, course int64, seats int) error
}

// RateLimitError carries how long to wait before retrying.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string { return "too many requests" }
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// AlreadyQueuedError carries the id of the pending request.
type AlreadyQueuedError struct{ RequestID int64 }

func (e *AlreadyQueuedError) Error() string { return "already queued for this course" }
func (e *AlreadyQueuedError) Unwrap() error { return ErrAlreadyQueued }

// RefusalMark is the latest "sold out" answer admission gave for a section:
// the ticket counter's value then (every later request has a higher ticket)
// and Redis' clock. Law 7's check reads it (table refusal_marks).
type RefusalMark struct {
	CourseID int64     `db:"course_id"`
	Ticket   int64     `db:"ticket"`
	At       time.Time `db:"refused_at"`
}
