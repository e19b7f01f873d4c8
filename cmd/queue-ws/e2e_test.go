package main

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/enrollq/enrollq/internal/enroll"
)

// e2eClients is the number of WebSocket clients of TestEndToEnd:
// ENROLLQ_WS_E2E_CLIENTS, or 2000 (300 with -short).
func e2eClients() int {
	if v, err := strconv.Atoi(os.Getenv("ENROLLQ_WS_E2E_CLIENTS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 300
	}
	return 2000
}

// e2eClient is one student's browser tab: it watches its request, and on
// any disconnect reconnects to the other instance and watches it again.
type e2eClient struct {
	id, student int64
	token       string
	home        int

	mu         sync.Mutex
	positions  []int64
	results    []frame
	after      []frame // frames after the result (must stay empty)
	others     []frame // error frames
	connects   int
	reconnects int
	resultOn   int       // instance that delivered the result
	resultAt   time.Time // when it arrived
	onAtKill   int       // instance connected when the kill happened (-1: none)

	hasPosition atomic.Bool
	current     atomic.Int32 // instance currently connected to, -1 when none
}

func (c *e2eClient) run(ctx context.Context, urls []string, sem chan struct{}) {
	c.current.Store(-1)
	idx := c.home
	for ctx.Err() == nil {
		inst := idx % len(urls)
		sem <- struct{}{}
		conn, _, err := dialer.DialContext(ctx, wsURL(urls[inst], c.token, c.id), nil)
		<-sem
		if err != nil {
			idx++
			sleepCtx(ctx, time.Duration(20+rand.IntN(80))*time.Millisecond)
			continue
		}
		c.mu.Lock()
		c.connects++
		if c.connects > 1 {
			c.reconnects++
		}
		c.mu.Unlock()
		c.current.Store(int32(inst))
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		c.read(conn, inst)
		stop()
		c.current.Store(-1)
		conn.Close()
		c.mu.Lock()
		done := len(c.results) > 0
		c.mu.Unlock()
		if done {
			return
		}
		idx++ // this instance went away: try the other one
		sleepCtx(ctx, time.Duration(10+rand.IntN(90))*time.Millisecond)
	}
}

// read consumes frames until the connection fails, or a result came and
// nothing followed it for a while.
func (c *e2eClient) read(conn *websocket.Conn, inst int) {
	gotResult := false
	for {
		wait := 15 * time.Second
		if gotResult {
			wait = 600 * time.Millisecond // > 2 ticks: room for a stray frame
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		_, b, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			f = frame{Type: "garbage:" + string(b)}
		}
		c.mu.Lock()
		switch {
		case gotResult:
			c.after = append(c.after, f)
		case f.Type == "position" && f.RequestID == c.id:
			c.positions = append(c.positions, f.Position)
			c.hasPosition.Store(true)
		case f.Type == "result" && f.RequestID == c.id:
			c.results = append(c.results, f)
			c.resultOn = inst
			c.resultAt = time.Now()
			gotResult = true
		default:
			c.others = append(c.others, f)
		}
		c.mu.Unlock()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// TestEndToEnd runs two queue-ws instances and thousands of clients spread
// over both while the queue is drained in batches (pop → DecideBatch → ack)
// and some students cancel. Midway one instance is killed abruptly; its
// clients reconnect to the other and carry on. Every client must see
// positions that never increase, then exactly one result, equal to what
// MariaDB recorded in enrollment_requests.
func TestEndToEnd(t *testing.T) {
	checkGoroutines(t)
	n := e2eClients()
	began := time.Now()
	f := newFixture(t, n, 25)
	o := options{Tick: time.Second}
	servers := []*testServer{startServer(t, f, o), startServer(t, f, o)}
	urls := []string{servers[0].url, servers[1].url}
	t.Logf("%d clients; fixture and servers ready in %v", n, time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	clients := make([]*e2eClient, n)
	sem := make(chan struct{}, 64) // concurrent handshakes
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, r := range f.reqs {
		c := &e2eClient{id: r.id, student: r.student, token: f.wsToken(r.student), home: i % 2, onAtKill: -1}
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx, urls, sem)
		}()
	}
	waitCtx(t, ctx, "every client's first position", func() bool {
		for _, c := range clients {
			if !c.hasPosition.Load() {
				return false
			}
		}
		return true
	})
	t.Logf("all %d clients connected with a position after %v", n, time.Since(began).Round(time.Millisecond))

	// Drain 25 per 100 ms; cancel every 20th student's request along the way.
	var decided atomic.Int64
	drained := make(chan error, 1)
	go func() {
		drained <- drain(ctx, f, clients, &decided)
	}()
	waitCtx(t, ctx, "40% decided", func() bool { return decided.Load() >= int64(n)*2/5 })
	for _, c := range clients {
		c.onAtKill = int(c.current.Load())
	}
	servers[0].kill(t)
	killed := time.Now()
	t.Logf("killed instance 0 with %d decided, after %v", decided.Load(), time.Since(began).Round(time.Millisecond))

	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("all results in after %v", time.Since(began).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("timed out: %v", ctx.Err())
	}

	// Ground truth.
	var rows []enroll.Decision
	if err := f.db.SelectContext(f.ctx, &rows, `SELECT id, student_id, course_id, ticket, status, reason, decided_at FROM enrollment_requests`); err != nil {
		t.Fatal(err)
	}
	truth := make(map[int64]enroll.Decision, len(rows))
	for _, r := range rows {
		truth[r.RequestID] = r
	}
	if len(truth) != n {
		t.Fatalf("%d decisions in MariaDB, want %d", len(truth), n)
	}
	statuses := map[string]int{}
	moved, movedWaiting, progressed := 0, 0, 0
	for _, c := range clients {
		if len(c.results) != 1 {
			t.Fatalf("request %d: %d results, want exactly 1: %+v", c.id, len(c.results), c.results)
		}
		if len(c.after) > 0 {
			t.Fatalf("request %d: frames after the result: %+v", c.id, c.after)
		}
		if len(c.others) > 0 {
			t.Fatalf("request %d: unexpected frames: %+v", c.id, c.others)
		}
		d := truth[c.id]
		if got := c.results[0]; got.Status != string(d.Status) || got.Reason != string(d.Reason) || got.Position != 0 {
			t.Fatalf("request %d: result %s/%s (position %d), MariaDB says %s/%s", c.id, got.Status, got.Reason, got.Position, d.Status, d.Reason)
		}
		statuses[string(d.Status)+"/"+string(d.Reason)]++
		if len(c.positions) == 0 {
			t.Fatalf("request %d: no position before its result", c.id)
		}
		for i := 1; i < len(c.positions); i++ {
			if c.positions[i] > c.positions[i-1] {
				t.Fatalf("request %d: position rose from %d to %d (positions %v)", c.id, c.positions[i-1], c.positions[i], c.positions)
			}
		}
		if c.positions[len(c.positions)-1] < c.positions[0] {
			progressed++
		}
		if last := c.positions[len(c.positions)-1]; last < 1 {
			t.Fatalf("request %d: position %d while waiting", c.id, last)
		}
		if c.onAtKill == 0 {
			switch {
			case c.resultOn == 1 && c.reconnects > 0:
				movedWaiting++ // waited on the killed instance, resumed on the other
			case c.resultOn == 0 && c.resultAt.Before(killed):
				// decided just before the kill
			default:
				t.Fatalf("request %d: was on the killed instance; result from instance %d at %v (kill done %v) after %d reconnects",
					c.id, c.resultOn, c.resultAt, killed, c.reconnects)
			}
		}
		if c.reconnects > 0 {
			moved++
		}
	}
	if progressed < n/2 {
		t.Errorf("only %d of %d clients saw their position go down", progressed, n)
	}
	if movedWaiting == 0 {
		t.Fatal("no client was waiting on the killed instance; the kill tested nothing")
	}
	for _, want := range []string{"enrolled/", "rejected/credit_limit", "cancelled/"} {
		if statuses[want] == 0 {
			t.Errorf("no %s decision among %v", want, statuses)
		}
	}
	st := servers[1].srv.eng.Stats()
	t.Logf("%d clients saw their position go down; decisions %v; %d clients waiting on the killed instance moved over (%d reconnected in all); survivor: %d position frames, %d dropped, %d events, %d safety-net results",
		progressed, statuses, movedWaiting, moved, st.PositionFrames, st.DroppedPositions, st.Events, st.SafetyNetResults)
}

// drain decides the queue in batches of 25 every 100 ms, cancelling the
// requests of every 20th client while they wait, as app.Service.Cancel does.
func drain(ctx context.Context, f *fixture, clients []*e2eClient, decided *atomic.Int64) error {
	var cancels []*e2eClient
	for i, c := range clients {
		if i%20 == 7 {
			cancels = append(cancels, c)
		}
	}
	for ctx.Err() == nil {
		for k := 0; k < 10 && len(cancels) > 0; k++ {
			c := cancels[0]
			cancels = cancels[1:]
			r, err := f.q.Cancel(ctx, c.id, c.student, time.Minute)
			if err == nil {
				d, err := f.store.RecordCancellation(ctx, r)
				if err != nil {
					return err
				}
				if err := f.q.Ack(ctx, []enroll.Decision{d}); err != nil {
					return err
				}
				decided.Add(1)
			} else if !errors.Is(err, enroll.ErrTooLate) && !errors.Is(err, enroll.ErrNotFound) {
				return err
			}
		}
		rs, err := f.q.Pop(ctx, 25, time.Minute)
		if err != nil {
			return err
		}
		if len(rs) == 0 && len(cancels) == 0 {
			return nil
		}
		if len(rs) > 0 {
			ds, err := f.store.DecideBatch(ctx, rs)
			if err != nil {
				return err
			}
			if err := f.q.Ack(ctx, ds); err != nil {
				return err
			}
			decided.Add(int64(len(ds)))
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return ctx.Err()
}

func waitCtx(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
