package positions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/queue"
)

const (
	eventsPingEvery  = 15 * time.Second // idle time before the subscription is pinged
	backoffMin       = 100 * time.Millisecond
	backoffMax       = 5 * time.Second
	healthySubscribe = 10 * time.Second // a subscription this old resets the backoff
	discoverScanSize = 10000            // HSCAN COUNT of the discovery scan
)

// RunEvents holds the instance's one subscription to the events channel
// until ctx ends, routing every result to the sessions watching it. It
// resubscribes with exponential backoff (100 ms … 5 s, with jitter) after any
// error; results published meanwhile are caught by the safety net.
func (e *Engine) RunEvents(ctx context.Context) {
	backoff := backoffMin
	for {
		began := time.Now()
		err := e.subscribeOnce(ctx)
		e.subscribed.Store(false)
		if ctx.Err() != nil {
			return
		}
		e.st.pubsubReconnects.Add(1)
		if time.Since(began) > healthySubscribe {
			backoff = backoffMin
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		e.log.Warn("positions: events subscription lost; resubscribing", "err", err, "in", wait)
		sleep(ctx, wait)
		backoff = min(2*backoff, backoffMax)
	}
}

func (e *Engine) subscribeOnce(ctx context.Context) error {
	ps := e.cfg.Redis.Subscribe(ctx, e.cfg.Keys.Events(), e.cfg.Keys.Notices())
	// go-redis does not interrupt a blocked read when ctx ends; closing the
	// subscription does.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stop() {
			_ = ps.Close()
		}
	}()
	for range 2 { // the subscription confirmations
		if _, err := ps.Receive(ctx); err != nil {
			return fmt.Errorf("subscribe %s: %w", e.cfg.Keys.Events(), err)
		}
	}
	e.subscribed.Store(true)
	for {
		msg, err := ps.ReceiveTimeout(ctx, eventsPingEvery)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return fmt.Errorf("ping events subscription: %w", err)
				}
				continue
			}
			return fmt.Errorf("receive events: %w", err)
		}
		switch m := msg.(type) {
		case *redis.Message:
			if m.Channel == e.cfg.Keys.Notices() {
				e.HandleNotice([]byte(m.Payload))
				continue
			}
			e.HandleEvents([]byte(m.Payload))
		case *redis.Subscription, *redis.Pong:
		}
	}
}

// HandleEvents routes one events message (a JSON array of
// queue.ResultEvent, as ack.lua publishes it) to the local sessions.
func (e *Engine) HandleEvents(payload []byte) {
	var evs []queue.ResultEvent
	if err := json.Unmarshal(payload, &evs); err != nil {
		e.log.Error("positions: bad events message", "err", err, "bytes", len(payload))
		return
	}
	e.st.events.Add(int64(len(evs)))
	var unknown int64
	for _, ev := range evs {
		if !e.deliver(ev) {
			unknown++
		}
	}
	e.st.unknownEvents.Add(unknown)
}

// HandleNotice handles one notices message: a drawn notice (a batch of the
// pre-queue's draw, see admit.lua) gives each entry's outcome to its
// student's sessions waiting for the draw; an opened notice (see
// queue.Opened) goes, as it is, to every session waiting, and ends their
// wait.
func (e *Engine) HandleNotice(payload []byte) {
	var n struct {
		Type    string     `json:"type"`
		Entries [][3]int64 `json:"e"`
	}
	if err := json.Unmarshal(payload, &n); err != nil {
		e.log.Error("positions: bad notice", "err", err, "bytes", len(payload))
		return
	}
	switch n.Type {
	case "opened":
		e.releaseDrawWaiters(nil, payload)
	case "drawn":
		e.tellDrawn(n.Entries)
	default:
		e.log.Error("positions: unknown notice", "type", n.Type)
	}
}

// drawnFrame is what a waiting page is told of one drawn entry.
type drawnFrame struct {
	Type      string `json:"type"` // "drawn"
	CourseID  int64  `json:"course_id"`
	RequestID int64  `json:"request_id,omitempty"` // admitted: the request, to watch
	Error     string `json:"error,omitempty"`      // refused: sold_out, already_enrolled, ...
	TS        int64  `json:"ts"`                   // when this instance sent it (Unix ms): how late a page learns is measurable
}

// tellDrawn sends each entry [student, course, ticket or -code] to the
// student's sessions waiting for the draw here (most students have none on
// this instance), and watches each admitted request on them at once: the
// draw's own word is proof enough that the request is the student's, so
// there is no lookup, and the page need not ask (a watch message it sends
// anyway is a no-op). Positions follow on the ticks.
func (e *Engine) tellDrawn(entries [][3]int64) {
	ts := e.cfg.Now().UnixMilli() // one batch of the draw: one moment
	for _, en := range entries {
		e.drawMu.Lock()
		ss := make([]*Session, 0, len(e.drawWaiters[en[0]]))
		for s := range e.drawWaiters[en[0]] {
			ss = append(ss, s)
		}
		e.drawMu.Unlock()
		if len(ss) == 0 {
			continue
		}
		f := drawnFrame{Type: "drawn", CourseID: en[1], TS: ts}
		if en[2] > 0 {
			f.RequestID = en[2]
		} else {
			f.Error = queue.RefusalCode(en[2])
		}
		b, _ := json.Marshal(f)
		for _, s := range ss {
			if s.sink.Send(b, false) {
				e.st.drawnFrames.Add(1)
			}
			if f.RequestID > 0 && s.reserve(f.RequestID, false) {
				e.register(s, f.RequestID, en[0], 0)
			}
		}
	}
}

