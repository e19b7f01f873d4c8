package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
)

type bundle struct {
	rdb *redis.Client
	ctx context.Context
}

func setup(t *testing.T) (*Redis, *bundle) {
	t.Helper()
	rdb, term := dbtest.Redis(t)
	q := New(rdb, term)
	ctx := context.Background()
	if err := q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	return q, &bundle{rdb: rdb, ctx: ctx}
}

func seedSeats(t *testing.T, q *Redis, seats map[int64]int) {
	t.Helper()
	var sc []enroll.SeatCount
	for id, n := range seats {
		sc = append(sc, enroll.SeatCount{ID: id, Capacity: n, Open: true})
	}
	if err := q.Reconcile(context.Background(), sc, 0); err != nil {
		t.Fatal(err)
	}
}

func zset(t *testing.T, b *bundle, key string) map[string]float64 {
	t.Helper()
	zs, err := b.rdb.ZRangeWithScores(b.ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, z := range zs {
		out[z.Member.(string)] = z.Score
	}
	return out
}

func hash(t *testing.T, b *bundle, key string) map[string]string {
	t.Helper()
	h, err := b.rdb.HGetAll(b.ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAdmit(t *testing.T) {
	q, b := setup(t)
	seedSeats(t, q, map[int64]int{10: 2, 20: 0})
	k := q.Keys()

	a1, err := q.Admit(b.ctx, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := q.Admit(b.ctx, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Admission{RequestID: 1, Ticket: 1}, a1); diff != "" {
		t.Errorf("first admission (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Admission{RequestID: 2, Ticket: 2, Ahead: 1}, a2); diff != "" {
		t.Errorf("second admission (-want +got):\n%s", diff)
	}
	// Third student: hint exhausted → sold out, nothing recorded.
	if _, err := q.Admit(b.ctx, 3, 10); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatalf("third admit err = %v, want sold out", err)
	}
	if _, err := q.Admit(b.ctx, 3, 20); !errors.Is(err, enroll.ErrSoldOut) {
		t.Fatalf("capacity 0 admit err = %v, want sold out", err)
	}
	// Duplicate: refused with the pending id, never re-queued.
	_, err = q.Admit(b.ctx, 1, 10)
	var aq *enroll.AlreadyQueuedError
	if !errors.As(err, &aq) || aq.RequestID != 1 {
		t.Fatalf("duplicate admit err = %v, want already queued #1", err)
	}
	if _, err := q.Admit(b.ctx, 1, 99); !errors.Is(err, enroll.ErrUnknownCourse) {
		t.Fatalf("unknown course err = %v", err)
	}

	if diff := cmp.Diff(map[string]float64{"1": 1, "2": 2}, zset(t, b, k.Waiting())); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"1": 1, "2": 2}, zset(t, b, k.Pending())); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"10": "0", "20": "0"}, hash(t, b, k.Seats())); diff != "" {
		t.Errorf("seats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"10": "2"}, hash(t, b, k.PCount())); diff != "" {
		t.Errorf("pcount (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"1:10": "1", "2:10": "2"}, hash(t, b, k.Dup())); diff != "" {
		t.Errorf("dup (-want +got):\n%s", diff)
	}
	if got := len(hash(t, b, k.Req())); got != 2 {
		t.Errorf("req records = %d, want 2", got)
	}
}

func TestAdmitWindowClosedAndRateLimit(t *testing.T) {
	q, b := setup(t)
	seedSeats(t, q, map[int64]int{1: 1000, 2: 1000, 3: 1000, 4: 1000})
	if err := q.SetOpen(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Admit(b.ctx, 1, 1); !errors.Is(err, enroll.ErrWindowClosed) {
		t.Fatalf("closed window err = %v", err)
	}
	if n, _ := b.rdb.ZCard(b.ctx, q.Keys().Waiting()).Result(); n != 0 {
		t.Fatalf("closed window queued %d requests", n)
	}
	if err := q.SetOpen(b.ctx, true); err != nil {
		t.Fatal(err)
	}
	q.RateLimit, q.RateWindow = 3, time.Minute
	for c := int64(1); c <= 3; c++ {
		if _, err := q.Admit(b.ctx, 7, c); err != nil {
			t.Fatalf("admit %d: %v", c, err)
		}
	}
	_, err := q.Admit(b.ctx, 7, 4)
	var rl *enroll.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("flood err = %v, want rate limited with retry-after", err)
	}
	if n, _ := b.rdb.ZCard(b.ctx, q.Keys().Waiting()).Result(); n != 3 {
		t.Fatalf("waiting = %d, want 3", n)
	}
}

func TestPopAckRequeue(t *testing.T) {
	q, b := setup(t)
	seedSeats(t, q, map[int64]int{10: 5})
	k := q.Keys()
	for s := int64(1); s <= 4; s++ {
		if _, err := q.Admit(b.ctx, s, 10); err != nil {
			t.Fatal(err)
		}
	}
	reqs, err := q.Pop(b.ctx, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range reqs {
		got = append(got, r.Ticket)
		if r.CourseID != 10 || r.StudentID != r.Ticket || r.AdmittedAt.IsZero() {
			t.Errorf("bad popped request %+v", r)
		}
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, got); diff != "" {
		t.Fatalf("popped tickets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"4"}, keysOf(zset(t, b, k.Waiting()))); diff != "" {
		t.Errorf("waiting after pop:\n%s", diff)
	}
	if n := len(zset(t, b, k.Pending())); n != 4 {
		t.Errorf("pending after pop = %d, want 4 (nothing leaves the books before ack)", n)
	}
	// Decide 1 enrolled, 2 rejected; 3 is left in flight and requeued.
	ds := []enroll.Decision{
		{RequestID: 1, StudentID: 1, CourseID: 10, Status: enroll.StatusEnrolled},
		{RequestID: 2, StudentID: 2, CourseID: 10, Status: enroll.StatusRejected, Reason: enroll.ReasonTimeConflict},
	}
	sub := b.rdb.Subscribe(b.ctx, k.Events())
	defer sub.Close()
	if _, err := sub.Receive(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(b.ctx, ds); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"request_id":1,"student_id":1,"course_id":10,"status":"enrolled"},{"request_id":2,"student_id":2,"course_id":10,"status":"rejected","reason":"time_conflict"}]`; msg.Payload != want {
		t.Errorf("event payload\n got %s\nwant %s", msg.Payload, want)
	}
	// Replaying the ack changes nothing.
	if err := q.Ack(b.ctx, ds); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Requeue(b.ctx, []int64{1, 3}); err != nil || n != 1 {
		t.Fatalf("requeue = %d, %v; want 1 (1 was acked)", n, err)
	}
	if diff := cmp.Diff(map[string]float64{"3": 3, "4": 4}, zset(t, b, k.Waiting())); diff != "" {
		t.Errorf("waiting after requeue (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"3": 3, "4": 4}, zset(t, b, k.Pending())); diff != "" {
		t.Errorf("pending after ack (-want +got):\n%s", diff)
	}
	if n := len(zset(t, b, k.Inflight())); n != 0 {
		t.Errorf("inflight = %d, want 0", n)
	}
	// Seats: 5 - 4 admitted + 1 given back by the rejection (once, despite the replay).
	if diff := cmp.Diff(map[string]string{"10": "2"}, hash(t, b, k.Seats())); diff != "" {
		t.Errorf("seats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"10": "2"}, hash(t, b, k.PCount())); diff != "" {
		t.Errorf("pcount (-want +got):\n%s", diff)
	}
	if ok, _ := b.rdb.SIsMember(b.ctx, k.Enrolled(1), "10").Result(); !ok {
		t.Error("enrolled hint missing for student 1")
	}
	if _, err := q.Admit(b.ctx, 1, 10); !errors.Is(err, enroll.ErrAlreadyEnrolled) {
		t.Errorf("re-admit of enrolled student err = %v", err)
	}
	// Student 2 was rejected: may try again.
	if _, err := q.Admit(b.ctx, 2, 10); err != nil {
		t.Errorf("re-admit of rejected student: %v", err)
	}
}

func TestInflightExpiredAndCancel(t *testing.T) {
	q, b := setup(t)
	seedSeats(t, q, map[int64]int{10: 50})
	for s := int64(1); s <= 3; s++ {
		if _, err := q.Admit(b.ctx, s, 10); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Pop(b.ctx, 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	exp, err := q.Inflight(b.ctx, true)
	if err != nil || len(exp) != 1 || exp[0].ID != 1 {
		t.Fatalf("expired = %+v, %v", exp, err)
	}
	// Cancel: foreign student refused, owner accepted, in-flight refused.
	if _, err := q.Cancel(b.ctx, 2, 3, time.Minute); !errors.Is(err, enroll.ErrForbidden) {
		t.Fatalf("foreign cancel err = %v", err)
	}
	if _, err := q.Cancel(b.ctx, 1, 1, time.Minute); !errors.Is(err, enroll.ErrTooLate) {
		t.Fatalf("in-flight cancel err = %v", err)
	}
	if _, err := q.Cancel(b.ctx, 99, 1, time.Minute); !errors.Is(err, enroll.ErrNotFound) {
		t.Fatalf("unknown cancel err = %v", err)
	}
	r, err := q.Cancel(b.ctx, 2, 2, time.Minute)
	if err != nil || !r.Cancelled || r.StudentID != 2 {
		t.Fatalf("cancel = %+v, %v", r, err)
	}
	// A recovered cancellation keeps its flag.
	if _, err := q.Requeue(b.ctx, []int64{2}); err != nil {
		t.Fatal(err)
	}
	popped, err := q.Pop(b.ctx, 5, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var flags []bool
	for _, p := range popped {
		flags = append(flags, p.Cancelled)
	}
	if diff := cmp.Diff([]bool{true, false}, flags); diff != "" {
		t.Errorf("cancel flags of popped 2,3 (-want +got):\n%s", diff)
	}
}

// TestWatermarkMatchesZCount checks the O(1) position formula against an
// exact ZCOUNT for every waiting ticket, through random admissions,
// cancellations, out-of-order acks and requeues; and that no position rises.
func TestWatermarkMatchesZCount(t *testing.T) {
	q, b := setup(t)
	seats := map[int64]int{}
	for c := int64(1); c <= 20; c++ {
		seats[c] = 1000
	}
	seedSeats(t, q, seats)
	rng := rand.New(rand.NewPCG(1, 2))
	owner := map[int64]int64{}
	last := map[int64]int64{}
	student := int64(0)
	for step := 0; step < 60; step++ {
		for i := 0; i < 30; i++ {
			student++
			a, err := q.Admit(b.ctx, student, int64(rng.IntN(20)+1))
			if err != nil {
				t.Fatal(err)
			}
			owner[a.RequestID] = student
		}
		// cancel a few random waiting requests
		waiting := keysOf(zset(t, b, q.Keys().Waiting()))
		for i := 0; i < 3 && len(waiting) > 0; i++ {
			id, _ := strconv.ParseInt(waiting[rng.IntN(len(waiting))], 10, 64)
			r, err := q.Cancel(b.ctx, id, owner[id], time.Minute)
			if err != nil {
				continue
			}
			if err := q.Ack(b.ctx, []enroll.Decision{{RequestID: r.ID, StudentID: r.StudentID, CourseID: r.CourseID, Status: enroll.StatusCancelled}}); err != nil {
				t.Fatal(err)
			}
		}
		// pop a batch, ack a random subset, requeue the rest
		popped, err := q.Pop(b.ctx, 25, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var ds []enroll.Decision
		var back []int64
		for _, p := range popped {
			if rng.IntN(4) == 0 {
				back = append(back, p.ID)
				continue
			}
			ds = append(ds, enroll.Decision{RequestID: p.ID, StudentID: p.StudentID, CourseID: p.CourseID, Status: enroll.StatusEnrolled})
		}
		if err := q.Ack(b.ctx, ds); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Requeue(b.ctx, back); err != nil {
			t.Fatal(err)
		}
		w, err := q.ReadWatermark(b.ctx, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keysOf(zset(t, b, q.Keys().Pending())) {
			id, _ := strconv.ParseInt(m, 10, 64)
			want, err := b.rdb.ZCount(b.ctx, q.Keys().Pending(), "-inf", "("+m).Result()
			if err != nil {
				t.Fatal(err)
			}
			got := w.Ahead(id)
			if got != want {
				t.Fatalf("step %d ticket %d: watermark ahead %d, ZCOUNT %d (head %d, done %v)", step, id, got, want, w.Head, w.Done)
			}
			if prev, ok := last[id]; ok && got > prev {
				t.Fatalf("step %d ticket %d: position rose from %d to %d", step, id, prev, got)
			}
			last[id] = got
		}
	}
}

func keysOf(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	// numeric order
	for i := 1; i < len(out); i++ {
		for j := i; j > 0; j-- {
			a, _ := strconv.Atoi(out[j-1])
			c, _ := strconv.Atoi(out[j])
			if a <= c {
				break
			}
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

// TestStatsAt: Stats says when Redis read the counters (its TIME), so a
// reader whose answer came late still divides by the right interval.
func TestStatsAt(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	q := New(rdb, term)
	ctx := context.Background()
	before := time.Now()
	a, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	b, err := q.Stats(ctx)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	// One host, one clock: Redis's TIME falls between our reads (TIME has
	// microseconds; allow that much).
	if a.At.Before(before.Add(-time.Millisecond)) || b.At.After(after.Add(time.Millisecond)) {
		t.Fatalf("Stats.At %v, %v outside [%v, %v]", a.At, b.At, before, after)
	}
	if d := b.At.Sub(a.At); d < 20*time.Millisecond {
		t.Fatalf("two reads 20 ms apart are %v apart by Stats.At", d)
	}
}
