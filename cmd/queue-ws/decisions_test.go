package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
)

// countingDecisions counts the reads that reach MariaDB.
type countingDecisions struct {
	next  *enroll.Store
	calls atomic.Int64
}

func (c *countingDecisions) Decisions(ctx context.Context, ids []int64) ([]enroll.Decision, error) {
	c.calls.Add(1)
	return c.next.Decisions(ctx, ids)
}

// TestGroupedDecisions: 600 concurrent single-request reads (every decided
// request twice, plus ids with no decision) each get exactly their own
// decision from real MariaDB, in far fewer queries than reads.
func TestGroupedDecisions(t *testing.T) {
	f := newFixture(t, 300, 5)
	reqs := make([]enroll.Request, len(f.reqs))
	for i, a := range f.reqs {
		reqs[i] = enroll.Request{ID: a.id, StudentID: a.student, CourseID: 1 + a.student%5, Ticket: a.id, AdmittedAt: time.Now()}
	}
	want, err := f.store.DecideBatch(f.ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]enroll.Decision{}
	for _, d := range want {
		byID[d.RequestID] = d
	}
	counting := &countingDecisions{next: f.store}
	g := newGroupedDecisions(counting)

	ids := make([]int64, 0, 2*len(reqs)+10)
	for _, r := range reqs {
		ids = append(ids, r.ID, r.ID)
	}
	for i := range 10 {
		ids = append(ids, 1_000_000+int64(i)) // never admitted
	}
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds, err := g.Decisions(f.ctx, []int64{id})
			w, ok := byID[id]
			switch {
			case err != nil:
				t.Errorf("request %d: %v", id, err)
				wrong.Add(1)
			case !ok && len(ds) != 0:
				t.Errorf("request %d has no decision, got %+v", id, ds)
				wrong.Add(1)
			case ok && (len(ds) != 1 || ds[0].RequestID != id || ds[0].Status != w.Status || ds[0].Reason != w.Reason || ds[0].StudentID != w.StudentID):
				t.Errorf("request %d: got %+v, want %+v", id, ds, w)
				wrong.Add(1)
			}
		}()
	}
	wg.Wait()
	if wrong.Load() > 0 {
		t.Fatalf("%d of %d reads wrong", wrong.Load(), len(ids))
	}
	if n := counting.calls.Load(); n >= int64(len(ids))/4 {
		t.Errorf("%d queries for %d concurrent reads: not grouped", n, len(ids))
	} else {
		t.Logf("%d concurrent reads in %d queries", len(ids), n)
	}
	// Several ids in one call go straight through, in one query.
	before := counting.calls.Load()
	ds, err := g.Decisions(f.ctx, []int64{reqs[0].ID, reqs[1].ID})
	if err != nil || len(ds) != 2 || counting.calls.Load() != before+1 {
		t.Fatalf("two ids: %d decisions, err %v, %d queries; want 2, nil, 1", len(ds), err, counting.calls.Load()-before)
	}
}
