package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/positions"
)

// TestTokens: refused tokens get an HTTP 401 with a JSON error before any
// upgrade; a valid token connects and watches only its own requests.
func TestTokens(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 3, 2)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	mine, theirs := f.reqs[0], f.reqs[1]

	valid := f.wsToken(mine.student)
	p, sig, _ := strings.Cut(valid, ".")
	swap := byte('A')
	if p[5] == 'A' {
		swap = 'B'
	}
	tampered := p[:5] + string(swap) + p[6:] + "." + sig
	expired := f.signer.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }).
		Issue(auth.Claims{Kind: auth.KindWS, Subject: mine.student}, time.Minute)
	student := f.signer.Issue(auth.Claims{Kind: auth.KindStudent, Subject: mine.student}, time.Hour)
	foreignKey := auth.NewSigner("another-secret").Issue(auth.Claims{Kind: auth.KindWS, Subject: mine.student}, time.Hour)

	for _, tc := range []struct {
		name, url  string
		status     int
		code       string
		websockets bool
	}{
		{"missing", wsURL(ts.url, "", mine.id), 401, "unauthorized", true},
		{"tampered", wsURL(ts.url, tampered, mine.id), 401, "token_invalid", true},
		{"other key", wsURL(ts.url, foreignKey, mine.id), 401, "token_invalid", true},
		{"expired", wsURL(ts.url, expired, mine.id), 401, "token_expired", true},
		{"student access token", wsURL(ts.url, student, mine.id), 401, "token_wrong_kind", true},
		{"bad request ids", wsURL(ts.url, valid) + "&requests=1,x", 400, "bad_request", true},
		{"plain http", wsURL(ts.url, valid, mine.id), 400, "websocket_required", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			if tc.websockets {
				c, r, err := dialer.Dial(tc.url, nil)
				if err == nil {
					c.Close()
					t.Fatal("connected; want the handshake refused")
				}
				if !errors.Is(err, websocket.ErrBadHandshake) {
					t.Fatalf("dial error %v, want a refused handshake", err)
				}
				resp = r
			} else {
				r, err := http.Get(strings.Replace(tc.url, "ws://", "http://", 1))
				if err != nil {
					t.Fatal(err)
				}
				resp = r
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct{ Code, Message, MessageEN string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d with code %q", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}

	// Valid token: own request watched, another student's refused, and
	// never delivered, not even its result.
	c, _, err := dialer.Dial(wsURL(ts.url, valid, mine.id, theirs.id), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]int{}
	decided, asked := false, false
	for {
		fr, err := readFrame(t, c, 5*time.Second)
		if err != nil {
			t.Fatalf("%v (seen %v)", err, seen)
		}
		if fr.RequestID == theirs.id {
			if fr.Type != "error" || fr.Code != positions.ErrCodeForbidden {
				t.Fatalf("frame about another student's request: %+v", fr)
			}
			seen["refused"]++
			if asked {
				break
			}
			continue
		}
		seen[fr.Type]++
		if !decided && seen["position"] >= 2 {
			f.decide(t, len(f.reqs)) // decides every request
			decided = true
		}
		if fr.Type == "result" {
			// Ask again for the other student's request, now decided: it is
			// refused too. Anything about it but that refusal fails the test.
			time.Sleep(300 * time.Millisecond)
			if err := c.WriteJSON(map[string]any{"type": "watch", "request_id": theirs.id}); err != nil {
				t.Fatal(err)
			}
			asked = true
		}
	}
	if seen["refused"] != 2 || seen["position"] < 2 || seen["result"] != 1 {
		t.Fatalf("frames seen: %v; want 2 refusals, ≥2 positions, 1 result", seen)
	}
}

// TestHealthAndMetrics checks /healthz and the Prometheus names.
func TestHealthAndMetrics(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 1, 1)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	base := strings.Replace(strings.TrimSuffix(ts.url, "/ws"), "ws://", "http://", 1)
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"enrollq_ws_connections", `enrollq_ws_frames_total{type="position"}`,
		`enrollq_ws_frames_total{type="result"}`, "enrollq_ws_dropped_positions_total", "enrollq_ws_tick_seconds_bucket"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestGracefulShutdown: every session gets a going-away close frame.
func TestGracefulShutdown(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 2, 1)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	var conns []*websocket.Conn
	for _, r := range f.reqs {
		c, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(r.student), r.id), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if fr, err := readFrame(t, c, 3*time.Second); err != nil || fr.Type != "position" {
			t.Fatalf("first frame %+v, %v", fr, err)
		}
		conns = append(conns, c)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- ts.srv.shutdown(ctx)
	}()
	defer func() {
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	for _, c := range conns {
		for {
			_, err := readFrame(t, c, 5*time.Second)
			if err == nil {
				continue
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != positions.CloseGoingAway || ce.Text != positions.ReasonGoingAway {
				t.Fatalf("read error %v, want close %d %q", err, positions.CloseGoingAway, positions.ReasonGoingAway)
			}
			break
		}
	}
	// A new connection is refused while the instance is going away.
	if _, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(1), 1), nil); err == nil {
		t.Fatal("connected to an instance that is shutting down")
	}
}

// TestDiscoveryAndWatchMessage: a connection that names no request finds
// the student's pending ones; a watch message adds another (a second tab's
// admission); unwatch stops its frames.
func TestDiscoveryAndWatchMessage(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 2, 4)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	own := f.reqs[0]
	c, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(own.student)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fr, err := readFrame(t, c, 5*time.Second)
	if err != nil || fr.Type != "position" || fr.RequestID != own.id {
		t.Fatalf("first frame %+v, %v; want a position of discovered request %d", fr, err, own.id)
	}
	a, err := f.q.Admit(f.ctx, own.student, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteJSON(map[string]any{"type": "watch", "request_id": a.RequestID}); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for seen[a.RequestID] < 2 {
		fr, err := readFrame(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if fr.Type != "position" {
			t.Fatalf("frame %+v, want positions", fr)
		}
		seen[fr.RequestID]++
	}
	if err := c.WriteJSON(map[string]any{"type": "unwatch", "request_id": own.id}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for {
		fr, err := readFrame(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if fr.Type == "error" {
			if fr.Code != positions.ErrCodeBadMessage {
				t.Fatalf("error frame %+v, want bad_message", fr)
			}
			break
		}
	}
	// From here on only the second request's positions arrive.
	for range 3 {
		fr, err := readFrame(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if fr.RequestID != a.RequestID {
			t.Fatalf("frame %+v after unwatching request %d", fr, own.id)
		}
	}
}

// TestDrawConnection: a connection with draw=1 and no requests waits for the
// pre-queue's draw without a discovery, and gets one opened frame when the
// API's notice is published.
func TestDrawConnection(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 2, 4)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	if err := f.q.SetOpen(f.ctx, false); err != nil { // before the opening
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return ts.srv.eng.Stats().Subscribed })
	own := f.reqs[0]
	c, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(own.student))+"&draw=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitUntil(t, func() bool { return ts.srv.eng.Stats().DrawWaiters == 1 })
	if err := f.q.PublishOpened(f.ctx, 12000); err != nil {
		t.Fatal(err)
	}
	fr, err := readFrame(t, c, 5*time.Second)
	if err != nil || fr.Type != "opened" {
		t.Fatalf("frame %+v, %v; want opened (no position: the pending request %d was not discovered)", fr, err, own.id)
	}
	if d := ts.srv.eng.Stats().Discovered; d != 0 {
		t.Fatalf("%d watches discovered for a draw connection, want 0", d)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownWhileClientsLeave: clients that hang up while the instance
// shuts down (a browser closing as a deploy drains it) still end their
// sessions, and shutdown completes without leaving goroutines behind.
// melody stops its hub on CloseWithMsg and a session ending at that moment
// blocked for ever on its unregister; shutdown now closes the sessions
// first and stops the hub once they have ended.
func TestShutdownWhileClientsLeave(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 4, 1)
	const rounds, perRound = 6, 60
	for round := range rounds {
		// 15 sockets a student: above the per-student cap's default.
		ts := startServer(t, f, options{Tick: 100 * time.Millisecond, MaxSocketsPerStudent: perRound})
		conns := make([]*websocket.Conn, 0, perRound)
		for i := range perRound {
			r := f.reqs[i%len(f.reqs)]
			c, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(r.student))+"&draw=1", nil)
			if err != nil {
				t.Fatalf("round %d: dial %d: %v", round, i, err)
			}
			conns = append(conns, c)
		}
		waitUntil(t, func() bool { return ts.srv.eng.Stats().Sessions == perRound })
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- ts.srv.shutdown(ctx)
		}()
		// Hang up one by one over the few milliseconds the shutdown takes
		// to reach the sessions.
		for i, c := range conns {
			_ = c.Close()
			if i%4 == 0 {
				time.Sleep(time.Duration(round*50) * time.Microsecond)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: shutdown with clients leaving: %v", round, err)
		}
		if n := ts.srv.eng.Stats().Sessions; n != 0 {
			t.Fatalf("round %d: %d sessions open after shutdown", round, n)
		}
	}
}
