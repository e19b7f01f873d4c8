package positions

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

func TestFrames(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want map[string]any
	}{
		{"position", appendPosition(nil, 42, 7, 12, 1700000000123),
			map[string]any{"type": "position", "request_id": 42.0, "position": 7.0, "ahead": 6.0, "eta_seconds": 12.0, "ts": 1700000000123.0}},
		{"position without eta", appendPosition(nil, 1, 1, -1, 5),
			map[string]any{"type": "position", "request_id": 1.0, "position": 1.0, "ahead": 0.0, "ts": 5.0}},
		{"result", appendResult(nil, 9, "rejected", "sold_out", 5),
			map[string]any{"type": "result", "request_id": 9.0, "status": "rejected", "reason": "sold_out", "position": 0.0, "ts": 5.0}},
		{"result escapes", appendResult(nil, 9, "x\"\\\n\x01", "한국어\xff", 5),
			map[string]any{"type": "result", "request_id": 9.0, "status": "x\"\\\n\x01", "reason": "한국어\ufffd", "position": 0.0, "ts": 5.0}},
		{"error", appendError(nil, 3, ErrCodeForbidden),
			map[string]any{"type": "error", "request_id": 3.0, "code": "forbidden",
				"message": errorMessages[ErrCodeForbidden][0], "message_en": errorMessages[ErrCodeForbidden][1]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			if err := json.Unmarshal(tc.b, &got); err != nil {
				t.Fatalf("invalid JSON %q: %v", tc.b, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("frame %s (-want +got):\n%s", tc.b, diff)
			}
		})
	}
}

func TestArenaFramesDoNotOverlap(t *testing.T) {
	var a arena
	var frames [][]byte
	for i := range 5000 {
		frames = append(frames, a.keep(appendPosition(a.next(maxPositionFrame), int64(i), int64(i), -1, 1)))
	}
	for i, f := range frames {
		if want := appendPosition(nil, int64(i), int64(i), -1, 1); string(f) != string(want) {
			t.Fatalf("frame %d = %q, want %q", i, f, want)
		}
		if cap(f) != len(f) {
			t.Fatalf("frame %d has spare capacity %d", i, cap(f)-len(f))
		}
	}
}

func TestRateMeterAndETA(t *testing.T) {
	r := rateMeter{tau: 5 * time.Second}
	t0 := time.Unix(1000, 0)
	if got := r.observe(0, t0); got != 0 {
		t.Fatalf("first reading rate = %v, want 0 (unknown)", got)
	}
	if got := r.observe(100, t0.Add(time.Second)); got != 100 {
		t.Fatalf("rate after 100 in 1s = %v, want 100", got)
	}
	got := r.observe(100, t0.Add(2*time.Second)) // stalled for a second
	if got <= 0 || got >= 100 {
		t.Fatalf("rate after a stall = %v, want between 0 and 100", got)
	}
	if got := r.observe(50, t0.Add(3*time.Second)); got != 0 {
		t.Fatalf("rate after the counter went back = %v, want 0 (start over)", got)
	}
	if got := eta(0, 0); got != 0 {
		t.Errorf("eta(0) = %d, want 0", got)
	}
	if got := eta(10, 0); got != -1 {
		t.Errorf("eta with unknown rate = %d, want -1", got)
	}
	if got := eta(10, 3); got != 4 {
		t.Errorf("eta(10 ahead at 3/s) = %d, want 4", got)
	}
}

// tab is one watching session of the exactness test.
type tab struct {
	sink *recSink
	s    *Session
	id   int64
}

