package positions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

// Line is the queue as the engine reads it (implemented by *queue.Redis).
type Line interface {
	// ReadWatermark reads head, last ticket, decided counter and the done
	// tickets above the head in one round trip.
	ReadWatermark(ctx context.Context, maxDone int) (queue.Watermark, error)
	// Lookup returns a pending request and the number of undecided requests
	// ahead of it, or enroll.ErrNotFound when it is not pending.
	Lookup(ctx context.Context, id int64) (enroll.Request, int64, error)
}

var _ Line = (*queue.Redis)(nil)

// Decisions reads durable decisions from MariaDB (implemented by
// *enroll.Store on the primary or on a replica).
type Decisions interface {
	Decisions(ctx context.Context, ids []int64) ([]enroll.Decision, error)
}

var _ Decisions = (*enroll.Store)(nil)

// Sink is where a session's frames go: cmd/queue-ws implements it over a
// melody session. Both methods are called with engine locks held: they must
// not block and must not call back into the engine.
type Sink interface {
	// Send offers one frame (a complete JSON text message). A droppable
	// frame (a position) may be refused when the session's buffer is nearly
	// full; a result must be queued if at all possible, keeping room for a
	// close frame. Send reports whether the frame was queued. The engine
	// never modifies frame afterwards, so the sink may keep it.
	Send(frame []byte, droppable bool) bool
	// Close ends the session with a WebSocket close code and reason. It may
	// be called more than once.
	Close(code int, reason string)
}

// Config tunes an Engine. Zero values take the defaults.
type Config struct {
	// Line is the queue (required).
	Line Line
	// Decisions reads durable decisions for watches of decided requests and
	// for the safety net (required for those; nil disables them).
	Decisions Decisions
	// Redis carries the events channel and the discovery scan (nil disables
	// both). Keys names the queue's keys on it.
	Redis redis.UniversalClient
	Keys  queue.Keys

	Tick          time.Duration // period of the watermark read (1s)
	MaxDone       int           // done tickets read per tick (100000)
	RateWindow    time.Duration // time constant of the drain-rate average (5s)
	MaxWatches    int           // active watches per session (32)
	SafetyGrace   int           // ticks a decided ticket may wait for its event (2)
	SafetyBatch   int           // ids per safety-net query (1000)
	DiscoverEvery time.Duration // at most one discovery scan per period (1s)
	LookupTimeout time.Duration // per watch lookup (5s)

	// ObserveTick, when set, is told how long each tick took.
	ObserveTick func(time.Duration)
	Logger      *slog.Logger
	Now         func() time.Time
}

