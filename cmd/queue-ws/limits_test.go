package main

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/enrollq/enrollq/internal/positions"
)

// TestSocketCapPerStudent: 200 sockets on one ws token: at most the cap
// (5) are kept, every other one is closed at once with 4008; closing a kept
// socket frees its slot.
func TestSocketCapPerStudent(t *testing.T) {
	f := newFixture(t, 1, 1)
	ts := startServer(t, f, options{Tick: time.Hour})
	tok := f.wsToken(1)
	const n = 200
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, _, err := dialer.Dial(wsURL(ts.url, tok), nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	var (
		mu              sync.Mutex
		kept, refused   []*websocket.Conn
		otherwiseClosed []error
		wg              sync.WaitGroup
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue // a frame (discovery finds the pending request)
				}
				mu.Lock()
				defer mu.Unlock()
				var ce *websocket.CloseError
				var ne net.Error
				switch {
				case errors.As(err, &ce) && ce.Code == positions.CloseTooManySessions:
					refused = append(refused, c)
				case errors.As(err, &ne) && ne.Timeout():
					kept = append(kept, c)
				default:
					otherwiseClosed = append(otherwiseClosed, err)
				}
				return
			}
		}()
	}
	wg.Wait()
	if len(kept) != ts.srv.opts.MaxSocketsPerStudent || len(refused) != n-len(kept) || len(otherwiseClosed) > 0 {
		t.Fatalf("kept %d, refused with %d: %d, otherwise ended: %v; want %d kept, the rest refused",
			len(kept), positions.CloseTooManySessions, len(refused), otherwiseClosed, ts.srv.opts.MaxSocketsPerStudent)
	}
	if h := ts.srv.sockets.held(1); h != len(kept) {
		t.Fatalf("the instance counts %d sockets for the student, want %d", h, len(kept))
	}
	// Closing a kept socket gives its slot back.
	kept[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.sockets.held(1) >= ts.srv.opts.MaxSocketsPerStudent {
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed socket was not released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, _, err := dialer.Dial(wsURL(ts.url, tok), nil)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err = c.ReadMessage(); err != nil {
			break
		}
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a socket after one was closed: %v, want it kept", err)
	}
}

// TestMessageBudget: a flood of watch frames closes the session with 4009;
// a client within the budget is never closed.
func TestMessageBudget(t *testing.T) {
	f := newFixture(t, 2, 1)
	ts := startServer(t, f, options{Tick: time.Hour})

	polite, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer polite.Close()
	for range 10 { // within the burst
		if err := polite.WriteMessage(websocket.TextMessage, []byte(`{"type":"watch","request_id":987654321}`)); err != nil {
			t.Fatal(err)
		}
	}

	c, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 500; i++ {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"watch","request_id":123456789}`)); err != nil {
			break // closed already
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != positions.CloseTooManyMessages {
			t.Fatalf("flooding session ended with %v, want close %d", err, positions.CloseTooManyMessages)
		}
		break
	}

	_ = polite.SetReadDeadline(time.Now().Add(time.Second))
	for {
		_, _, err := polite.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("a session within its budget ended: %v", err)
		}
		break
	}
}

func TestMsgBucket(t *testing.T) {
	b := newMsgBucket(10, 20)
	now := time.Unix(0, 0)
	for i := range 20 {
		if !b.allow(now) {
			t.Fatalf("message %d of the burst refused", i)
		}
	}
	if b.allow(now) {
		t.Fatal("the 21st message at once was allowed")
	}
	now = now.Add(100 * time.Millisecond) // one token back
	if !b.allow(now) || b.allow(now) {
		t.Fatal("want exactly one message after 100 ms")
	}
	now = now.Add(time.Hour) // refilled to the burst, not beyond
	for range 20 {
		if !b.allow(now) {
			t.Fatal("refill short of the burst")
		}
	}
	if b.allow(now) {
		t.Fatal("refilled beyond the burst")
	}
}

// TestSlowLorisCutOff: a client sending its request headers one byte a
// second is disconnected within the header timeout.
func TestSlowLorisCutOff(t *testing.T) {
	f := newFixture(t, 1, 1)
	ts := startServer(t, f, options{Tick: time.Hour})
	addr := strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws://"), "/ws")
	slowLoris(t, addr, wsReadHeaderTimeout)
}

// slowLoris sends a request line and headers one byte a second to addr and
// fails unless the server closes the connection within limit (+1 s).
func slowLoris(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
	start := time.Now()
	buf := make([]byte, 512)
	for i := 0; ; i++ {
		if _, err := c.Write([]byte{req[i%len(req)]}); err != nil {
			break // reset: cut off
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(buf)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			break // EOF or reset: cut off (a 408 answer is read as data first)
		}
		if time.Since(start) > limit+3*time.Second {
			t.Fatalf("still connected after %v (header timeout %v)", time.Since(start).Round(time.Millisecond), limit)
		}
	}
	if took := time.Since(start); took > limit+1500*time.Millisecond {
		t.Fatalf("cut off after %v, want within the header timeout %v", took.Round(time.Millisecond), limit)
	}
}

// TestSocketOutlivesServerTimeouts: the http.Server's read and write
// timeouts bound the handshake only; an upgraded socket still reads and
// writes after both have passed.
func TestSocketOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, 1)
	ts := startServer(t, f, options{Tick: time.Hour})
	c, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(max(wsReadTimeout, wsWriteTimeout) + time.Second)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"watch","request_id":987654321}`)); err != nil {
		t.Fatal(err)
	}
	for {
		fr, err := readFrame(t, c, 5*time.Second)
		if err != nil {
			t.Fatalf("after the server timeouts: %v", err)
		}
		if fr.Type == "error" && fr.Code == positions.ErrCodeNotFound {
			return
		}
	}
}
