package queue

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
)

// Concurrent admissions are grouped into few admit.lua calls, and grouping
// changes nothing a caller sees: tickets are distinct and consecutive, each
// "ahead" counts exactly the undecided requests with lower tickets, and the
// seat hint admits exactly the free seats, the rest sold out.
func TestAdmitBatchedConcurrent(t *testing.T) {
	q, b := setup(t)
	const students, seats = 3000, 1000
	seedSeats(t, q, map[int64]int{10: seats})

	type answer struct {
		a   Admission
		err error
	}
	answers := make([]answer, students)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range students {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := q.Admit(b.ctx, int64(i+1), 10)
			answers[i] = answer{a, err}
		}()
	}
	close(start)
	wg.Wait()

	var tickets []int64
	soldOut := 0
	for i, an := range answers {
		switch {
		case an.err == nil:
			tickets = append(tickets, an.a.Ticket)
			// nothing is decided, so every lower ticket is still undecided
			if an.a.Ahead != an.a.Ticket-1 || an.a.RequestID != an.a.Ticket {
				t.Errorf("student %d: %+v, want ahead = ticket-1", i+1, an.a)
			}
		case errors.Is(an.err, enroll.ErrSoldOut):
			soldOut++
		default:
			t.Fatalf("student %d: %v", i+1, an.err)
		}
	}
	if len(tickets) != seats || soldOut != students-seats {
		t.Fatalf("admitted %d, sold out %d; want %d and %d", len(tickets), soldOut, seats, students-seats)
	}
	sort.Slice(tickets, func(i, j int) bool { return tickets[i] < tickets[j] })
	for i, tk := range tickets {
		if tk != int64(i+1) {
			t.Fatalf("tickets not 1..%d: position %d holds %d", seats, i, tk)
		}
	}
	if free := hash(t, b, q.Keys().Seats())["10"]; free != "0" {
		t.Errorf("seat hint after the burst = %s, want 0", free)
	}
	if n := len(zset(t, b, q.Keys().Pending())); n != seats {
		t.Errorf("pending holds %d, want %d", n, seats)
	}
	calls := q.AdmitCalls()
	if calls >= students {
		t.Errorf("%d admissions took %d admit.lua calls; concurrent callers were not grouped", students, calls)
	}
	t.Logf("%d concurrent admissions in %d admit.lua calls", students, calls)
}

// The caller's extra budget (the API's per-address limit) is counted in the
// same call: past N, admissions from that address are refused with the time
// left in the window, and nothing is queued for them.
func TestAdmitExtraBudget(t *testing.T) {
	q, b := setup(t)
	seedSeats(t, q, map[int64]int{10: 100})
	ip := Limit{Key: q.Keys().tag + "test-ip:10.0.0.1", N: 3, Window: time.Minute}
	admitted, limited := 0, 0
	for st := int64(1); st <= 5; st++ {
		_, err := q.AdmitLimited(b.ctx, st, 10, ip)
		var rl *enroll.RateLimitError
		switch {
		case err == nil:
			admitted++
		case errors.As(err, &rl):
			limited++
			if rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
				t.Errorf("retry after %v, want within the window", rl.RetryAfter)
			}
		default:
			t.Fatal(err)
		}
	}
	if admitted != 3 || limited != 2 {
		t.Fatalf("admitted %d, limited %d; want 3 and 2", admitted, limited)
	}
	if n := len(zset(t, b, q.Keys().Pending())); n != 3 {
		t.Errorf("pending holds %d, want 3", n)
	}
	// another address is not charged
	if _, err := q.AdmitLimited(b.ctx, 6, 10, Limit{Key: q.Keys().tag + "test-ip:10.0.0.2", N: 3, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
}

// A closed window refuses every request of a batch and queues none.
func TestAdmitBatchedWindowClosed(t *testing.T) {
	q, b := setup(t)
	seedSeats(t, q, map[int64]int{10: 100})
	if err := q.SetOpen(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = q.Admit(b.ctx, int64(i+1), 10)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, enroll.ErrWindowClosed) {
			t.Fatalf("request %d: %v, want window closed", i, err)
		}
	}
	if n := len(zset(t, b, q.Keys().Pending())); n != 0 {
		t.Errorf("pending holds %d after a closed window, want 0", n)
	}
}

// Concurrent lookups go out in few pipelines and each gets its own request:
// the record of a pending request and exactly the pending requests ahead of
// it, or ErrNotFound for a request that is not in the line.
func TestLookupGroupedConcurrent(t *testing.T) {
	q, b := setup(t)
	const n = 1500
	seedSeats(t, q, map[int64]int{10: n})
	ids := make([]int64, n)
	for i := range n {
		a, err := q.Admit(b.ctx, int64(i+1), 10)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.RequestID
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, id := range ids {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r, ahead, err := q.Lookup(b.ctx, id)
			switch {
			case err != nil:
				errs <- err
			case r.ID != id || r.StudentID != int64(i+1) || r.CourseID != 10 || ahead != int64(i):
				errs <- errors.New("wrong lookup")
				t.Errorf("lookup %d: %+v ahead %d, want student %d course 10 ahead %d", id, r, ahead, i+1, i)
			}
		}()
		go func() {
			defer wg.Done()
			if _, _, err := q.Lookup(b.ctx, 1_000_000+id); !errors.Is(err, enroll.ErrNotFound) {
				errs <- err
				t.Errorf("lookup of unknown %d: err %v, want ErrNotFound", 1_000_000+id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if len(errs) > 0 {
		t.Fatalf("%d of %d lookups wrong (first: %v)", len(errs), 2*n, <-errs)
	}
	pipes, items := q.lookups.Stats()
	if items != 2*n || pipes >= n {
		t.Errorf("%d lookups in %d pipelines; want %d lookups, grouped", items, pipes, 2*n)
	}
	t.Logf("%d concurrent lookups in %d pipelines", items, pipes)
}