func (c *Config) defaults() {
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.MaxDone <= 0 {
		c.MaxDone = 100000
	}
	if c.RateWindow <= 0 {
		c.RateWindow = 5 * time.Second
	}
	if c.MaxWatches <= 0 {
		c.MaxWatches = 32
	}
	if c.SafetyGrace <= 0 {
		c.SafetyGrace = 2
	}
	if c.SafetyBatch <= 0 {
		c.SafetyBatch = 1000
	}
	if c.DiscoverEvery <= 0 {
		c.DiscoverEvery = time.Second
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

const (
	nShards = 64
	// maxIDsPerSession bounds the ids a session remembers (watched and
	// resolved), so one connection cannot grow without limit.
	maxIDsPerSession = 1024
	// maxCheckBackoff bounds the ticks between two safety-net lookups of
	// the same request.
	maxCheckBackoff = 30
)

// Engine is the fan-out engine of one queue-ws instance.
type Engine struct {
	cfg Config
	log *slog.Logger

	shards [nShards]shard

	tickMu sync.Mutex // serialises ticks; guards rate and arena
	seq    atomic.Uint64
	rate   rateMeter
	arena  arena

	rateBits   atomic.Uint64 // float64 bits of the last measured drain rate
	lastTick   atomic.Int64  // unix nanos of the last successful tick
	subscribed atomic.Bool

	susMu    sync.Mutex
	suspects map[int64]struct{}
	wakeNet  chan struct{}

	discMu   sync.Mutex
	disc     map[int64][]*Session // student → sessions waiting for discovery
	wakeDisc chan struct{}

	drawMu      sync.Mutex
	drawWaiters map[int64]map[*Session]struct{} // student → sessions waiting for the draw
	nWaiters    int

	sessions atomic.Int64
	watches  atomic.Int64
	st       counters
}

type counters struct {
	positionFrames, resultFrames, errorFrames atomic.Int64
	droppedPositions, slowClosed              atomic.Int64
	ticks, tickErrors                         atomic.Int64
	events, unknownEvents                     atomic.Int64
	safetyNetResults, pubsubReconnects        atomic.Int64
	discovered, openedFrames, drawnFrames     atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[int64]*entry
	// recent and older hold the results published for requests nobody here
	// watched yet, for two generations of recentTTL: a watch registered
	// just after its result was published (Lookup said "pending", then the
	// decision landed) is answered from here at once instead of waiting for
	// the durable-status safety net.
	recent, older map[int64]queue.ResultEvent
	rotated       time.Time
}

// recentTTL is how long one generation of unclaimed results is kept.
const recentTTL = 10 * time.Second

// remember keeps ev for a watch that may register right after; sh.mu held.
func (sh *shard) remember(ev queue.ResultEvent, now time.Time) {
	if sh.recent == nil || now.Sub(sh.rotated) > recentTTL {
		sh.older, sh.recent, sh.rotated = sh.recent, make(map[int64]queue.ResultEvent), now
	}
	sh.recent[ev.RequestID] = ev
}

// claim returns an unclaimed recent result of id; sh.mu held.
func (sh *shard) claim(id int64) (queue.ResultEvent, bool) {
	if ev, ok := sh.recent[id]; ok {
		return ev, true
	}
	ev, ok := sh.older[id]
	return ev, ok
}

// entry is one watched request on this instance.
type entry struct {
	id, student int64
	last        int64  // lowest position computed so far (0: none yet)
	sentPos     int64  // position of the last tick frame (0: none yet)
	sentSeq     uint64 // tick of the last tick frame
	watchers    []watcher
	seenDecided uint64 // tick that first saw the ticket decided (0: not seen)
	nextCheck   uint64 // no safety-net lookup before this tick
	checks      int
}

type watcher struct {
	s     *Session
	since uint64 // tick sequence number when the watch was registered
}

// New returns an engine; call Run to start its loops.
func New(cfg Config) *Engine {
	cfg.defaults()
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		rate:     rateMeter{tau: cfg.RateWindow},
		suspects: map[int64]struct{}{},
		wakeNet:  make(chan struct{}, 1),
		disc:     map[int64][]*Session{},
		wakeDisc: make(chan struct{}, 1),

		drawWaiters: map[int64]map[*Session]struct{}{},
	}
	for i := range e.shards {
		e.shards[i].m = map[int64]*entry{}
	}
	return e
}

func (e *Engine) shard(id int64) *shard { return &e.shards[uint64(id)%nShards] }

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run runs the tick loop, the events subscription, discovery and the safety
// net until ctx ends, and returns once all of them have stopped.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	start := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	start(e.RunTicks)
	if e.cfg.Redis != nil {
		start(e.RunEvents)
		start(e.runDiscovery)
	}
	if e.cfg.Decisions != nil {
		start(e.runSafetyNet)
	}
	wg.Wait()
}

