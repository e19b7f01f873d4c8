package positions

import (
	"context"
	"encoding/json"
	"testing"
	"time"
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
