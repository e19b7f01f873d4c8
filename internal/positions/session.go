package positions

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

type watchState uint8

const (
	stVerifying watchState = iota + 1 // ownership being checked
	stWatching                        // registered; positions flow
	stResolved                        // its result was sent
)

// Session is one WebSocket connection of a student. One session may watch
// several requests, and several sessions (tabs) may watch the same one.
type Session struct {
	e       *Engine
	student int64
	sink    Sink

	mu     sync.Mutex
	ids    map[int64]watchState
	active int // ids verifying or watching
	closed bool
	slow   bool
}

// Open registers a session of student writing to sink. Call Close when the
// connection ends.
func (e *Engine) Open(student int64, sink Sink) *Session {
	e.sessions.Add(1)
	return &Session{e: e, student: student, sink: sink, ids: map[int64]watchState{}}
}

// Student returns the id of the session's student.
func (s *Session) Student() int64 { return s.student }

// Watch starts watching each request id: a pending request of the student
// gets a position frame at once and on every tick, a decided one its result
// at once (from MariaDB); a request of another student or an unknown id gets
// an error frame. Watching an id twice is a no-op.
func (s *Session) Watch(ctx context.Context, ids ...int64) {
	for _, id := range ids {
		s.watch(ctx, id)
	}
}

func (s *Session) watch(ctx context.Context, id int64) {
	if id <= 0 {
		s.sendError(id, ErrCodeBadRequest)
		return
	}
	if !s.reserve(id, true) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.e.cfg.LookupTimeout)
	defer cancel()
	r, ahead, err := s.e.cfg.Line.Lookup(ctx, id)
	switch {
	case err == nil:
		if r.StudentID != s.student {
			s.forget(id)
			s.sendError(id, ErrCodeForbidden)
			return
		}
		s.e.register(s, id, r.StudentID, ahead+1)
	case errors.Is(err, enroll.ErrNotFound):
		s.resolveDecided(ctx, id)
	default:
		s.e.log.Warn("positions: lookup failed", "request_id", id, "err", err)
		s.forget(id)
		s.sendError(id, ErrCodeUnavailable)
	}
}

// reserve marks id as being verified. It reports false (after telling the
// client when useful) if the session is closed, already has id, or is full.
func (s *Session) reserve(id int64, tell bool) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if _, ok := s.ids[id]; ok {
		s.mu.Unlock()
		return false
	}
	if s.active >= s.e.cfg.MaxWatches || len(s.ids) >= maxIDsPerSession {
		s.mu.Unlock()
		if tell {
			s.sendError(id, ErrCodeTooMany)
		}
		return false
	}
	s.ids[id] = stVerifying
	s.active++
	s.mu.Unlock()
	return true
}

// forget drops an id that is being verified or watched (not a resolved one).
func (s *Session) forget(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.ids[id]; ok && st != stResolved {
		delete(s.ids, id)
		s.active--
		return true
	}
	return false
}

// resolveDecided answers a watch of a request that is not pending: MariaDB
// has its decision, written before the queue forgot it.
func (s *Session) resolveDecided(ctx context.Context, id int64) {
	if s.e.cfg.Decisions == nil {
		s.forget(id)
		s.sendError(id, ErrCodeNotFound)
		return
	}
	ds, err := s.e.cfg.Decisions.Decisions(ctx, []int64{id})
	if err != nil {
		s.e.log.Warn("positions: read decision failed", "request_id", id, "err", err)
		s.forget(id)
		s.sendError(id, ErrCodeUnavailable)
		return
	}
	if len(ds) == 0 {
		s.forget(id)
		s.sendError(id, ErrCodeNotFound)
		return
	}
	d := ds[0]
	if d.StudentID != s.student {
		s.forget(id)
		s.sendError(id, ErrCodeForbidden)
		return
	}
	s.mu.Lock()
	if s.closed || s.ids[id] != stVerifying {
		s.mu.Unlock()
		return
	}
	s.ids[id] = stResolved
	s.active--
	s.mu.Unlock()
	s.sendResult(appendResult(make([]byte, 0, 128), id, string(d.Status), string(d.Reason), s.e.cfg.Now().UnixMilli()))
}

