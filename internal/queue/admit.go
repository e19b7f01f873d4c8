package queue

import (
	"context"
	"fmt"
	"sync"
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

// Admission is the result of a successful admission.
type Admission struct {
	RequestID int64
	Ticket    int64
	Ahead     int64 // undecided requests with a lower ticket
}

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
// Errors: enroll.ErrWindowClosed, *enroll.RateLimitError,
// *enroll.AlreadyQueuedError, enroll.ErrAlreadyEnrolled,
// enroll.ErrUnknownCourse (no seat hint: check MariaDB), enroll.ErrSoldOut.
// If ctx ends first the caller gets ctx's error; the request may still have
// been admitted (as when a client hangs up after Redis answered), and then
// it is decided like any other.
func (q *Redis) AdmitLimited(ctx context.Context, student, course int64, extra Limit) (Admission, error) {
	c := &admitCall{student: student, course: course, extra: extra, done: make(chan struct{})}
	q.batch.submit(c)
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return Admission{}, fmt.Errorf("admit student %d course %d: %w", student, course, ctx.Err())
	}
}

// admitCall is one admission waiting for its batch.
type admitCall struct {
	student, course int64
	extra           Limit
	res             Admission
	err             error
	done            chan struct{}
}

// admitBatcher groups concurrent admissions into admit.lua calls. At most
// slots calls are in flight at once; callers arriving meanwhile queue up and
// the next free slot takes up to max of them, oldest first. No goroutine
// lives longer than the queue stays non-empty.
type admitBatcher struct {
	q       *Redis
	max     int
	timeout time.Duration
	slots   chan struct{}

	mu    sync.Mutex
	queue []*admitCall
	calls int64 // admit.lua calls sent (guarded by mu)
}

func newAdmitBatcher(q *Redis, slots, max int) *admitBatcher {
	return &admitBatcher{q: q, max: max, timeout: 10 * time.Second, slots: make(chan struct{}, slots)}
}

func (b *admitBatcher) submit(c *admitCall) {
	b.mu.Lock()
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case b.slots <- struct{}{}:
		go b.run()
	default:
		// Every slot is busy; the runner holding one takes c when its call
		// ends (it looks at the queue before giving the slot back).
	}
}

// run sends batches until the queue is empty, then frees its slot. The slot
// is given back under the lock that submit appends under, so a call is never
// left in the queue with no runner.
func (b *admitBatcher) run() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			<-b.slots
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), b.max)
		batch := make([]*admitCall, n)
		copy(batch, b.queue)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.calls++
		b.mu.Unlock()
		b.exec(batch)
	}
}

// exec runs admit.lua for batch and hands every caller its answer. The call
// serves several callers, so it runs under its own deadline rather than any
// one caller's context.
func (b *admitBatcher) exec(batch []*admitCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	q, k := b.q, b.q.keys
	keys := make([]string, 0, 9+4*len(batch))
	keys = append(keys, k.Open(), k.Seq(), k.Waiting(), k.Pending(), k.Req(), k.Dup(), k.Seats(), k.PCount(), k.Stats())
	args := make([]any, 0, 3+4*len(batch))
	args = append(args, q.RateLimit, q.RateWindow.Milliseconds(), (24 * time.Hour).Milliseconds())
	for _, c := range batch {
		rl := k.RateLimit(c.student)
		ipKey, ipN, ipWindow := rl, 0, int64(0)
		if c.extra.N > 0 && c.extra.Key != "" && c.extra.Window > 0 {
			ipKey, ipN, ipWindow = c.extra.Key, c.extra.N, c.extra.Window.Milliseconds()
		}
		keys = append(keys, k.Enrolled(c.student), rl, k.Mine(c.student), ipKey)
		args = append(args, c.student, c.course, ipN, ipWindow)
	}
	res, err := admitScript.Run(ctx, q.rdb, keys, args...).Int64Slice()
	if err == nil && len(res) != 3*len(batch) {
		err = fmt.Errorf("script returned %d values for %d requests", len(res), len(batch))
	}
	for i, c := range batch {
		if err != nil {
			c.err = fmt.Errorf("admit student %d course %d (batch of %d): %w", c.student, c.course, len(batch), err)
		} else {
			c.res, c.err = admitResult(res[3*i], res[3*i+1], res[3*i+2])
		}
		close(c.done)
	}
}

// AdmitCalls returns how many admit.lua calls the queue has sent.
func (q *Redis) AdmitCalls() int64 {
	q.batch.mu.Lock()
	defer q.batch.mu.Unlock()
	return q.batch.calls
}

// admitResult turns one {code, a, b} triple of admit.lua into an answer.
func admitResult(code, a, b int64) (Admission, error) {
	switch code {
	case 1:
		return Admission{RequestID: a, Ticket: a, Ahead: b}, nil
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
	}
	return Admission{}, fmt.Errorf("admit: unexpected script result {%d, %d, %d}", code, a, b)
}
