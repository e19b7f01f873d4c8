package positions

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

// TestAwaitDraw: sessions that sent {"type":"draw"} get one "opened" frame
// when the opened notice is published (over the real subscription), the
// others none; a session asking after the window opened gets it at once; a
// closed session is forgotten.
func TestAwaitDraw(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	if err := b.q.SetOpen(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	e := New(Config{Line: b.q, Redis: b.rdb, Keys: b.q.Keys(), Tick: time.Hour})
	ctx, stop := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() { e.RunEvents(ctx); close(done) }()
	defer func() { stop(); <-done }()
	waitFor(t, func() bool { return e.Stats().Subscribed })

	sinks := []*recSink{{}, {}, {}, {}}
	ss := make([]*Session, len(sinks))
	for i, sk := range sinks {
		ss[i] = e.Open(int64(i+1), sk)
	}
	ss[0].HandleMessage(b.ctx, []byte(`{"type":"draw"}`))
	ss[0].HandleMessage(b.ctx, []byte(`{"type":"draw"}`)) // twice: still one frame
	ss[1].HandleMessage(b.ctx, []byte(`{"type":"draw"}`))
	ss[3].HandleMessage(b.ctx, []byte(`{"type":"draw"}`))
	ss[3].Close()
	if n := e.Stats().DrawWaiters; n != 2 {
		t.Fatalf("draw waiters %d, want 2 (the closed one forgotten)", n)
	}
	for _, sk := range sinks {
		if len(sk.all()) != 0 {
			t.Fatalf("a frame before the opening: %v", sk.all())
		}
	}
	if err := b.q.SetOpen(b.ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := b.q.PublishOpened(b.ctx, 9000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.Stats().OpenedFrames == 2 })
	for i, want := range []int{1, 1, 0, 0} {
		n := 0
		for _, f := range sinks[i].all() {
			if f.Type == "opened" {
				n++
			}
		}
		if n != want {
			t.Errorf("session %d: %d opened frames, want %d", i+1, n, want)
		}
	}
	var spread struct {
		Students int64 `json:"students"`
		SpreadMS int64 `json:"spread_ms"`
	}
	mustUnmarshal(t, sinks[0].raw[0], &spread)
	if spread.Students != 9000 || spread.SpreadMS != 3000 {
		t.Errorf("opened frame %s: want 9000 students spread over 3000 ms", sinks[0].raw[0])
	}
	// Asking once the window is open: the frame comes at once.
	ss[2].HandleMessage(b.ctx, []byte(`{"type":"draw"}`))
	if fs := sinks[2].all(); len(fs) != 1 || fs[0].Type != "opened" {
		t.Fatalf("late asker got %v, want one opened frame", fs)
	}
	if n := e.Stats().DrawWaiters; n != 0 {
		t.Fatalf("draw waiters %d after the opening, want 0", n)
	}
	for _, s := range ss {
		s.Close()
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// TestDrawnFrames: during a real draw, a waiting page gets a drawn frame for
// each of its student's entries (the request to watch, or the refusal), and
// nothing about other students' entries.
func TestDrawnFrames(t *testing.T) {
	checkGoroutines(t)
	b := setupLine(t)
	if err := b.q.Reconcile(b.ctx, []enroll.SeatCount{{ID: 5, Capacity: 0, Open: true}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.q.SetOpen(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := b.q.SetPrequeue(b.ctx, true); err != nil {
		t.Fatal(err)
	}
	for s := int64(1); s <= 3; s++ {
		for _, c := range []int64{1, 5} {
			if a, err := b.q.Admit(b.ctx, s, c); err != nil || !a.Prequeued {
				t.Fatalf("pre-queue %d/%d: %+v %v", s, c, a, err)
			}
		}
	}
	e := New(Config{Line: b.q, Redis: b.rdb, Keys: b.q.Keys(), Tick: time.Hour})
	ctx, stop := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() { e.RunEvents(ctx); close(done) }()
	defer func() { stop(); <-done }()
	waitFor(t, func() bool { return e.Stats().Subscribed })
	sink := &recSink{}
	s := e.Open(2, sink)
	defer s.Close()
	s.AwaitDraw(b.ctx)

	if _, err := b.q.Draw(b.ctx, 5, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.Stats().DrawnFrames == 2 })
	es, err := b.q.Prequeued(b.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{}
	for _, en := range es {
		if en.Ticket > 0 {
			want[en.CourseID] = fmt.Sprint("request ", en.Ticket)
		} else {
			want[en.CourseID] = "error " + queue.RefusalCode(en.Code)
		}
	}
	got := map[int64]string{}
	for _, raw := range sink.raw {
		var f struct {
			Type      string `json:"type"`
			CourseID  int64  `json:"course_id"`
			RequestID int64  `json:"request_id"`
			Error     string `json:"error"`
			TS        int64  `json:"ts"`
		}
		mustUnmarshal(t, raw, &f)
		if f.Type != "drawn" {
			t.Fatalf("frame %s before the tick", raw)
		}
		// Stamped when sent, so how late a page learns is measurable.
		if now := time.Now().UnixMilli(); f.TS <= 0 || f.TS > now || now-f.TS > 60_000 {
			t.Fatalf("drawn frame %s: ts %d, now %d", raw, f.TS, now)
		}
		if f.RequestID > 0 {
			got[f.CourseID] = fmt.Sprint("request ", f.RequestID)
		} else {
			got[f.CourseID] = "error " + f.Error
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || want[5] != "error sold_out" {
		t.Fatalf("drawn frames %v, want %v (course 5 sold out)", got, want)
	}
	// The admitted request is watched without the page asking: the next
	// tick sends its position.
	if w := e.Stats().Watches; w != 1 {
		t.Fatalf("%d watches after the drawn frames, want 1", w)
	}
	if err := e.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	var reqID int64
	for _, en := range es {
		if en.Ticket > 0 {
			reqID = en.Ticket
		}
	}
	var positions int
	for _, f := range sink.all() {
		if f.Type == "position" && f.RequestID == reqID && f.Position > 0 {
			positions++
		}
	}
	if positions != 1 {
		t.Fatalf("%d position frames after a tick, want 1: %v", positions, sink.all())
	}
	// Still waiting: the opened frame ends it.
	if err := b.q.PublishOpened(b.ctx, 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.Stats().OpenedFrames == 1 })
	if n := e.Stats().DrawWaiters; n != 0 {
		t.Fatalf("draw waiters %d, want 0", n)
	}
}

// TestFramePacing: a moving position is sent every tick near the front and
// less often further back; an unchanged one only at the heartbeat. Positions
// still never rise, and a frame always comes within heartbeatTicks.
func TestFramePacing(t *testing.T) {
	e := New(Config{Tick: time.Hour})
	const head = 1_000_000
	offsets := []int64{5, 500, 5_000, 50_000} // positions at the start
	sinks := map[int64]*recSink{}
	for _, off := range offsets {
		id := head + off - 1
		sinks[id] = &recSink{}
		s := e.Open(id, sinks[id])
		if !s.reserve(id, false) {
			t.Fatal("reserve failed")
		}
		e.register(s, id, id, 0)
	}
	at := time.Unix(1_700_000_000, 0)
	tick := 0
	apply := func(h int64) {
		tick++
		e.ApplyWatermark(queue.Watermark{Head: h, Last: head + 60_000, Decided: int64(tick)}, at.Add(time.Duration(tick)*time.Second))
	}
	// 40 ticks with the head moving by one each tick: every position changes.
	for i := range 40 {
		apply(head + int64(i))
	}
	// The request starting at position 5 is at the head after 5 ticks and
	// decided after that: 5 frames, one per tick.
	wantMoving := map[int64]int{5: 5, 500: 20, 5_000: 8, 50_000: 4}
	counts := func() map[int64]int {
		out := map[int64]int{}
		for _, off := range offsets {
			out[off] = len(sinks[head+off-1].all())
		}
		return out
	}
	got := counts()
	for off, want := range wantMoving {
		if got[off] != want {
			t.Errorf("moving line, request at %d: %d frames in 40 ticks, want %d", off, got[off], want)
		}
	}
	// 25 ticks with the line stalled: only heartbeats.
	for range 25 {
		apply(head + 39)
	}
	after := counts()
	for _, off := range offsets[1:] {
		if n := after[off] - got[off]; n != 2 && n != 3 {
			t.Errorf("stalled line, request at %d: %d frames in 25 ticks, want 2–3 (every %d)", off, n, heartbeatTicks)
		}
		var last int64
		for _, f := range sinks[head+off-1].all() {
			if last > 0 && f.Position > last {
				t.Fatalf("request at %d: position rose from %d to %d", off, last, f.Position)
			}
			last = f.Position
		}
	}
}