// TestPositionsExactAndMonotonic drives the real queue through admissions,
// in-order and out-of-order acks, cancellations and requeues, ticking after
// every step: each watching session's latest position equals the number of
// pending requests below its ticket plus one, and never increases; every
// decided request produces exactly one result per session.
func TestPositionsExactAndMonotonic(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	e := New(Config{Line: b.q, Redis: b.rdb, Keys: b.q.Keys(), Tick: time.Hour})
	runEngine(t, e)
	waitSubscribed(t, e)

	rng := rand.New(rand.NewPCG(1, 2))
	var tabs []*tab
	decided := map[int64]enroll.Status{}
	student := int64(0)
	admit := func(n int) {
		for range n {
			student++
			id := b.admit(t, student, 1+student%5)
			for k := 0; k < 1+int(student%3/2); k++ { // every third student has two tabs
				tb := &tab{sink: &recSink{}, id: id}
				tb.s = e.Open(student, tb.sink)
				tb.s.Watch(b.ctx, id)
				tabs = append(tabs, tb)
			}
		}
	}
	check := func(step string) {
		t.Helper()
		if err := e.Tick(b.ctx); err != nil {
			t.Fatal(err)
		}
		for _, tb := range tabs {
			ahead, pending := b.pendingAhead(t, tb.id)
			if !pending {
				continue
			}
			f, ok := tb.sink.lastPosition(tb.id)
			if !ok {
				t.Fatalf("%s: request %d: no position frame", step, tb.id)
			}
			if f.Position != ahead+1 || f.Ahead != ahead {
				t.Fatalf("%s: request %d: position %d ahead %d, want %d and %d (ZCOUNT of pending below)",
					step, tb.id, f.Position, f.Ahead, ahead+1, ahead)
			}
		}
	}
	record := func(ds []enroll.Decision) {
		for _, d := range ds {
			decided[d.RequestID] = d.Status
		}
	}

	admit(40)
	check("admitted 40")
	for step := 0; step < 60; step++ {
		switch op := rng.IntN(6); op {
		case 0: // in-order batch
			rs, err := b.q.Pop(b.ctx, 1+rng.IntN(4), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			record(b.fakeDecide(t, rs))
		case 1: // out-of-order: ack the later half first
			rs, err := b.q.Pop(b.ctx, 6, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			h := len(rs) / 2
			record(b.fakeDecide(t, rs[h:]))
			check("acked later half")
			record(b.fakeDecide(t, rs[:h]))
		case 2: // cancel a random waiting request (decided as cancelled)
			ids, err := b.rdb.ZRange(b.ctx, b.q.Keys().Waiting(), 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) == 0 {
				continue
			}
			id, err := strconv.ParseInt(ids[rng.IntN(len(ids))], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			r, _, err := b.q.Lookup(b.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			cr, err := b.q.Cancel(b.ctx, id, r.StudentID, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			record(b.fakeDecide(t, []enroll.Request{cr}))
		case 3: // pop and requeue (a drainer gave up): nobody moves
			rs, err := b.q.Pop(b.ctx, 3, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			check("popped")
			ids := make([]int64, len(rs))
			for i, r := range rs {
				ids[i] = r.ID
			}
			if _, err := b.q.Requeue(b.ctx, ids); err != nil {
				t.Fatal(err)
			}
		case 4:
			admit(1 + rng.IntN(3))
		case 5: // a request in the middle decided out of order (recovered batch)
			rs, err := b.q.Pop(b.ctx, 8, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) > 2 {
				record(b.fakeDecide(t, rs[len(rs)-1:]))
				check("acked last of batch")
				if _, err := b.q.Requeue(b.ctx, idsOf(rs[:len(rs)-1])); err != nil {
					t.Fatal(err)
				}
			} else if len(rs) > 0 {
				record(b.fakeDecide(t, rs))
			}
		}
		check("step")
	}
	// Drain the rest.
	for {
		rs, err := b.q.Pop(b.ctx, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		record(b.fakeDecide(t, rs))
		check("drain")
	}

	eventually(t, 10*time.Second, "every result", func() bool {
		for _, tb := range tabs {
			if len(tb.sink.results(tb.id)) == 0 {
				return false
			}
		}
		return true
	})
	// A replayed ack publishes its events again: still one result each.
	var replay []queue.ResultEvent
	for id, st := range decided {
		replay = append(replay, queue.ResultEvent{RequestID: id, Status: string(st)})
	}
	payload, _ := json.Marshal(replay)
	e.HandleEvents(payload)
	for _, tb := range tabs {
		fs := tb.sink.of(tb.id)
		rs := tb.sink.results(tb.id)
		if len(rs) != 1 {
			t.Fatalf("request %d: %d results, want exactly 1", tb.id, len(rs))
		}
		if rs[0].Status != string(decided[tb.id]) {
			t.Errorf("request %d: result %q, want %q", tb.id, rs[0].Status, decided[tb.id])
		}
		last := int64(1 << 62)
		for i, f := range fs {
			switch f.Type {
			case "position":
				if f.Position > last {
					t.Fatalf("request %d: position rose from %d to %d (frame %d)", tb.id, last, f.Position, i)
				}
				last = f.Position
			case "result":
				if i != len(fs)-1 {
					t.Fatalf("request %d: frames after the result: %+v", tb.id, fs[i+1:])
				}
			}
		}
		tb.s.Close()
	}
	if st := e.Stats(); st.Sessions != 0 || st.Watches != 0 {
		t.Errorf("after closing every session: %d sessions, %d watches; want 0, 0", st.Sessions, st.Watches)
	}
}

func idsOf(rs []enroll.Request) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// TestWatchOwnershipAndDecided checks watches of requests already decided
// (answered from MariaDB at once), of another student's requests (refused,
// pending or decided) and of unknown ids.
func TestWatchOwnershipAndDecided(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	withDB(t, b, 3)
	e := New(Config{Line: b.q, Decisions: b.store, Tick: time.Hour})

	r1 := b.admit(t, 1, 1)
	r2 := b.admit(t, 2, 1)
	rs, err := b.q.Pop(b.ctx, 1, time.Minute)
	if err != nil || len(rs) != 1 || rs[0].ID != r1 {
		t.Fatalf("pop = %v, %v; want request %d", rs, err, r1)
	}
	ds, err := b.store.DecideBatch(b.ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.q.Ack(b.ctx, ds); err != nil {
		t.Fatal(err)
	}

	own := &recSink{}
	s1 := e.Open(1, own)
	s1.Watch(b.ctx, r1, r1, r2, 999999, -4)
	got := own.all()
	want := []frame{
		{Type: "result", RequestID: r1, Status: "enrolled"},
		{Type: "error", RequestID: r2, Code: ErrCodeForbidden},
		{Type: "error", RequestID: 999999, Code: ErrCodeNotFound},
		{Type: "error", RequestID: -4, Code: ErrCodeBadRequest},
	}
	if diff := cmp.Diff(want, got, cmpFrames); diff != "" {
		t.Errorf("frames of student 1 (-want +got):\n%s", diff)
	}

	other := &recSink{}
	s3 := e.Open(3, other)
	s3.Watch(b.ctx, r1, r2)
	want = []frame{
		{Type: "error", RequestID: r1, Code: ErrCodeForbidden},
		{Type: "error", RequestID: r2, Code: ErrCodeForbidden},
	}
	if diff := cmp.Diff(want, other.all(), cmpFrames); diff != "" {
		t.Errorf("frames of student 3 (-want +got):\n%s", diff)
	}
	// Nothing of r2 ever reaches student 3, even when it is decided.
	if err := e.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	e.HandleEvents([]byte(`[{"request_id":` + itoa(r2) + `,"student_id":2,"status":"enrolled"}]`))
	if n := len(other.all()); n != 2 {
		t.Errorf("student 3 got %d frames, want only the 2 refusals: %+v", n, other.all())
	}
	if st := e.Stats(); st.Watches != 0 {
		t.Errorf("watches = %d, want 0", st.Watches)
	}
	s1.Close()
	s3.Close()
}

var cmpFrames = cmp.Transformer("essentials", func(f frame) frame {
	return frame{Type: f.Type, RequestID: f.RequestID, Status: f.Status, Reason: f.Reason, Code: f.Code}
})

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestSafetyNet loses the result event (no subscription) and checks that
// the watermark-driven lookup in MariaDB delivers it, once.
func TestSafetyNet(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	withDB(t, b, 2)
	e := New(Config{Line: b.q, Decisions: b.store, Tick: time.Hour, SafetyGrace: 2})
	r1 := b.admit(t, 1, 2)
	r2 := b.admit(t, 2, 2)
	sink := &recSink{}
	s := e.Open(1, sink)
	s.Watch(b.ctx, r1)
	sink2 := &recSink{}
	s2 := e.Open(2, sink2)
	s2.Watch(b.ctx, r2)

	rs, err := b.q.Pop(b.ctx, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.store.DecideBatch(b.ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.q.Ack(b.ctx, ds); err != nil { // published to nobody
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.Tick(b.ctx); err != nil {
			t.Fatal(err)
		}
		n, err := e.ResolveSuspects(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[i == 2]; n != want {
			t.Fatalf("tick %d: safety net delivered %d, want %d (grace of 2 ticks)", i+1, n, want)
		}
	}
	if got := sink.results(r1); len(got) != 1 || got[0].Status != "enrolled" {
		t.Fatalf("results = %+v, want one enrolled", got)
	}
	// The late event changes nothing.
	e.HandleEvents([]byte(`[{"request_id":` + itoa(r1) + `,"student_id":1,"status":"enrolled"}]`))
	if got := sink.results(r1); len(got) != 1 {
		t.Fatalf("results after a late event = %d, want 1", len(got))
	}
	if f, ok := sink2.lastPosition(r2); !ok || f.Position != 1 {
		t.Fatalf("second request position = %+v, want 1", f)
	}
	if st := e.Stats(); st.SafetyNetResults != 1 || st.UnknownEvents != 1 {
		t.Errorf("stats = %+v, want 1 safety-net result and 1 unknown event", st)
	}
	s.Close()
	s2.Close()
}

// blockingLine answers Lookup at once and ReadWatermark when released.
type blockingLine struct {
	reading chan struct{}
	release chan queue.Watermark
	ahead   int64
}

func (l *blockingLine) ReadWatermark(ctx context.Context, _ int) (queue.Watermark, error) {
	l.reading <- struct{}{}
	return <-l.release, nil
}

func (l *blockingLine) Lookup(_ context.Context, id int64) (enroll.Request, int64, error) {
	return enroll.Request{ID: id, Ticket: id, StudentID: 7}, l.ahead, nil
}

// TestNoStaleFrameAfterWatch: a tick whose read began before a watch was
// registered must not send that watcher anything (its value may be older
// than what the client saw on another instance), and later ticks are clamped
// by the fresh value from Lookup.
func TestNoStaleFrameAfterWatch(t *testing.T) {
	checkGoroutines(t)
	l := &blockingLine{reading: make(chan struct{}), release: make(chan queue.Watermark), ahead: 3}
	e := New(Config{Line: l, Tick: time.Hour})
	errc := make(chan error, 1)
	go func() { errc <- e.Tick(context.Background()) }()
	<-l.reading // the tick's read is under way

	sink := &recSink{}
	s := e.Open(7, sink)
	s.Watch(context.Background(), 100)                            // fresh: 3 ahead → position 4
	l.release <- queue.Watermark{Head: 90, Last: 120, Decided: 5} // older read: 10 ahead
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	pos := func() []int64 {
		var out []int64
		for _, f := range sink.of(100) {
			out = append(out, f.Position)
		}
		return out
	}
	if diff := cmp.Diff([]int64{4}, pos()); diff != "" {
		t.Fatalf("positions after the stale tick (-want +got):\n%s", diff)
	}
	for _, w := range []queue.Watermark{
		{Head: 95, Last: 130, Decided: 6},                    // 5 ahead, still above the fresh value: clamped to 4
		{Head: 97, Last: 130, Decided: 8, Done: []int64{98}}, // 3 - 1 = 2 ahead → 3
	} {
		go func() { errc <- e.Tick(context.Background()) }()
		<-l.reading
		l.release <- w
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// The clamped 4 is not sent again (unchanged positions wait for the
	// heartbeat); the 3 is.
	if diff := cmp.Diff([]int64{4, 3}, pos()); diff != "" {
		t.Fatalf("positions (-want +got):\n%s", diff)
	}
	s.Close()
}

// TestSlowConsumer: refused positions are counted and skipped; a refused
// result closes the session with the slow-consumer code.
func TestSlowConsumer(t *testing.T) {
	checkGoroutines(t)
	l := &blockingLine{reading: make(chan struct{}, 1), release: make(chan queue.Watermark, 1), ahead: 1}
	e := New(Config{Line: l, Tick: time.Hour})
	sink := &recSink{refuse: "droppable"}
	s := e.Open(7, sink)
	s.Watch(context.Background(), 10)
	l.release <- queue.Watermark{Head: 9, Last: 10}
	if err := e.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.DroppedPositions != 2 || st.PositionFrames != 0 {
		t.Fatalf("stats = %+v, want 2 dropped positions", st)
	}
	sink.mu.Lock()
	sink.refuse = "all"
	sink.mu.Unlock()
	e.HandleEvents([]byte(`[{"request_id":10,"student_id":7,"status":"rejected","reason":"sold_out"}]`))
	if diff := cmp.Diff([]int{CloseSlowConsumer}, sink.closed); diff != "" {
		t.Fatalf("close codes (-want +got):\n%s", diff)
	}
	if st := e.Stats(); st.SlowClosed != 1 {
		t.Fatalf("slow closes = %d, want 1", st.SlowClosed)
	}
	s.Close()
}

// TestDiscovery: a session that names no request finds its pending ones.
func TestDiscovery(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	e := New(Config{Line: b.q, Redis: b.rdb, Keys: b.q.Keys(), Tick: time.Hour})
	var mine []int64
	for s := int64(1); s <= 50; s++ {
		id := b.admit(t, s, 1)
		if s%10 == 3 {
			mine = append(mine, id)
		}
	}
	mine = append(mine, b.admit(t, 3, 2), b.admit(t, 13, 3))
	sinks := map[int64]*recSink{}
	var sessions []*Session
	for _, st := range []int64{3, 13, 23, 33, 43, 99} {
		sinks[st] = &recSink{}
		s := e.Open(st, sinks[st])
		s.Discover()
		sessions = append(sessions, s)
	}
	n, err := e.DiscoverOnce(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(mine) {
		t.Fatalf("discovered %d watches, want %d", n, len(mine))
	}
	if err := e.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, sk := range sinks {
		for _, f := range sk.all() {
			if f.Type == "position" {
				got = append(got, f.RequestID)
				ahead, _ := b.pendingAhead(t, f.RequestID)
				if f.Ahead != ahead {
					t.Errorf("request %d: ahead %d, want %d", f.RequestID, f.Ahead, ahead)
				}
			}
		}
	}
	slices.Sort(got)
	slices.Sort(mine)
	if diff := cmp.Diff(mine, got); diff != "" {
		t.Errorf("requests with a position (-want +got):\n%s", diff)
	}
	for _, s := range sessions {
		s.Close()
	}
}

// TestEventsResubscribe kills the events connection: the engine subscribes
// again and keeps routing results.
func TestEventsResubscribe(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	name := dbtest.UniqueName("positions-events-")
	sub := redis.NewClient(&redis.Options{Addr: dbtest.RedisAddr(), ClientName: name})
	t.Cleanup(func() { sub.Close() })
	e := New(Config{Line: b.q, Redis: sub, Keys: b.q.Keys(), Tick: time.Hour})
	runEngine(t, e)
	waitSubscribed(t, e)
	r1 := b.admit(t, 1, 1)
	r2 := b.admit(t, 2, 1)
	sink := &recSink{}
	s := e.Open(1, sink)
	s.Watch(b.ctx, r1)
	sink2 := &recSink{}
	s2 := e.Open(2, sink2)
	s2.Watch(b.ctx, r2)

	// Kill the engine's connections (found by client name).
	list, err := b.rdb.ClientList(b.ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := b.rdb.Do(b.ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no connection named %s in CLIENT LIST", name)
	}
	eventually(t, 10*time.Second, "resubscription", func() bool {
		st := e.Stats()
		return st.PubSubReconnects >= 1 && st.Subscribed
	})
	rs, err := b.q.Pop(b.ctx, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b.fakeDecide(t, rs)
	eventually(t, 10*time.Second, "both results", func() bool {
		return len(sink.results(r1)) == 1 && len(sink2.results(r2)) == 1
	})
	s.Close()
	s2.Close()
}

// racyLine says a request is pending, but its decision is published while
// the Lookup is in flight, before the watch is registered.
type racyLine struct {
	e  *Engine
	ev queue.ResultEvent
}

func (l *racyLine) ReadWatermark(context.Context, int) (queue.Watermark, error) {
	return queue.Watermark{Head: 1, Last: 1}, nil
}

func (l *racyLine) Lookup(_ context.Context, id int64) (enroll.Request, int64, error) {
	l.e.deliver(l.ev) // nobody watches yet: must be remembered, not lost
	return enroll.Request{ID: id, Ticket: id, StudentID: l.ev.StudentID}, 2, nil
}

// TestResultBetweenLookupAndWatch: a result published after the Lookup but
// before the watch is registered reaches the client at once, exactly once.
func TestResultBetweenLookupAndWatch(t *testing.T) {
	checkGoroutines(t)
	l := &racyLine{ev: queue.ResultEvent{RequestID: 55, StudentID: 7, CourseID: 1, Status: "enrolled"}}
	e := New(Config{Line: l, Tick: time.Hour})
	l.e = e
	sink := &recSink{}
	s := e.Open(7, sink)
	s.Watch(context.Background(), 55)
	res := sink.results(55)
	if len(res) != 1 || res[0].Status != "enrolled" {
		t.Fatalf("results = %+v, want one enrolled", res)
	}
	// A late duplicate of the event changes nothing.
	e.deliver(l.ev)
	if n := len(sink.results(55)); n != 1 {
		t.Fatalf("%d results after a duplicate event", n)
	}
	// Another student's watch of the same id gets no result from the cache.
	other := &recSink{}
	s2 := e.Open(8, other)
	l.ev.StudentID = 7
	s2.Watch(context.Background(), 55)
	if n := len(other.results(55)); n != 0 {
		t.Fatalf("another student received the result")
	}
	s.Close()
	s2.Close()
}