// RunTicks reads the watermark and pushes positions every Config.Tick until
// ctx ends.
func (e *Engine) RunTicks(ctx context.Context) {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	var lastLog time.Time
	for {
		tctx, cancel := context.WithTimeout(ctx, e.cfg.Tick)
		err := e.Tick(tctx)
		cancel()
		if err != nil && ctx.Err() == nil && time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			e.log.Warn("positions: tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick makes this tick's single Redis call (the watermark) and sends every
// watching session its position.
func (e *Engine) Tick(ctx context.Context) error {
	e.tickMu.Lock()
	defer e.tickMu.Unlock()
	start := time.Now()
	seq := e.seq.Add(1) // before the read: watches registered from now on wait for the next tick
	w, err := e.cfg.Line.ReadWatermark(ctx, e.cfg.MaxDone)
	if err != nil {
		e.st.tickErrors.Add(1)
		return fmt.Errorf("positions tick: %w", err)
	}
	e.applyLocked(seq, w, e.cfg.Now())
	e.lastTick.Store(time.Now().UnixNano())
	if e.cfg.ObserveTick != nil {
		e.cfg.ObserveTick(time.Since(start))
	}
	return nil
}

// ApplyWatermark is the local half of a tick: it pushes positions computed
// from w, read at time at, without touching Redis. Tick calls it after its
// read; benchmarks and tools that read the watermark themselves call it
// directly.
func (e *Engine) ApplyWatermark(w queue.Watermark, at time.Time) {
	e.tickMu.Lock()
	defer e.tickMu.Unlock()
	e.applyLocked(e.seq.Add(1), w, at)
}

// tickStats is what one tick did.
type tickStats struct {
	sent, dropped int64
}

func (e *Engine) applyLocked(seq uint64, w queue.Watermark, at time.Time) {
	rate := e.rate.observe(w.Decided, at)
	e.rateBits.Store(math.Float64bits(rate))
	ts := at.UnixMilli()
	var st tickStats
	var suspects []int64
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for id, en := range sh.m {
			if id > w.Last {
				continue // admitted after this read (or the read is older than the watch)
			}
			if id < w.Head || isDone(w, id) {
				if en.seenDecided == 0 {
					en.seenDecided = seq
				}
				if seq-en.seenDecided >= uint64(e.cfg.SafetyGrace) && seq >= en.nextCheck {
					en.checks++
					en.nextCheck = seq + min(uint64(1)<<min(en.checks, 5), maxCheckBackoff)
					suspects = append(suspects, id)
				}
				continue
			}
			en.seenDecided = 0
			pos := w.Ahead(id) + 1
			if en.last > 0 && en.last < pos {
				pos = en.last
			}
			en.last = pos
			if !frameDue(en, pos, seq) {
				continue
			}
			var frame []byte
			for _, wt := range en.watchers {
				if wt.since >= seq {
					continue
				}
				if frame == nil {
					frame = e.arena.keep(appendPosition(e.arena.next(maxPositionFrame), id, pos, eta(pos-1, rate), ts))
				}
				if wt.s.sink.Send(frame, true) {
					st.sent++
				} else {
					st.dropped++
				}
			}
			if frame != nil {
				en.sentPos, en.sentSeq = pos, seq
			}
		}
		sh.mu.Unlock()
	}
	e.st.ticks.Add(1)
	e.st.positionFrames.Add(st.sent)
	e.st.droppedPositions.Add(st.dropped)
	if len(suspects) > 0 && e.cfg.Decisions != nil {
		e.susMu.Lock()
		for _, id := range suspects {
			e.suspects[id] = struct{}{}
		}
		e.susMu.Unlock()
		wake(e.wakeNet)
	}
}

// Pacing of tick frames: a request gets a position frame when its position
// moved and its pace allows, and at least every heartbeatTicks ticks (the
// web client takes silence for a dead socket; see web/js/queue.js). Far
// back in a long line the number changes every tick but nobody needs it
// every second: a line of 100,000 would otherwise cost 100,000 frames a
// second. Near the front every change is sent at once.
const heartbeatTicks = 10

func paceTicks(pos int64) uint64 {
	switch {
	case pos <= 100:
		return 1
	case pos <= 1_000:
		return 2
	case pos <= 10_000:
		return 5
	}
	return heartbeatTicks
}

// frameDue reports whether entry en, now at pos, gets a frame at tick seq.
func frameDue(en *entry, pos int64, seq uint64) bool {
	if en.sentSeq == 0 {
		return true
	}
	since := seq - en.sentSeq
	return since >= heartbeatTicks || (pos != en.sentPos && since >= paceTicks(pos))
}

// isDone reports whether ticket t is in w's done list (tickets that left
// the line at or above the head).
func isDone(w queue.Watermark, t int64) bool {
	lo, hi := 0, len(w.Done)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if w.Done[m] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(w.Done) && w.Done[lo] == t
}

func (e *Engine) currentRate() float64 { return math.Float64frombits(e.rateBits.Load()) }

// deliver routes one decision to the local sessions watching it and forgets
// the request. It reports whether anyone here was watching.
func (e *Engine) deliver(ev queue.ResultEvent) bool {
	sh := e.shard(ev.RequestID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	en := sh.m[ev.RequestID]
	if en == nil {
		sh.remember(ev, e.cfg.Now())
		return false
	}
	if ev.StudentID != 0 && ev.StudentID != en.student {
		e.log.Error("positions: result names another student; not delivered",
			"request_id", ev.RequestID, "event_student", ev.StudentID, "watch_student", en.student)
		return false
	}
	delete(sh.m, ev.RequestID)
	e.watches.Add(-1)
	frame := appendResult(make([]byte, 0, 128), ev.RequestID, ev.Status, ev.Reason, e.cfg.Now().UnixMilli())
	for _, wt := range en.watchers {
		wt.s.resolve(ev.RequestID, frame)
	}
	return true
}

// register adds s as a watcher of id (owned by student). pos > 0 is a
// position just read by Lookup: it is sent at once.
func (e *Engine) register(s *Session, id, student, pos int64) {
	sh := e.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s.mu.Lock()
	if s.closed || s.ids[id] != stVerifying {
		s.mu.Unlock()
		return // closed or unwatched meanwhile
	}
	s.ids[id] = stWatching
	s.mu.Unlock()
	en := sh.m[id]
	if ev, ok := sh.claim(id); ok && en == nil && (ev.StudentID == 0 || ev.StudentID == student) {
		// Decided between the Lookup and now: answer at once.
		s.resolve(id, appendResult(make([]byte, 0, 128), id, ev.Status, ev.Reason, e.cfg.Now().UnixMilli()))
		return
	}
	if en == nil {
		en = &entry{id: id, student: student}
		sh.m[id] = en
		e.watches.Add(1)
	}
	en.watchers = append(en.watchers, watcher{s: s, since: e.seq.Load()})
	if pos <= 0 {
		return
	}
	if en.last == 0 || pos < en.last {
		en.last = pos
	}
	frame := appendPosition(make([]byte, 0, maxPositionFrame), id, en.last, eta(en.last-1, e.currentRate()), e.cfg.Now().UnixMilli())
	en.sentPos, en.sentSeq = en.last, e.seq.Load()
	if s.sink.Send(frame, true) {
		e.st.positionFrames.Add(1)
	} else {
		e.st.droppedPositions.Add(1)
	}
}

// unregister removes s from the watchers of id.
func (e *Engine) unregister(s *Session, id int64) {
	sh := e.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	en := sh.m[id]
	if en == nil {
		return
	}
	for i, wt := range en.watchers {
		if wt.s == s {
			last := len(en.watchers) - 1
			en.watchers[i] = en.watchers[last]
			en.watchers[last] = watcher{}
			en.watchers = en.watchers[:last]
			break
		}
	}
	if len(en.watchers) == 0 {
		delete(sh.m, id)
		e.watches.Add(-1)
	}
}

// Stats is a snapshot of the engine's gauges and counters.
type Stats struct {
	Sessions         int64   // open sessions
	Watches          int64   // requests watched by at least one session here
	PositionFrames   int64   // position frames queued
	ResultFrames     int64   // result frames queued
	ErrorFrames      int64   // error frames queued
	DroppedPositions int64   // position frames refused by full buffers
	SlowClosed       int64   // sessions closed because a result did not fit
	Ticks            int64   // watermarks applied
	TickErrors       int64   // watermark reads that failed
	Events           int64   // result events received over Pub/Sub
	UnknownEvents    int64   // events for requests nobody here watches
	SafetyNetResults int64   // results delivered from MariaDB by the safety net
	PubSubReconnects int64   // times the events subscription was re-established
	Discovered       int64   // watches found by the discovery scan
	OpenedFrames     int64   // opened frames sent to sessions waiting for the draw
	DrawnFrames      int64   // drawn frames (a pre-queue entry's outcome) sent
	DrawWaiters      int     // sessions waiting for the draw now
	DrainRate        float64 // decisions per second (0: unknown)
	Subscribed       bool    // the events subscription is up
	LastTick         time.Time
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	var last time.Time
	if n := e.lastTick.Load(); n > 0 {
		last = time.Unix(0, n)
	}
	return Stats{
		Sessions:         e.sessions.Load(),
		Watches:          e.watches.Load(),
		PositionFrames:   e.st.positionFrames.Load(),
		ResultFrames:     e.st.resultFrames.Load(),
		ErrorFrames:      e.st.errorFrames.Load(),
		DroppedPositions: e.st.droppedPositions.Load(),
		SlowClosed:       e.st.slowClosed.Load(),
		Ticks:            e.st.ticks.Load(),
		TickErrors:       e.st.tickErrors.Load(),
		Events:           e.st.events.Load(),
		UnknownEvents:    e.st.unknownEvents.Load(),
		SafetyNetResults: e.st.safetyNetResults.Load(),
		PubSubReconnects: e.st.pubsubReconnects.Load(),
		Discovered:       e.st.discovered.Load(),
		OpenedFrames:     e.st.openedFrames.Load(),
		DrawnFrames:      e.st.drawnFrames.Load(),
		DrawWaiters:      e.drawWaiterCount(),
		DrainRate:        e.currentRate(),
		Subscribed:       e.subscribed.Load(),
		LastTick:         last,
	}
}

// ErrUnhealthy is returned by Healthy when the engine cannot serve honest
// positions or results.
var ErrUnhealthy = errors.New("positions engine unhealthy")

// Healthy reports whether ticks succeed and the events subscription is up.
func (e *Engine) Healthy() error {
	n := e.lastTick.Load()
	if n == 0 || time.Since(time.Unix(0, n)) > 3*e.cfg.Tick+time.Second {
		return fmt.Errorf("%w: no successful watermark read recently", ErrUnhealthy)
	}
	if e.cfg.Redis != nil && !e.subscribed.Load() {
		return fmt.Errorf("%w: events subscription down", ErrUnhealthy)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (e *Engine) drawWaiterCount() int {
	e.drawMu.Lock()
	defer e.drawMu.Unlock()
	return e.nWaiters
}
