// Package groupcommit groups concurrent calls into batches (group commit):
// at most Slots calls of the batch function are in flight at once, and
// callers that arrive meanwhile wait together for the next free slot, which
// takes up to Max of them, oldest first. A caller that finds a slot free goes
// at once, so an idle system adds no latency; a busy one pays one round trip
// for many callers. No goroutine lives longer than callers are waiting.
//
// The admission path (internal/queue: many admissions per admit.lua call)
// and queue-ws's decision reads (many watches per SELECT) use it.
package groupcommit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Func runs one batch. It returns one Out per In, in order; an error fails
// every caller of the batch. It runs under its own deadline (Config.Timeout),
// not any one caller's context, because it serves several callers.
type Func[In, Out any] func(ctx context.Context, in []In) ([]Out, error)

// Config sets a Group's limits; zero values take the defaults.
type Config struct {
	Slots   int           // batch calls in flight at once (default 2)
	Max     int           // callers per batch (default 256)
	Timeout time.Duration // deadline of one batch call (default 10s)
}

// Group batches calls of one Func.
type Group[In, Out any] struct {
	fn      Func[In, Out]
	max     int
	timeout time.Duration
	slots   chan struct{}

	mu      sync.Mutex
	queue   []*call[In, Out]
	batches int64 // batch calls started (guarded by mu)
	items   int64 // callers served by them (guarded by mu)
}

type call[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

// New returns a Group running fn.
func New[In, Out any](cfg Config, fn Func[In, Out]) *Group[In, Out] {
	if cfg.Slots <= 0 {
		cfg.Slots = 2
	}
	if cfg.Max <= 0 {
		cfg.Max = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Group[In, Out]{fn: fn, max: cfg.Max, timeout: cfg.Timeout, slots: make(chan struct{}, cfg.Slots)}
}

// Do submits in and waits for its batch. If ctx ends first the caller gets
// ctx's error; the batch still runs (the work may have been done, as when a
// client hangs up after the server answered).
func (g *Group[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	c := &call[In, Out]{in: in, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	g.mu.Unlock()
	select {
	case g.slots <- struct{}{}:
		go g.run()
	default:
		// Every slot is busy; the runner holding one takes c when its batch
		// ends (it looks at the queue before giving the slot back).
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// Stats returns how many batch calls were started and how many callers they
// served (callers per round trip = items / batches).
func (g *Group[In, Out]) Stats() (batches, items int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.batches, g.items
}

// run sends batches until the queue is empty, then frees its slot. The slot
// is given back under the lock that Do appends under, so a caller is never
// left in the queue with no runner.
func (g *Group[In, Out]) run() {
	for {
		g.mu.Lock()
		if len(g.queue) == 0 {
			<-g.slots
			g.mu.Unlock()
			return
		}
		n := min(len(g.queue), g.max)
		batch := make([]*call[In, Out], n)
		copy(batch, g.queue)
		rest := copy(g.queue, g.queue[n:])
		clear(g.queue[rest:])
		g.queue = g.queue[:rest]
		g.batches++
		g.items += int64(n)
		g.mu.Unlock()
		g.exec(batch)
	}
}

func (g *Group[In, Out]) exec(batch []*call[In, Out]) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	in := make([]In, len(batch))
	for i, c := range batch {
		in[i] = c.in
	}
	out, err := g.fn(ctx, in)
	if err == nil && len(out) != len(batch) {
		err = fmt.Errorf("groupcommit: batch of %d returned %d results", len(batch), len(out))
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
		} else {
			c.out = out[i]
		}
		close(c.done)
	}
}