func (e *Engine) addDrawWaiter(s *Session) {
	e.drawMu.Lock()
	defer e.drawMu.Unlock()
	m := e.drawWaiters[s.student]
	if m == nil {
		m = map[*Session]struct{}{}
		e.drawWaiters[s.student] = m
	}
	if _, ok := m[s]; !ok {
		m[s] = struct{}{}
		e.nWaiters++
	}
}

// removeDrawWaiter ends s's wait; it reports whether s was waiting.
func (e *Engine) removeDrawWaiter(s *Session) bool {
	e.drawMu.Lock()
	defer e.drawMu.Unlock()
	m := e.drawWaiters[s.student]
	if _, ok := m[s]; !ok {
		return false
	}
	delete(m, s)
	if len(m) == 0 {
		delete(e.drawWaiters, s.student)
	}
	e.nWaiters--
	return true
}

// releaseDrawWaiters sends frame to the sessions waiting for the draw (all
// of them, or only s when s is not nil) and ends their wait. A session gets
// the frame at most once.
func (e *Engine) releaseDrawWaiters(only *Session, frame []byte) {
	var ss []*Session
	if only != nil {
		if e.removeDrawWaiter(only) {
			ss = append(ss, only)
		}
	} else {
		e.drawMu.Lock()
		for _, m := range e.drawWaiters {
			for s := range m {
				ss = append(ss, s)
			}
		}
		clear(e.drawWaiters)
		e.nWaiters = 0
		e.drawMu.Unlock()
	}
	for _, s := range ss {
		if s.sink.Send(frame, false) {
			e.st.openedFrames.Add(1)
		}
	}
}

// runSafetyNet resolves suspects (watched tickets the watermark shows as
// decided, with no result after the grace period) from MariaDB, one batched
// query at a time.
func (e *Engine) runSafetyNet(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wakeNet:
		}
		if _, err := e.ResolveSuspects(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("positions: safety net", "err", err)
			sleep(ctx, e.cfg.Tick)
		}
	}
}

// ResolveSuspects looks up to Config.SafetyBatch suspects up in MariaDB and
// delivers the decisions found. Suspects without a decision yet stay
// watched; the tick retries them with backoff. It returns how many results
// it delivered.
func (e *Engine) ResolveSuspects(ctx context.Context) (int, error) {
	e.susMu.Lock()
	ids := make([]int64, 0, min(len(e.suspects), e.cfg.SafetyBatch))
	for id := range e.suspects {
		if len(ids) == e.cfg.SafetyBatch {
			break
		}
		ids = append(ids, id)
		delete(e.suspects, id)
	}
	more := len(e.suspects) > 0
	e.susMu.Unlock()
	if more {
		wake(e.wakeNet)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	ds, err := e.cfg.Decisions.Decisions(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("safety net: read %d decisions: %w", len(ids), err)
	}
	n := 0
	for _, d := range ds {
		if e.deliver(queue.ResultEvent{RequestID: d.RequestID, StudentID: d.StudentID, CourseID: d.CourseID,
			Status: string(d.Status), Reason: string(d.Reason)}) {
			n++
		}
	}
	e.st.safetyNetResults.Add(int64(n))
	return n, nil
}

func (e *Engine) runDiscovery(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wakeDisc:
		}
		if _, err := e.DiscoverOnce(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("positions: discovery scan", "err", err)
		}
		sleep(ctx, e.cfg.DiscoverEvery)
	}
}

// DiscoverOnce runs one discovery scan for every session that asked since
// the last one: it reads the queue's request records (HSCAN) once and
// watches each pending request of those sessions' students. It returns the
// number of watches added.
func (e *Engine) DiscoverOnce(ctx context.Context) (int, error) {
	e.discMu.Lock()
	want := e.disc
	e.disc = map[int64][]*Session{}
	e.discMu.Unlock()
	if len(want) == 0 {
		return 0, nil
	}
	found := map[*Session][]int64{}
	var cursor uint64
	for {
		kv, next, err := e.cfg.Redis.HScan(ctx, e.cfg.Keys.Req(), cursor, "", discoverScanSize).Result()
		if err != nil {
			e.discMu.Lock() // try again with the next scan
			for st, ss := range want {
				e.disc[st] = append(e.disc[st], ss...)
			}
			e.discMu.Unlock()
			wake(e.wakeDisc)
			return 0, fmt.Errorf("discovery scan: %w", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			// record: "student:course:admitted_ms:flag"
			sid, _, ok := strings.Cut(kv[i+1], ":")
			if !ok {
				continue
			}
			student, err := strconv.ParseInt(sid, 10, 64)
			if err != nil {
				continue
			}
			ss := want[student]
			if len(ss) == 0 {
				continue
			}
			id, err := strconv.ParseInt(kv[i], 10, 64)
			if err != nil {
				continue
			}
			for _, s := range ss {
				found[s] = append(found[s], id)
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	n := 0
	for s, ids := range found {
		for _, id := range ids {
			if s.reserve(id, false) {
				e.register(s, id, s.student, 0)
				n++
			}
		}
	}
	e.st.discovered.Add(int64(n))
	return n, nil
}
