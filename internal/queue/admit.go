package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
)

// Limit is an extra fixed-window budget counted inside the admission round
// trip, such as the API's per-client-address budget. The zero Limit is off.
type Limit struct {
	Key    string // Redis key of the counter; must share the queue's hash tag
	N      int    // requests per window; 0 turns the limit off
	Window time.Duration
}

// Admission is the result of a successful admission: a ticket in the line,
// or, before the window opens, an entry in the pre-queue (Prequeued).
type Admission struct {
	RequestID int64
	Ticket    int64
	Ahead     int64 // undecided requests with a lower ticket

	Prequeued bool
	Entries   int64 // the student's pre-queue entries, this one included
	Students  int64 // students in the pre-queue

	// Replayed: the request's Idempotency-Key had an answer already, and
	// this (or the error returned with it) is that original answer.
	Replayed bool
}

// PrequeueMax is the most pre-queue entries one student may hold.
const PrequeueMax = 15

// Admit admits a request of student for course. See AdmitLimited.
func (q *Redis) Admit(ctx context.Context, student, course int64) (Admission, error) {
	return q.AdmitLimited(ctx, student, course, Limit{})
}

// AdmitLimited admits a request of student for course, also counting it
// against extra (skipped when off). Admissions that arrive while this
// queue's previous admit.lua calls are in flight are sent together in the
// next call (group commit), so under load one round trip and one AOF write
// serve many requests; an admission that finds Redis idle goes at once.
//
// While the window is closed and the pre-queue open, the request goes into
// the pre-queue instead (Admission.Prequeued; see Draw).
//
// Errors: enroll.ErrWindowClosed, enroll.ErrAlreadyPrequeued,
// enroll.ErrPrequeueFull, *enroll.RateLimitError,
// *enroll.AlreadyQueuedError, enroll.ErrAlreadyEnrolled,
// enroll.ErrUnknownCourse (no seat hint: check MariaDB), enroll.ErrSoldOut.
// If ctx ends first the caller gets ctx's error; the request may still have
// been admitted (as when a client hangs up after Redis answered), and then
// it is decided like any other.
func (q *Redis) AdmitLimited(ctx context.Context, student, course int64, extra Limit) (Admission, error) {
	return q.AdmitKeyed(ctx, student, course, extra, "")
}

// AdmitKeyed is AdmitLimited for a request carrying an Idempotency-Key
// (idemKey, "" for none): the first final answer under the key (admitted,
// pre-queued, already queued, sold out, pre-queue refusals) is recorded in
// the same script call that gives it, and a retry under the key gets that
// answer again with Admission.Replayed set (also beside an error) and
// changes nothing. Keys are the caller's to validate.
func (q *Redis) AdmitKeyed(ctx context.Context, student, course int64, extra Limit, idemKey string) (Admission, error) {
	out, err := q.admits.Do(ctx, admitReq{student: student, course: course, extra: extra, idem: idemKey})
	if err != nil {
		return Admission{}, fmt.Errorf("admit student %d course %d: %w", student, course, err)
	}
	return out.res, out.err
}

// admitReq is one admission in a batch; admitOutcome its answer.
type admitReq struct {
	student, course int64
	extra           Limit
	idem            string // Idempotency-Key, "" for none
}

type admitOutcome struct {
	res Admission
	err error
}

// admitBatch runs admit.lua once for batch (not a draw).
func (q *Redis) admitBatch(ctx context.Context, batch []admitReq) ([]admitOutcome, error) {
	res, err := q.runAdmit(ctx, batch, -1)
	if err != nil {
		return nil, err
	}
	out := make([]admitOutcome, len(batch))
	for i := range batch {
		out[i].res, out[i].err = admitResult(res[3*i], res[3*i+1], res[3*i+2])
	}
	return out, nil
}

// runAdmit runs admit.lua once: the shared keys, then each request's six
// keys and five arguments (see the script's header). cursor is the draw's
// cursor the batch starts at, or -1 for ordinary admissions. It returns the
// script's three integers per request.
func (q *Redis) runAdmit(ctx context.Context, batch []admitReq, cursor int64) ([]int64, error) {
	k := q.keys
	keys := make([]string, 0, 13+6*len(batch))
	keys = append(keys, k.Open(), k.Seq(), k.Waiting(), k.Pending(), k.Req(), k.Dup(), k.Seats(), k.PCount(), k.Stats(),
		k.PreOpen(), k.PreStudents(), k.Draw(), k.Refusals())
	args := make([]any, 0, 6+5*len(batch))
	limit := q.RateLimit
	if cursor >= 0 {
		limit = 0 // the draw's entries were counted when they were pre-queued
	}
	args = append(args, limit, q.RateWindow.Milliseconds(), (24 * time.Hour).Milliseconds(), cursor, PrequeueMax, k.Notices())
	for _, c := range batch {
		rl := k.RateLimit(c.student)
		ipKey, ipN, ipWindow := rl, 0, int64(0)
		if c.extra.N > 0 && c.extra.Key != "" && c.extra.Window > 0 {
			ipKey, ipN, ipWindow = c.extra.Key, c.extra.N, c.extra.Window.Milliseconds()
		}
		idemKey, keyed := rl, "0"
		if c.idem != "" && cursor < 0 {
			idemKey, keyed = k.Idem(c.student, c.course, c.idem), "1"
		}
		keys = append(keys, k.Enrolled(c.student), rl, k.Mine(c.student), ipKey, k.Pre(c.student), idemKey)
		args = append(args, c.student, c.course, ipN, ipWindow, keyed)
	}
	res, err := admitScript.Run(ctx, q.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("admit.lua (batch of %d): %w", len(batch), err)
	}
	if len(res) != 3*len(batch) {
		return nil, fmt.Errorf("admit.lua returned %d values for %d requests", len(res), len(batch))
	}
	return res, nil
}

// AdmitCalls returns how many admit.lua calls the queue has sent.
func (q *Redis) AdmitCalls() int64 {
	calls, _ := q.admits.Stats()
	return calls
}

// admitResult turns one {code, a, b} triple of admit.lua into an answer. A
// replayed answer (an Idempotency-Key's original) comes as code ± 100.
func admitResult(code, a, b int64) (Admission, error) {
	if code > 100 || code < -100 {
		orig := code - 100
		if code < 0 {
			orig = code + 100
		}
		ad, err := admitResult(orig, a, b)
		ad.Replayed = true
		return ad, err
	}
	switch code {
	case 1:
		return Admission{RequestID: a, Ticket: a, Ahead: b}, nil
	case 2:
		return Admission{Prequeued: true, Entries: a, Students: b}, nil
	case -1:
		return Admission{}, enroll.ErrWindowClosed
	case -2, -7:
		return Admission{}, &enroll.RateLimitError{RetryAfter: time.Duration(max(a, 1)) * time.Millisecond}
	case -3:
		return Admission{}, &enroll.AlreadyQueuedError{RequestID: a}
	case -4:
		return Admission{}, enroll.ErrAlreadyEnrolled
	case -5:
		return Admission{}, enroll.ErrUnknownCourse
	case -6:
		return Admission{}, enroll.ErrSoldOut
	case -8:
		return Admission{}, enroll.ErrAlreadyPrequeued
	case -9:
		return Admission{}, enroll.ErrPrequeueFull
	case -11:
		return Admission{}, enroll.ErrOpening
	}
	return Admission{}, fmt.Errorf("admit: unexpected script result {%d, %d, %d}", code, a, b)
}
