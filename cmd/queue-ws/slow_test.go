package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/enrollq/enrollq/internal/positions"
)

// TestSlowClient: a client that stops reading loses position frames (counted,
// the session stays open) and, once a result no longer fits in its buffer,
// is closed with the slow-consumer code; on reconnect it reads every result
// from MariaDB.
func TestSlowClient(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 1, 8)
	ids := []int64{f.reqs[0].id}
	for course := int64(3); len(ids) < 7; course++ {
		a, err := f.q.Admit(f.ctx, 1, course)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.RequestID)
	}
	ts := startServerBuf(t, f, options{Tick: 5 * time.Millisecond, BufferSize: 16, WriteWait: 20 * time.Second}, 4096)

	small := *dialer
	small.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}
	c, _, err := small.Dial(wsURL(ts.url, f.wsToken(1), ids...), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not reading: the socket buffers fill, then melody's buffer. Drops
	// alone do not prove that (a writer starved of CPU also falls behind
	// for a moment); a stuck writer does: over a heartbeat and a half,
	// position frames keep being refused and none is accepted. Every
	// request must be watched too, or a result could arrive for a watch not
	// yet registered and be read from MariaDB later.
	eventually(t, 30*time.Second, "a stuck writer with every request watched", func() bool {
		a := ts.srv.eng.Stats()
		time.Sleep(1500 * time.Millisecond)
		b := ts.srv.eng.Stats()
		return b.Watches == int64(len(ids)) && b.DroppedPositions > a.DroppedPositions && b.PositionFrames == a.PositionFrames
	}, func() string { return fmt.Sprintf("engine: %+v", ts.srv.eng.Stats()) })
	if st := ts.srv.eng.Stats(); st.Sessions != 1 || st.SlowClosed != 0 {
		t.Fatalf("after drops: %+v; want the session open", st)
	}
	f.decide(t, 10) // seven results for a buffer with room for three
	eventually(t, 30*time.Second, "slow-consumer close", func() bool { return ts.srv.eng.Stats().SlowClosed == 1 },
		func() string { return fmt.Sprintf("engine: %+v", ts.srv.eng.Stats()) })

	results := map[int64]bool{}
	for {
		fr, err := readFrame(t, c, 10*time.Second)
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != positions.CloseSlowConsumer {
				t.Fatalf("read error %v, want close %d", err, positions.CloseSlowConsumer)
			}
			break
		}
		if fr.Type == "result" {
			results[fr.RequestID] = true
		}
	}
	if len(results) == len(ids) {
		t.Fatalf("got all %d results before the close; the buffer never overflowed", len(results))
	}
	// Reconnect: every result, at once, from the durable status.
	c2, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(1), ids...), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got := map[int64]string{}
	for len(got) < len(ids) {
		fr, err := readFrame(t, c2, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d results: %v", len(got), err)
		}
		if fr.Type != "result" {
			t.Fatalf("frame %+v, want only results", fr)
		}
		got[fr.RequestID] = fr.Status
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool, context ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, c := range context {
				t.Log(c())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
