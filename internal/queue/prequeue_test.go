package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
)

// prequeueSetup returns a queue whose window is closed and whose pre-queue
// is open, with seats for courses 1..courses.
func prequeueSetup(t *testing.T, rdb *redis.Client, term string, courses, seats int) *Redis {
	t.Helper()
	q := New(rdb, term)
	q.RateLimit = 0
	ctx := context.Background()
	m := map[int64]int{}
	for c := 1; c <= courses; c++ {
		m[int64(c)] = seats
	}
	seedSeats(t, q, m)
	if err := q.SetOpen(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := q.SetPrequeue(ctx, true); err != nil {
		t.Fatal(err)
	}
	return q
}

// plan is who pre-queues what, in arrival order: student i (1-based) sends
// carts[i-1] in that order.
func prequeueAll(t *testing.T, q *Redis, carts [][]int64) {
	t.Helper()
	ctx := context.Background()
	for i, cart := range carts {
		for j, c := range cart {
			a, err := q.Admit(ctx, int64(i+1), c)
			if err != nil {
				t.Fatalf("pre-queue student %d course %d: %v", i+1, c, err)
			}
			if !a.Prequeued || a.Ticket != 0 || a.Entries != int64(j+1) || a.Students != int64(i+1) {
				t.Fatalf("pre-queue student %d course %d = %+v, want entry %d of student %d, no ticket", i+1, c, a, j+1, i+1)
			}
		}
	}
}

func randomCarts(n, courses int, seed uint64) [][]int64 {
	r := rand.New(rand.NewPCG(seed, 1))
	carts := make([][]int64, n)
	for i := range carts {
		for _, c := range r.Perm(courses)[:1+r.IntN(3)] {
			carts[i] = append(carts[i], int64(c+1))
		}
	}
	return carts
}

func countEntries(carts [][]int64) int {
	n := 0
	for _, c := range carts {
		n += len(c)
	}
	return n
}

// outcomes reads every student's entries.
func outcomes(t *testing.T, q *Redis, students int) map[int64][]PrequeueEntry {
	t.Helper()
	out := map[int64][]PrequeueEntry{}
	for s := int64(1); s <= int64(students); s++ {
		es, err := q.Prequeued(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		out[s] = es
	}
	return out
}

func TestPrequeueEntries(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	q := New(rdb, term)
	ctx := context.Background()
	seedSeats(t, q, map[int64]int{1: 5, 2: 5})
	if _, err := q.Admit(ctx, 1, 1); !errors.Is(err, enroll.ErrWindowClosed) {
		t.Fatalf("closed window, no pre-queue: err = %v, want window closed", err)
	}
	if err := q.SetPrequeue(ctx, true); err != nil {
		t.Fatal(err)
	}
	a, err := q.Admit(ctx, 1, 1)
	if err != nil || !a.Prequeued || a.Entries != 1 || a.Students != 1 || a.Ticket != 0 {
		t.Fatalf("pre-queue = %+v, %v; want entry 1 of 1 student, no ticket", a, err)
	}
	if _, err := q.Admit(ctx, 1, 1); !errors.Is(err, enroll.ErrAlreadyPrequeued) {
		t.Fatalf("same course again: err = %v, want already pre-queued", err)
	}
	if _, err := q.Admit(ctx, 1, 99); !errors.Is(err, enroll.ErrUnknownCourse) {
		t.Fatalf("unknown course: err = %v", err)
	}
	if err := rdb.SAdd(ctx, q.Keys().Enrolled(2), 1).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Admit(ctx, 2, 1); !errors.Is(err, enroll.ErrAlreadyEnrolled) {
		t.Fatalf("enrolled student: err = %v, want already enrolled", err)
	}
	// The cap: PrequeueMax entries per student, then refused.
	for c := int64(100); c < 100+PrequeueMax; c++ {
		seedSeats(t, q, map[int64]int{c: 1})
		_, err := q.Admit(ctx, 3, c)
		if err != nil {
			t.Fatalf("entry %d of student 3: %v", c-99, err)
		}
	}
	seedSeats(t, q, map[int64]int{500: 1})
	if _, err := q.Admit(ctx, 3, 500); !errors.Is(err, enroll.ErrPrequeueFull) {
		t.Fatalf("entry %d: err = %v, want pre-queue full", PrequeueMax+1, err)
	}
	// Nothing reached the line: no ticket, nothing waiting, hints untouched.
	if n, _ := rdb.Exists(ctx, q.Keys().Seq()).Result(); n != 0 {
		t.Error("a pre-queue entry took a ticket")
	}
	if st, _ := q.Stats(ctx); st.Pending != 0 {
		t.Errorf("pending = %d, want 0", st.Pending)
	}
	if h, _, _ := q.SeatHint(ctx, 1); h != 5 {
		t.Errorf("seat hint of course 1 = %d, want 5 (untouched)", h)
	}
	st, err := q.DrawStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Open || st.Students != 2 || st.Entries != 1+PrequeueMax || st.State != "" {
		t.Errorf("status = %+v, want open, 2 students, %d entries, no draw", st, 1+PrequeueMax)
	}
	// Closing the pre-queue refuses again, as a closed window does.
	if err := q.SetPrequeue(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Admit(ctx, 4, 2); !errors.Is(err, enroll.ErrWindowClosed) {
		t.Fatalf("closed pre-queue: err = %v, want window closed", err)
	}
}

// TestDrawOrder: every entry is drawn once; students come in the seed's
// shuffled order, not in arrival order; a student's entries are together
// and in the order sent; whoever comes after the opening is behind them all;
// during the draw, arrivals are told the window is opening.
func TestDrawOrder(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	const students, courses = 2000, 40
	q := prequeueSetup(t, rdb, term, courses, 1_000_000)
	carts := randomCarts(students, courses, 3)
	prequeueAll(t, q, carts)
	ctx := context.Background()

	var openingErrs, batches, popped int
	st, err := q.Draw(ctx, 42, func(done, total int64) {
		batches++
		if _, err := q.Admit(ctx, students+1, 1); errors.Is(err, enroll.ErrOpening) {
			openingErrs++
		}
		rs, err := q.Pop(ctx, 10, time.Minute)
		if err != nil {
			t.Error(err)
		}
		popped += len(rs)
	})
	if err != nil {
		t.Fatal(err)
	}
	entries := countEntries(carts)
	if st.State != DrawDone || st.Total != int64(entries) || st.Cursor != int64(entries) || st.Seed != 42 || st.Open ||
		st.Admitted != int64(entries) || len(st.Refused) != 0 {
		t.Fatalf("status = %+v, want done with %d entries, seed 42, pre-queue closed", st, entries)
	}
	if openingErrs != batches {
		t.Errorf("arrivals during the draw: %d of %d told the window is opening", openingErrs, batches)
	}
	if popped != 0 {
		t.Errorf("%d requests popped during the draw, want 0 (the drain waits for the line to be formed)", popped)
	}

	got := outcomes(t, q, students)
	want := make([]int64, students)
	for i := range want {
		want[i] = int64(i + 1)
	}
	Shuffle(want, 42)
	next := int64(1) // tickets are dense: the draw's entries take 1..entries
	for _, s := range want {
		cart := carts[s-1]
		byCourse := map[int64]PrequeueEntry{}
		for _, e := range got[s] {
			byCourse[e.CourseID] = e
		}
		if len(byCourse) != len(cart) {
			t.Fatalf("student %d: %d outcomes for %d entries", s, len(byCourse), len(cart))
		}
		for _, c := range cart {
			e := byCourse[c]
			if e.Waiting || e.Ticket != next {
				t.Fatalf("student %d course %d: %+v, want ticket %d (drawn order, cart order)", s, c, e, next)
			}
			next++
		}
	}
	// Not arrival order: the rank correlation of arrival and draw is ~0.
	pos := make([]float64, students)
	for rank, s := range want {
		pos[s-1] = float64(rank)
	}
	var d2 float64
	for i, p := range pos {
		d2 += (float64(i) - p) * (float64(i) - p)
	}
	n := float64(students)
	if rho := 1 - 6*d2/(n*(n*n-1)); rho > 0.1 || rho < -0.1 {
		t.Errorf("Spearman rho(arrival, draw) = %.3f, want |rho| < 0.1", rho)
	}
	// Opening: later arrivals queue behind every drawn entry.
	if err := q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	a, err := q.Admit(ctx, students+1, 1)
	if err != nil || a.Ticket != next || a.Ahead != int64(entries) {
		t.Fatalf("first admission after the draw = %+v, %v; want ticket %d behind %d", a, err, next, entries)
	}
	// A finished draw is not drawn again.
	if st2, err := q.Draw(ctx, 7, nil); err != nil || st2.Cursor != st.Cursor || st2.Seed != 42 {
		t.Fatalf("second Draw = %+v, %v; want the finished draw unchanged", st2, err)
	}
	if st, _ := q.Stats(ctx); st.Pending != int64(entries)+1 {
		t.Errorf("pending = %d, want %d", st.Pending, entries+1)
	}
	// The drain serves the line from its first ticket once the draw is done.
	rs, err := q.Pop(ctx, 3, time.Minute)
	if err != nil || len(rs) != 3 || rs[0].Ticket != 1 {
		t.Fatalf("pop after the draw = %v, %v; want tickets 1..3", rs, err)
	}
}

// TestDrawResumesExactlyOnce: a drawer stopped mid-way and resumed (with
// another seed, which must be ignored) gives each entry the outcome an
// uninterrupted draw gives it, once.
func TestDrawResumesExactlyOnce(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	const students, courses = 1500, 30
	carts := randomCarts(students, courses, 5)
	whole := prequeueSetup(t, rdb, term, courses, 40) // scarce seats: sold-out refusals too
	prequeueAll(t, whole, carts)
	if _, err := whole.Draw(context.Background(), 7, nil); err != nil {
		t.Fatal(err)
	}

	rdb2, term2 := dbtest.Redis(t)
	cut := prequeueSetup(t, rdb2, term2, courses, 40)
	cut.DrawBatch = 500 // several batches
	prequeueAll(t, cut, carts)
	ctx, stop := context.WithCancel(context.Background())
	_, err := cut.Draw(ctx, 7, func(done, total int64) {
		if done >= int64(2*cut.DrawBatch) {
			stop()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted draw: err = %v, want canceled", err)
	}
	mid, _ := cut.DrawStatus(context.Background())
	if mid.State != DrawDrawing || mid.Cursor != int64(2*cut.DrawBatch) {
		t.Fatalf("after the interruption: %+v, want drawing at %d", mid, 2*cut.DrawBatch)
	}
	// The window stays shut meanwhile: arrivals are told it is opening.
	if _, err := cut.Admit(context.Background(), students+1, 1); !errors.Is(err, enroll.ErrOpening) {
		t.Fatalf("arrival during an interrupted draw: err = %v, want opening", err)
	}
	st, err := cut.Draw(context.Background(), 99, nil)
	if err != nil || st.State != DrawDone || st.Seed != 7 {
		t.Fatalf("resumed draw = %+v, %v; want done with seed 7", st, err)
	}
	a, b := outcomes(t, whole, students), outcomes(t, cut, students)
	soldOut := 0
	for s := int64(1); s <= students; s++ {
		if !slices.Equal(a[s], b[s]) {
			t.Fatalf("student %d: uninterrupted %+v, resumed %+v", s, a[s], b[s])
		}
		for _, e := range b[s] {
			if e.Code == -6 {
				soldOut++
			}
		}
	}
	if soldOut == 0 {
		t.Error("no sold-out refusal at the draw; the test wants scarce seats")
	}
	wst, _ := whole.Stats(context.Background())
	cst, _ := cut.Stats(context.Background())
	if wst.Pending != cst.Pending || cst.Pending != int64(courses*40) {
		t.Errorf("pending: uninterrupted %d, resumed %d, want %d (every seat hinted once)", wst.Pending, cst.Pending, courses*40)
	}
}

// TestDrawConcurrent: two drawers at once admit each entry once between them.
func TestDrawConcurrent(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	const students = 5000
	q := prequeueSetup(t, rdb, term, 20, 1_000_000)
	carts := randomCarts(students, 20, 9)
	prequeueAll(t, q, carts)
	entries := countEntries(carts)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			d := New(rdb, term)
			d.DrawBatch = 1000
			_, errs[i] = d.Draw(context.Background(), uint64(i+1), nil)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	for s, es := range outcomes(t, q, students) {
		for _, e := range es {
			if e.Ticket == 0 || seen[e.Ticket] {
				t.Fatalf("student %d: %+v (no ticket or a ticket given twice)", s, e)
			}
			seen[e.Ticket] = true
		}
	}
	st, _ := q.Stats(context.Background())
	if len(seen) != entries || st.Pending != int64(entries) {
		t.Fatalf("%d tickets, %d pending, want %d each", len(seen), st.Pending, entries)
	}
	if n, _ := rdb.Get(context.Background(), q.Keys().Seq()).Int64(); n != int64(entries) {
		t.Fatalf("ticket counter %d, want %d", n, entries)
	}
	// Two drawers count each entry once in the summary.
	if ds, err := q.DrawStatus(context.Background()); err != nil || ds.Admitted != int64(entries) || len(ds.Refused) != 0 {
		t.Fatalf("draw summary %+v, %v; want %d admitted, none refused", ds, err, entries)
	}
}

// TestShuffleUniform: every order of 4 students is about equally likely.
func TestShuffleUniform(t *testing.T) {
	const runs = 24_000
	counts := map[string]int{}
	for seed := uint64(0); seed < runs; seed++ {
		ids := []int64{1, 2, 3, 4}
		Shuffle(ids, seed)
		k := ""
		for _, id := range ids {
			k += strconv.FormatInt(id, 10)
		}
		counts[k]++
	}
	if len(counts) != 24 {
		t.Fatalf("%d distinct orders of 4, want 24", len(counts))
	}
	// chi-square with 23 degrees of freedom; 49.7 is its 0.999 quantile.
	var chi float64
	for _, c := range counts {
		d := float64(c) - runs/24
		chi += d * d / (runs / 24)
	}
	if chi > 49.7 {
		t.Errorf("chi-square %.1f over 24 orders: not uniform", chi)
	}
	a, b := []int64{1, 2, 3, 4, 5, 6, 7, 8}, []int64{1, 2, 3, 4, 5, 6, 7, 8}
	Shuffle(a, 11)
	Shuffle(b, 11)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different orders: %v %v", a, b)
	}
}

// TestDrawTakesOverAStaleListing: a drawer that died while writing the order
// (it claimed the listing and went quiet) is taken over after listStale, and
// its half-written order is replaced, not extended.
func TestDrawTakesOverAStaleListing(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	const students = 300
	q := prequeueSetup(t, rdb, term, 10, 1_000_000)
	carts := randomCarts(students, 10, 13)
	prequeueAll(t, q, carts)
	ctx := context.Background()
	if err := q.SetPrequeue(ctx, false); err != nil {
		t.Fatal(err)
	}
	keys := []string{q.Keys().Draw(), q.Keys().DrawList()}
	if ok, err := drawListScript.Run(ctx, rdb, keys, "claim", "dead", listStale.Milliseconds()).Bool(); err != nil || !ok {
		t.Fatalf("claim as the dead drawer: %v %v", ok, err)
	}
	if ok, err := drawListScript.Run(ctx, rdb, keys, "push", "dead", "1:1", "2:2").Bool(); err != nil || !ok {
		t.Fatalf("push as the dead drawer: %v %v", ok, err)
	}
	st, err := q.Draw(ctx, 5, nil)
	if err != nil || st.State != DrawDone {
		t.Fatalf("draw after a dead lister = %+v, %v", st, err)
	}
	entries := countEntries(carts)
	if st.Total != int64(entries) {
		t.Fatalf("total %d, want %d (the dead drawer's entries replaced)", st.Total, entries)
	}
	// The dead drawer, were it to wake, can no longer write.
	if ok, err := drawListScript.Run(ctx, rdb, keys, "push", "dead", "3:3").Bool(); err != nil || ok {
		t.Fatalf("late push of the dead drawer accepted: %v %v", ok, err)
	}
	if n, _ := rdb.LLen(ctx, q.Keys().DrawList()).Result(); n != int64(entries) {
		t.Fatalf("order has %d entries, want %d", n, entries)
	}
}

// TestDrawLargeChunks: a listing chunk of 5,000 students writes 10,000
// entries in one script call, more than Lua can unpack at once (8,000).
func TestDrawLargeChunks(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	q := prequeueSetup(t, rdb, term, 2, 1_000_000)
	q.DrawBatch = 5000
	carts := make([][]int64, 5000)
	for i := range carts {
		carts[i] = []int64{1, 2}
	}
	prequeueAll(t, q, carts)
	st, err := q.Draw(context.Background(), 1, nil)
	if err != nil || st.State != DrawDone || st.Total != 10_000 {
		t.Fatalf("draw = %+v, %v; want 10,000 entries drawn", st, err)
	}
}
