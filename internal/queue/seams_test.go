package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
)

// TestPrequeueSecondRound: a student who used every entry in round 1 can
// enter round 2; the drawn outcomes of round 1 ("t:"/"x:") are outcomes,
// not entries, and do not count against the cap (seam 4).
func TestPrequeueSecondRound(t *testing.T) {
	q, b := setup(t)
	ctx := b.ctx
	q.RateLimit = 0
	seats := map[int64]int{}
	for c := int64(1); c <= 2*PrequeueMax; c++ {
		seats[c] = 5
	}
	seedSeats(t, q, seats)
	if err := q.SetOpen(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := q.SetPrequeue(ctx, true); err != nil {
		t.Fatal(err)
	}
	const student = 7
	for c := int64(1); c <= PrequeueMax; c++ {
		if _, err := q.Admit(ctx, student, c); err != nil {
			t.Fatalf("round 1 entry %d: %v", c, err)
		}
	}
	if _, err := q.Admit(ctx, student, PrequeueMax+1); !errors.Is(err, enroll.ErrPrequeueFull) {
		t.Fatalf("round 1 entry %d: err = %v, want prequeue_full", PrequeueMax+1, err)
	}
	if _, err := q.Draw(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	// Round 2: the window closes again and a new pre-queue opens.
	if err := q.SetOpen(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := q.SetPrequeue(ctx, true); err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= PrequeueMax; i++ {
		a, err := q.Admit(ctx, student, PrequeueMax+i)
		if err != nil {
			t.Fatalf("round 2 entry %d: %v (round 1's drawn entries counted against the cap)", i, err)
		}
		if a.Entries != i {
			t.Fatalf("round 2 entry %d: entries = %d, want %d (this round's only)", i, a.Entries, i)
		}
	}
	if _, err := q.Admit(ctx, student, 1); !errors.Is(err, enroll.ErrPrequeueFull) {
		t.Fatalf("round 2 entry %d: err = %v, want prequeue_full", PrequeueMax+1, err)
	}
}

// TestFencedSteps: once a newer leader took the fence, a pop, pre-ack, ack
// and requeue carrying the older fence are refused by Redis and change
// nothing (seam 3); the current fence and the unfenced callers still work.
func TestFencedSteps(t *testing.T) {
	q, b := setup(t)
	ctx := b.ctx
	q.RateLimit = 0
	seedSeats(t, q, map[int64]int{1: 100})
	lock := q.Keys().Lock()
	if err := b.rdb.Set(ctx, lock, "leader-a", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.TakeFence(ctx, lock, "someone-else", 0); !errors.Is(err, enroll.ErrFenced) {
		t.Fatalf("take fence without the lock: err = %v, want fenced", err)
	}
	fa, err := q.TakeFence(ctx, lock, "leader-a", 0)
	if err != nil || fa != 1 {
		t.Fatalf("leader a: fence %d, %v", fa, err)
	}
	for s := int64(1); s <= 10; s++ {
		if _, err := q.Admit(ctx, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	popped, err := q.PopFenced(ctx, fa, 2, time.Minute)
	if err != nil || len(popped) != 2 {
		t.Fatalf("pop by a: %v, %v", popped, err)
	}
	// The lock passes to b (a's expired); b takes a fence above MariaDB's 5.
	b.rdb.Set(ctx, lock, "leader-b", time.Minute)
	fb, err := q.TakeFence(ctx, lock, "leader-b", 5)
	if err != nil || fb != 6 {
		t.Fatalf("leader b: fence %d, %v (want above MariaDB's 5)", fb, err)
	}
	before := zset(t, b, q.Keys().Waiting())
	if got, err := q.PopFenced(ctx, fa, 5, time.Minute); !errors.Is(err, enroll.ErrFenced) || len(got) != 0 {
		t.Fatalf("stale pop: %v, %v; want fenced", got, err)
	}
	if after := zset(t, b, q.Keys().Waiting()); len(after) != len(before) {
		t.Fatalf("a refused pop moved tickets: %d waiting before, %d after", len(before), len(after))
	}
	d := enroll.Decision{RequestID: popped[0].ID, StudentID: popped[0].StudentID, CourseID: 1, Status: enroll.StatusRejected}
	if err := q.PreAck(ctx, fa, []enroll.Decision{d}); !errors.Is(err, enroll.ErrFenced) {
		t.Fatalf("stale pre-ack: %v", err)
	}
	if err := q.AckFenced(ctx, fa, []enroll.Decision{d}); !errors.Is(err, enroll.ErrFenced) {
		t.Fatalf("stale ack: %v", err)
	}
	if _, err := q.RequeueFenced(ctx, fa, []int64{popped[1].ID}); !errors.Is(err, enroll.ErrFenced) {
		t.Fatalf("stale requeue: %v", err)
	}
	st, _ := q.Stats(ctx)
	if st.Inflight != 2 || st.Pending != 10 {
		t.Fatalf("after refused steps: %+v, want 2 in flight of 10 pending", st)
	}
	// The current leader settles them.
	if err := q.PreAck(ctx, fb, []enroll.Decision{d}); err != nil {
		t.Fatal(err)
	}
	if err := q.AckFenced(ctx, fb, []enroll.Decision{d}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.RequeueFenced(ctx, fb, []int64{popped[1].ID}); err != nil || n != 1 {
		t.Fatalf("requeue by b: %d, %v", n, err)
	}
	if got, err := q.PopFenced(ctx, fb, 1, time.Minute); err != nil || len(got) != 1 || got[0].ID != popped[1].ID {
		t.Fatalf("b pops the head again: %v, %v, want request %d", got, err, popped[1].ID)
	}
}

// TestSettleOnce: a request's claim on the seat hint is settled exactly
// once, whichever of pre-ack, cancel and ack comes first; a pre-ack replay
// changes nothing; a request pre-acked as enrolled and decided rejected
// later (its commit failed, it was decided again) gets its seat back.
func TestSettleOnce(t *testing.T) {
	q, b := setup(t)
	ctx := b.ctx
	q.RateLimit = 0
	seedSeats(t, q, map[int64]int{1: 10})
	hint := func() (int64, int64) {
		h, _, _ := q.SeatHint(ctx, 1)
		p, _ := b.rdb.HGet(ctx, q.Keys().PCount(), "1").Int64()
		return h, p
	}
	var ids []int64
	for s := int64(1); s <= 4; s++ {
		a, err := q.Admit(ctx, s, 1)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.RequestID)
	}
	if h, p := hint(); h != 6 || p != 4 {
		t.Fatalf("after 4 admissions: hint %d pending %d, want 6, 4", h, p)
	}
	rs, err := q.Pop(ctx, 3, time.Minute)
	if err != nil || len(rs) != 3 {
		t.Fatal(rs, err)
	}
	dec := func(i int, st enroll.Status) enroll.Decision {
		return enroll.Decision{RequestID: ids[i], StudentID: int64(i + 1), CourseID: 1, Status: st}
	}
	ds := []enroll.Decision{dec(0, enroll.StatusEnrolled), dec(1, enroll.StatusRejected), dec(2, enroll.StatusEnrolled)}
	for range 2 { // a replay changes nothing
		if err := q.PreAck(ctx, 0, ds); err != nil {
			t.Fatal(err)
		}
		if h, p := hint(); h != 7 || p != 1 {
			t.Fatalf("after pre-ack: hint %d pending %d, want 7 (the rejection's seat back), 1", h, p)
		}
	}
	// Request 3's commit failed; decided again it is rejected.
	if err := q.PreAck(ctx, 0, []enroll.Decision{dec(2, enroll.StatusRejected)}); err != nil {
		t.Fatal(err)
	}
	if h, p := hint(); h != 8 || p != 1 {
		t.Fatalf("re-decided as rejected: hint %d pending %d, want 8, 1", h, p)
	}
	if err := q.Ack(ctx, []enroll.Decision{ds[0], ds[1], dec(2, enroll.StatusRejected)}); err != nil {
		t.Fatal(err)
	}
	if h, p := hint(); h != 8 || p != 1 {
		t.Fatalf("after ack of pre-acked: hint %d pending %d, want unchanged 8, 1", h, p)
	}
	// Cancellation settles at once; its ack does not again.
	r, err := q.Cancel(ctx, ids[3], 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h, p := hint(); h != 9 || p != 0 {
		t.Fatalf("after cancel: hint %d pending %d, want 9, 0", h, p)
	}
	if err := q.Ack(ctx, []enroll.Decision{{RequestID: r.ID, StudentID: 4, CourseID: 1, Status: enroll.StatusCancelled}}); err != nil {
		t.Fatal(err)
	}
	if h, p := hint(); h != 9 || p != 0 {
		t.Fatalf("after the cancellation's ack: hint %d pending %d, want 9, 0", h, p)
	}
	if n, _ := b.rdb.HLen(ctx, q.Keys().PreAck()).Result(); n != 0 {
		t.Fatalf("pre-ack records left after the acks: %d", n)
	}
}

// TestAckAfterDropDoesNotResurrect: a drop that reaches Redis between a
// batch's commit and its ack marks the request, and the ack leaves the
// course out of the student's enrolled hint (seam 1).
func TestAckAfterDropDoesNotResurrect(t *testing.T) {
	q, b := setup(t)
	ctx := b.ctx
	q.RateLimit = 0
	seedSeats(t, q, map[int64]int{1: 10})
	a, err := q.Admit(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Pop(ctx, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	d := enroll.Decision{RequestID: a.RequestID, StudentID: 1, CourseID: 1, Status: enroll.StatusEnrolled}
	if err := q.PreAck(ctx, 0, []enroll.Decision{d}); err != nil {
		t.Fatal(err)
	}
	// committed; the student drops before the ack runs
	if err := q.Dropping(ctx, enroll.DropHint{StudentID: 1, CourseID: 1, RequestID: a.RequestID, SeatsFreed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, []enroll.Decision{d}); err != nil {
		t.Fatal(err)
	}
	if in, _ := b.rdb.SIsMember(ctx, q.Keys().Enrolled(1), 1).Result(); in {
		t.Fatal("the late ack put the dropped course back into the enrolled hint")
	}
	if _, err := q.Admit(ctx, 1, 1); err != nil {
		t.Fatalf("admission after the drop: %v", err)
	}
	if n, _ := b.rdb.HLen(ctx, q.Keys().DroppedReqs()).Result(); n != 0 {
		t.Fatalf("drop marks left: %d", n)
	}
}

// TestIdempotentAdmission: a retry under the same key gets the original
// answer and changes nothing, for an admission and for a sold-out refusal.
func TestIdempotentAdmission(t *testing.T) {
	q, b := setup(t)
	ctx := b.ctx
	q.RateLimit = 0
	seedSeats(t, q, map[int64]int{1: 1, 2: 0})
	first, err := q.AdmitKeyed(ctx, 1, 1, Limit{}, "k-1")
	if err != nil || first.Replayed {
		t.Fatalf("first: %+v, %v", first, err)
	}
	again, err := q.AdmitKeyed(ctx, 1, 1, Limit{}, "k-1")
	if err != nil || !again.Replayed || again.RequestID != first.RequestID || again.Ahead != first.Ahead {
		t.Fatalf("retry: %+v, %v; want the original %+v, replayed", again, err, first)
	}
	st, _ := q.Stats(ctx)
	if st.Pending != 1 || st.Counters["admitted"] != 1 {
		t.Fatalf("after the retry: %+v, want one request", st)
	}
	if _, err := q.AdmitKeyed(ctx, 1, 1, Limit{}, "k-2"); !errors.As(err, new(*enroll.AlreadyQueuedError)) {
		t.Fatalf("another key: %v, want already queued", err)
	}
	if _, err := q.AdmitKeyed(ctx, 2, 2, Limit{}, "k-3"); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatalf("sold out: %v", err)
	}
	// A seat appears; the retry still gets the original refusal.
	seedSeats(t, q, map[int64]int{2: 5})
	r, err := q.AdmitKeyed(ctx, 2, 2, Limit{}, "k-3")
	if !errors.Is(err, enroll.ErrSoldOut) || !r.Replayed {
		t.Fatalf("retry of a refusal: %+v, %v; want the original sold_out, replayed", r, err)
	}
}

// TestRefusalMarks: a "sold out" answer records the ticket counter's value
// and Redis' time for its section; later answers move it.
func TestRefusalMarks(t *testing.T) {
	q, b := setup(t)
	ctx := b.ctx
	q.RateLimit = 0
	seedSeats(t, q, map[int64]int{1: 2, 2: 5})
	for s := int64(1); s <= 2; s++ {
		if _, err := q.Admit(ctx, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Admit(ctx, 3, 2); err != nil {
		t.Fatal(err)
	}
	t0, _ := b.rdb.Time(ctx).Result()
	if _, err := q.Admit(ctx, 4, 1); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatalf("want sold out: %v", err)
	}
	ms, err := q.Refusals(ctx)
	if err != nil || len(ms) != 1 {
		t.Fatalf("marks %+v, %v; want one", ms, err)
	}
	m := ms[0]
	if m.CourseID != 1 || m.Ticket != 3 || m.At.Before(t0.Add(-time.Millisecond)) || m.At.After(t0.Add(time.Second)) {
		t.Fatalf("mark %+v, want course 1 at ticket counter 3 near %v", m, t0)
	}
	if _, err := q.Admit(ctx, 5, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Admit(ctx, 6, 1); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatal(err)
	}
	ms, _ = q.Refusals(ctx)
	if len(ms) != 1 || ms[0].Ticket != 4 || !ms[0].At.After(m.At) {
		t.Fatalf("moved mark %+v, want ticket counter 4 later than %v", ms, m.At)
	}
}