// Unwatch stops watching id (no result will be sent for it).
func (s *Session) Unwatch(id int64) {
	if s.forget(id) {
		s.e.unregister(s, id)
	}
}

// Discover asks for the student's pending requests to be found and watched.
// Discovery scans the queue's request records, which costs O(pending), so
// the scans of every session asking at about the same time are coalesced
// into one scan per Config.DiscoverEvery. Clients that know their request
// ids (from the admission responses) should name them instead.
func (s *Session) Discover() {
	if s.e.cfg.Redis == nil {
		return
	}
	s.e.discMu.Lock()
	s.e.disc[s.student] = append(s.e.disc[s.student], s)
	s.e.discMu.Unlock()
	wake(s.e.wakeDisc)
}

// clientMessage is what a client may send.
type clientMessage struct {
	Type      string `json:"type"`
	RequestID int64  `json:"request_id"`
}

// HandleMessage handles one client text message:
// {"type":"watch","request_id":N}, {"type":"unwatch","request_id":N} or
// {"type":"draw"} (see AwaitDraw).
func (s *Session) HandleMessage(ctx context.Context, msg []byte) {
	var m clientMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		s.sendError(0, ErrCodeBadMessage)
		return
	}
	switch m.Type {
	case "watch":
		s.Watch(ctx, m.RequestID)
	case "unwatch":
		s.Unwatch(m.RequestID)
	case "draw":
		s.AwaitDraw(ctx)
	default:
		s.sendError(m.RequestID, ErrCodeBadMessage)
	}
}

// AwaitDraw asks for the pre-queue's outcomes (a page with pre-queue
// entries waits for their draw): a {"type":"drawn"} frame for each of the
// student's entries as the draw reaches it, then one {"type":"opened"} frame
// when the window opens (at once if it is open already).
func (s *Session) AwaitDraw(ctx context.Context) {
	e := s.e
	if e.cfg.Redis == nil {
		return
	}
	s.mu.Lock() // the lock order of Close: session, then draw waiters
	if s.closed {
		s.mu.Unlock()
		return
	}
	e.addDrawWaiter(s)
	s.mu.Unlock()
	open, err := e.cfg.Redis.Get(ctx, e.cfg.Keys.Open()).Result()
	if err == nil && open == "1" {
		st, err := e.cfg.Redis.ZCard(ctx, e.cfg.Keys.PreStudents()).Result()
		if err != nil {
			st = 0
		}
		b, _ := json.Marshal(queue.Opened{Type: "opened", Students: st, SpreadMS: queue.OpenedSpread(st).Milliseconds(), TS: e.cfg.Now().UnixMilli()})
		e.releaseDrawWaiters(s, b)
	}
}

// Close unregisters the session. Call it once the connection is gone; it is
// safe to call more than once.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.e.removeDrawWaiter(s)
	ids := make([]int64, 0, s.active)
	for id, st := range s.ids {
		if st != stResolved {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	s.e.sessions.Add(-1)
	for _, id := range ids {
		s.e.unregister(s, id)
	}
}

// resolve sends the result frame of id unless the session already had one.
// Called with the shard lock of id held.
func (s *Session) resolve(id int64, frame []byte) {
	s.mu.Lock()
	if s.closed || s.ids[id] != stWatching {
		s.mu.Unlock()
		return
	}
	s.ids[id] = stResolved
	s.active--
	s.mu.Unlock()
	s.sendResult(frame)
}

// sendResult queues a result frame; a session that cannot take it is closed
// as a slow consumer (its client reconnects and reads the durable result).
func (s *Session) sendResult(frame []byte) {
	if s.sink.Send(frame, false) {
		s.e.st.resultFrames.Add(1)
		return
	}
	s.closeSlow()
}

func (s *Session) closeSlow() {
	s.mu.Lock()
	if s.slow {
		s.mu.Unlock()
		return
	}
	s.slow = true
	s.mu.Unlock()
	s.e.st.slowClosed.Add(1)
	s.sink.Close(CloseSlowConsumer, ReasonSlowConsumer)
}

func (s *Session) sendError(id int64, code string) {
	if s.sink.Send(appendError(make([]byte, 0, 256), id, code), false) {
		s.e.st.errorFrames.Add(1)
	}
}
