package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupsConcurrentCallers: 2,000 concurrent callers each get their own
// answer; no more than Slots batches run at once, none holds more than Max
// callers, and while a batch is slow the others pile up into few batches.
func TestGroupsConcurrentCallers(t *testing.T) {
	var inFlight, peak atomic.Int32
	var sizes sync.Map
	g := New(Config{Slots: 2, Max: 100}, func(ctx context.Context, in []int) ([]int, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("batch runs without a deadline")
		}
		sizes.Store(len(in), true)
		time.Sleep(2 * time.Millisecond)
		out := make([]int, len(in))
		for i, v := range in {
			out[i] = v * 10
		}
		return out, nil
	})
	const callers = 2000
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := g.Do(context.Background(), i)
			if err != nil || got != i*10 {
				errs <- errors.New("wrong answer")
			}
		}()
	}
	wg.Wait()
	close(errs)
	if n := len(errs); n > 0 {
		t.Fatalf("%d callers got a wrong answer or an error", n)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d batches in flight at once, want at most 2", p)
	}
	sizes.Range(func(k, _ any) bool {
		if k.(int) > 100 {
			t.Errorf("a batch of %d callers, want at most 100", k.(int))
		}
		return true
	})
	batches, items := g.Stats()
	if items != callers {
		t.Errorf("Stats items = %d, want %d", items, callers)
	}
	if batches >= callers/4 {
		t.Errorf("%d batches for %d concurrent callers: they were not grouped", batches, callers)
	}
	t.Logf("%d callers in %d batches", items, batches)
}

// TestIdleCallerGoesAtOnce: with nothing in flight a caller's batch starts
// immediately and holds only that caller.
func TestIdleCallerGoesAtOnce(t *testing.T) {
	g := New(Config{}, func(_ context.Context, in []string) ([]string, error) {
		if len(in) != 1 {
			t.Errorf("batch of %d, want 1", len(in))
		}
		return in, nil
	})
	for _, s := range []string{"a", "b", "c"} {
		got, err := g.Do(context.Background(), s)
		if err != nil || got != s {
			t.Fatalf("Do(%q) = %q, %v", s, got, err)
		}
	}
	if b, i := g.Stats(); b != 3 || i != 3 {
		t.Fatalf("Stats = %d batches, %d items; want 3, 3", b, i)
	}
}

// TestBatchErrorReachesEveryCaller: an error, or a result of the wrong
// length, fails every caller of that batch and not later ones.
func TestBatchErrorReachesEveryCaller(t *testing.T) {
	boom := errors.New("boom")
	g, errs := heldBatch(t, 3, func(in []int) ([]int, error) { return nil, boom })
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("caller %d: err = %v, want boom", i, err)
		}
	}
	if _, err := g.Do(context.Background(), 5); err != nil {
		t.Errorf("a later caller after a failed batch: %v", err)
	}
	g, errs = heldBatch(t, 2, func([]int) ([]int, error) { return []int{1}, nil }) // one result for two callers
	for i, err := range errs {
		if err == nil {
			t.Errorf("caller %d of a batch with too few results: no error", i)
		}
	}
	if _, err := g.Do(context.Background(), 5); err != nil {
		t.Errorf("single caller with one result: %v", err)
	}
}

// heldBatch makes n callers form one batch of a one-slot Group (a first
// call holds the slot until they have all queued), runs it through fn and
// returns the Group (whose later batches just echo) and each caller's error.
func heldBatch(t *testing.T, n int, fn func(in []int) ([]int, error)) (*Group[int, int], []error) {
	t.Helper()
	release := make(chan struct{})
	var batches atomic.Int32
	g := New(Config{Slots: 1}, func(_ context.Context, in []int) ([]int, error) {
		switch batches.Add(1) {
		case 1:
			<-release
			return in, nil
		case 2:
			return fn(in)
		}
		return in, nil
	})
	go func() { _, _ = g.Do(context.Background(), -1) }()
	waitFor(t, func() bool { b, _ := g.Stats(); return b == 1 })
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = g.Do(context.Background(), i+1)
		}()
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == n })
	close(release)
	wg.Wait()
	return g, errs
}

// TestCallerContext: a caller whose context ends stops waiting; the batch
// still completes and no goroutine is left behind.
func TestCallerContext(t *testing.T) {
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	var ran atomic.Int32
	g := New(Config{Slots: 1}, func(_ context.Context, in []int) ([]int, error) {
		<-release
		ran.Add(int32(len(in)))
		return in, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	close(release)
	waitFor(t, func() bool { return ran.Load() == 1 })
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
