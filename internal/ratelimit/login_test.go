package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/ratelimit"
)

// TestLoginAttemptAtomic: 50 concurrent attempts from one address get at
// most the budget through; another address still gets its own budget; a
// success clears the account.
func TestLoginAttemptAtomic(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	l := ratelimit.New(rdb, term)
	ctx := context.Background()
	r := ratelimit.Rule{Name: "lfail", N: 5, Window: time.Minute}
	b := ratelimit.Backoff{After: 0}
	var passed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.LoginAttempt(ctx, r, b, "s:acct", "192.0.2.1") == nil {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 5 {
		t.Errorf("%d attempts passed, budget 5", passed.Load())
	}
	if err := l.LoginAttempt(ctx, r, b, "s:acct", "192.0.2.2"); err != nil {
		t.Errorf("another address: %v", err)
	}
	if err := l.LoginSucceeded(ctx, r, "s:acct", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := l.LoginAttempt(ctx, r, b, "s:acct", "192.0.2.1"); err != nil {
		t.Errorf("after a success: %v", err)
	}
}

// TestLoginBackoffDoubles: past After attempts at an account from anywhere,
// each attempt makes the next wait Base, 2·Base, … at most Cap.
func TestLoginBackoffDoubles(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	l := ratelimit.New(rdb, term)
	ctx := context.Background()
	r := ratelimit.Rule{Name: "lfail", N: 100, Window: time.Minute}
	b := ratelimit.Backoff{After: 3, Window: time.Minute, Base: 200 * time.Millisecond, Cap: 500 * time.Millisecond}
	addr := []string{"a1", "a2", "a3"}
	for i := 0; i < 3; i++ {
		if err := l.LoginAttempt(ctx, r, b, "s:x", addr[i]); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	var ex *ratelimit.Exceeded
	if err := l.LoginAttempt(ctx, r, b, "s:x", "a9"); !errors.As(err, &ex) || ex.RetryAfter > 200*time.Millisecond {
		t.Fatalf("during the first back-off: %v", err)
	}
	time.Sleep(250 * time.Millisecond)
	if err := l.LoginAttempt(ctx, r, b, "s:x", "a9"); err != nil {
		t.Fatalf("after the first back-off: %v", err)
	}
	if err := l.LoginAttempt(ctx, r, b, "s:x", "a9"); !errors.As(err, &ex) || ex.RetryAfter <= 200*time.Millisecond || ex.RetryAfter > 500*time.Millisecond {
		t.Fatalf("second back-off (doubled, capped): %v", err)
	}
}
