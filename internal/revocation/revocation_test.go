package revocation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/revocation"
)

// TestVersionsAcrossProcesses: two processes' caches over one database and
// Redis: a bump by one is refused at once there and within about PollEvery
// by the other; the steady state reads MariaDB once per subject.
func TestVersionsAcrossProcesses(t *testing.T) {
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	ids := dbtest.SeedStudents(t, db.DB, 2, 18, "")
	ctx := context.Background()
	a, b := revocation.New(db.DB, rdb, term), revocation.New(db.DB, rdb, term)
	a.PollEvery, b.PollEvery = 100*time.Millisecond, 100*time.Millisecond
	tok := auth.Claims{Kind: auth.KindStudent, Subject: ids[0]}
	for i := 0; i < 20; i++ {
		if err := b.Check(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.DBReads(); n != 1 {
		t.Errorf("%d MariaDB reads for 20 checks, want 1", n)
	}
	if _, err := a.Bump(ctx, revocation.Student, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(ctx, tok); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("same process after the bump: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !errors.Is(b.Check(ctx, tok), auth.ErrRevoked) {
		if time.Now().After(deadline) {
			t.Fatal("other process still accepts the old version after 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok.Version = 1
	if err := b.Check(ctx, tok); err != nil {
		t.Errorf("current version: %v", err)
	}
	// The other student is not affected; an unknown subject is refused.
	if err := b.Check(ctx, auth.Claims{Kind: auth.KindWS, Subject: ids[1]}); err != nil {
		t.Errorf("other student: %v", err)
	}
	if err := b.Check(ctx, auth.Claims{Kind: auth.KindStudent, Subject: 1 << 40}); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("unknown student: %v", err)
	}
	if _, err := a.Bump(ctx, revocation.Student, 1<<40); !errors.Is(err, revocation.ErrUnknownSubject) {
		t.Errorf("bump unknown: %v", err)
	}
}

// TestRunLoadsEverything: with Run, checks read no MariaDB row per student
// (one load of the table), an idle spell does not empty the cache, and a
// bump by another process is still seen within about PollEvery.
func TestRunLoadsEverything(t *testing.T) {
	db := dbtest.New(t)
	rdb, term := dbtest.Redis(t)
	ids := dbtest.SeedStudents(t, db.DB, 50, 18, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := revocation.New(db.DB, rdb, term), revocation.New(db.DB, rdb, term)
	b.PollEvery, b.Overlap = 100*time.Millisecond, 500*time.Millisecond
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b.Len() >= len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not loaded: %d reads", b.DBReads())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // idle: the background polls keep the cache
	for _, id := range ids {
		if err := b.Check(ctx, auth.Claims{Kind: auth.KindStudent, Subject: id}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.DBReads(); n != 0 {
		t.Errorf("%d MariaDB reads for 50 students after the load, want 0", n)
	}
	if _, err := a.Bump(ctx, revocation.Student, ids[7]); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for !errors.Is(b.Check(ctx, auth.Claims{Kind: auth.KindStudent, Subject: ids[7]}), auth.ErrRevoked) {
		if time.Now().After(deadline) {
			t.Fatal("bump not seen within 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
