package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enrollq/enrollq/internal/queue"
)

// -prequeue D: registration day with the pre-queue (a lottery at the
// opening; internal/queue/prequeue.go). With the window still closed the
// registrar opens the pre-queue, the students send their carts into it over
// D (every request answers 202 prequeued: an entry, no ticket), then the
// registrar opens the window, which first draws: the pre-queued students
// shuffled, every entry admitted into the line in drawn order (a ticket,
// or refused: sold_out, ...). So in this mode admission is the draw at the
// opening, and its time is the time of that one call (draw_s). Each student
// learns the outcome of its entries as the web page does: a student with a
// queue-ws session opened it with draw=1 before the opening and is told each
// outcome by a drawn frame as the draw reaches it (it watches a drawn
// request on the same session), then gets one opened frame, and reads GET
// /me/requests only if an entry is still untold then (after a random part
// of the frame's spread_ms); a student without a session reads GET
// /me/requests once, the reads spread uniformly over spread_ms (learned_s:
// the opening call → the last student knows). From there on the run is the
// normal one: cancels, polls, drops, MariaDB verification and every law, on
// the drawn requests.

const statusPrequeued = "prequeued"

// A student's pre-queue entry, per cart item (student.pre).
const (
	preNone    uint8 = iota // not an entry (refused when sent)
	preEntered              // answered 202 prequeued
	preUnknown              // the answer was lost in transport: the student's list tells
)

// prequeueRun is what the pre-queue phase of a run saw.
type prequeueRun struct {
	openedAt  time.Time // the pre-queue opened: the entries' arrivals count from here
	windowAt  time.Time // the opening call returned: the window is open
	drawDur   time.Duration
	attempts  int
	status    drawStatus         // GET /admin/prequeue after the opening
	errs      map[string]int64   // answers to the entries other than 202 prequeued
	spanS     float64            // first entry sent → last answer
	cpuEnter  map[string]float64 // CPU seconds while the entries were sent
	cpuDraw   map[string]float64 // CPU seconds during the opening call
	callNs    atomic.Int64       // run clock of the opening call: the students wait for their outcomes from here
	callAt    time.Time          // wall clock of the opening call (the server's draw_done_at is on the same host's clock)
	learnDone atomic.Int64       // run clock of the last student's knowing every outcome of its entries

	learners, drawn, undrawn, missing, unknownFound, unlearned atomic.Int64

	// Learning the outcomes (prepareLearn, learn).
	ctx                                         context.Context
	todo                                        []*student // the students with entries
	withSession                                 int        // of them, with a queue-ws session
	sched                                       *readSched
	pending                                     atomic.Int64 // students of todo still learning
	viaWS, viaGET                               atomic.Int64 // students told everything by drawn frames / who read GET /me/requests
	readsNoSession, readsMissing, readsFallback atomic.Int64 // why the GETs: no session, entries untold at the opened frame, no opened frame
	learnRetries                                atomic.Int64 // GETs read again after a 5xx
	byFrame, byGET                              atomic.Int64 // entries told by a drawn frame / by the GET
	drawnFrames, openedFrames, strayFrames      atomic.Int64
	mismatches                                  atomic.Int64 // a drawn frame and the GET disagreed
	readSpread                                  time.Duration

	mu           sync.Mutex
	refused      map[string]int64 // drawn entries refused, by code
	learnErrs    map[string]int64
	frameLagMS   []float64 // drawn frames: received − sent by queue-ws (ts), ms
	learnLatMS   []float64
	knowMS       []float64     // per student: the opening call → it knows every outcome
	firstOpened  int64         // run clock of the first opened frame (0: none yet)
	openedSpread time.Duration // its spread_ms
}

// prequeueEntries opens the pre-queue and sends every student's cart into
// it, spread over cfg.Prequeue.
func (r *run) prequeueEntries(ctx context.Context, admin string) (*prequeueRun, error) {
	st, err := r.api.setPrequeue(ctx, admin, true)
	if err != nil {
		return nil, err
	}
	pq := &prequeueRun{openedAt: time.Now(), refused: map[string]int64{}, learnErrs: map[string]int64{}}
	r.seriesNs.Store(pq.openedAt.UnixNano())
	r.rss.sample()
	r.rss.resetCPU()
	r.logf("pre-queue open (students %d, entries %d): %d students send their carts over %s", st.Students, st.Entries,
		len(r.students), r.cfg.Prequeue)
	r.burst(ctx, pq.openedAt)
	// The registrar opens the window at the announced time, not earlier.
	sleepCtx(ctx, time.Until(pq.openedAt.Add(r.cfg.Prequeue)))
	r.c.refusedMu.Lock()
	pq.errs = maps.Clone(r.c.refused)
	r.c.refusedMu.Unlock()
	if first, last := r.c.firstSent.Load(), r.c.lastAnswered.Load(); last > first {
		pq.spanS = round3(float64(last-first) / 1e9)
	}
	r.rss.sample()
	pq.cpuEnter = r.rss.cpuSeconds()
	r.logf("pre-queue: %d entries sent, %d prequeued, errors %v", r.c.sent.Load(), r.c.prequeued.Load(), pq.errs)
	return pq, ctx.Err()
}

// openWithDraw opens the window: the draw and the opening, timed. The call
// goes without the client's 60 s timeout (the draw of a big pre-queue may
// take long); if it fails without an answer or with a 5xx (nginx's read
// timeout, say), opening again resumes the draw where it stopped.
func (r *run) openWithDraw(ctx context.Context, admin string, pq *prequeueRun) error {
	slow := &api{base: r.api.base, hc: &http.Client{Transport: r.api.hc.Transport}}
	r.logf("opening the window: the draw of the pre-queue first ...")
	r.rss.sample()
	before := r.rss.cpuSeconds()
	t0 := time.Now()
	pq.callNs.Store(int64(t0.Sub(r.start)))
	pq.callAt = t0
	for pq.attempts = 1; ; pq.attempts++ {
		err := slow.setWindow(ctx, admin, true)
		if err == nil {
			break
		}
		if !transient(err) || pq.attempts >= 5 || ctx.Err() != nil {
			return err
		}
		r.logf("opening: %v; opening again resumes the draw", err)
		sleepCtx(ctx, time.Second)
	}
	pq.windowAt = time.Now()
	pq.drawDur = pq.windowAt.Sub(t0)
	r.openNs.Store(pq.windowAt.UnixNano())
	r.rss.sample()
	after := r.rss.cpuSeconds()
	pq.cpuDraw = map[string]float64{}
	for k, v := range after {
		pq.cpuDraw[k] = round1(max(v-before[k], 0))
	}
	// The stack is at its busiest right after the opening: a read that
	// nginx could not pass on is tried again rather than ending the run.
	st, err := r.api.prequeue(ctx, admin)
	for try := 1; err != nil && transient(err) && try < 5 && ctx.Err() == nil; try++ {
		r.logf("reading the pre-queue: %v; again in 1s", err)
		sleepCtx(ctx, time.Second)
		st, err = r.api.prequeue(ctx, admin)
	}
	if err != nil && r.q != nil {
		// The registrar's readout is out of reach through nginx: the same
		// status straight from Redis keeps the run (and its verification).
		r.logf("reading the pre-queue through the api failed (%v); reading it from Redis", err)
		var qs queue.DrawStatus
		if qs, err = r.q.DrawStatus(ctx); err == nil {
			st = drawStatus{Open: qs.Open, Students: qs.Students, Entries: qs.Entries, State: qs.State, Seed: drawSeed(qs.Seed),
				Total: qs.Total, Cursor: qs.Cursor, StartedAt: qs.StartedAt, DoneAt: qs.DoneAt}
		}
	}
	if err != nil {
		return err
	}
	pq.status = st
	r.logf("window open after %.2fs: the draw admitted %d entries of %d students in drawn order (state %s, seed %d)",
		pq.drawDur.Seconds(), st.Total, st.Students, st.State, st.Seed)
	return nil
}

// preLearn is what one student with pre-queue entries knows of their
// outcomes, told by drawn frames on its queue-ws session or read with GET
// /me/requests.
type preLearn struct {
	mu      sync.Mutex
	told    []uint8 // per cart item: toldNot, toldDrawn or toldRefused
	ids     []int64 // per cart item: the request id told (drawn)
	left    int     // entries (answered prequeued, or answer lost) not told yet
	opened  bool    // an opened frame came
	reading bool    // its GET /me/requests is scheduled or under way
	done    bool    // it knows every outcome, or its reading ended
}

// claimRead marks the student's GET /me/requests as scheduled and reports
// whether it is needed (not done, not already scheduled).
func (pl *preLearn) claimRead() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	read := !pl.done && !pl.reading
	pl.reading = true
	return read
}

const (
	toldNot uint8 = iota
	toldDrawn
	toldRefused
)

// readFallback: a student with a session that has neither been told every
// outcome nor got an opened frame this long after the reads' spread reads
// GET /me/requests (the web page's fallback read, sooner).
const readFallback = 15 * time.Second

// prepareLearn readies, before the opening, what the students learn with:
// every student with entries waits for its outcomes, and the reads of GET
// /me/requests are scheduled from here on (an opened frame may come before
// the opening call has returned).
func (r *run) prepareLearn(ctx context.Context, pq *prequeueRun) {
	for _, st := range r.students {
		n := 0
		for _, s := range st.pre {
			if s != preNone {
				n++
			}
		}
		if n == 0 {
			continue
		}
		st.pl = &preLearn{told: make([]uint8, len(st.cart)), ids: make([]int64, len(st.cart)), left: n}
		pq.todo = append(pq.todo, st)
		if st.ws != nil {
			pq.withSession++
		}
	}
	pq.ctx = ctx
	pq.pending.Store(int64(len(pq.todo)))
	pq.sched = r.startReads(ctx, pq)
	r.pq.Store(pq) // from here on drawn and opened frames apply
}

// drawFrame applies a drawn or opened frame that st's session received
// (st nil: unknown).
func (r *run) drawFrame(st *student, f *frame) {
	pq := r.pq.Load()
	if pq == nil { // not a -prequeue run, or before its pre-queue
		r.c.otherFrames.Add(1)
		return
	}
	at := r.now()
	switch f.Type {
	case "drawn":
		pq.drawnFrames.Add(1)
		if f.TS > 0 {
			lag := float64(time.Now().UnixMilli() - f.TS)
			pq.mu.Lock()
			pq.frameLagMS = append(pq.frameLagMS, lag)
			pq.mu.Unlock()
		}
		if st == nil || st.pl == nil {
			pq.strayFrames.Add(1)
			return
		}
		i := slices.Index(st.cart, f.CourseID)
		if i < 0 || st.pre[i] == preNone {
			pq.strayFrames.Add(1) // not an entry of this run
			return
		}
		status := "drawn"
		if f.RequestID <= 0 {
			status = "refused"
		}
		r.tell(pq, st, i, status, f.RequestID, f.Error, math.MaxInt64, at, true)
	case "opened":
		pq.openedFrames.Add(1)
		spread := time.Duration(f.SpreadMS) * time.Millisecond
		pq.mu.Lock()
		if pq.firstOpened == 0 {
			pq.firstOpened, pq.openedSpread = at, spread
		}
		pq.mu.Unlock()
		if st == nil || st.pl == nil {
			return
		}
		pl := st.pl
		pl.mu.Lock()
		pl.opened = true
		read := !pl.done && !pl.reading && pl.left > 0
		if read {
			pl.reading = true
		}
		pl.mu.Unlock()
		if read {
			// Entries without a drawn frame (connected mid-draw, a frame
			// lost): read them after a random part of the spread, as the
			// web page does.
			pq.readsMissing.Add(1)
			pq.sched.add(st, time.Now().Add(randDur(spread)))
		}
	}
}

func randDur(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// tell applies the outcome of st's entry i (status drawn with request id,
// or refused with code), the first time it is told: a drawn entry becomes
// an admitted request (tracked, watched on the student's queue-ws session,
// maybe cancelled), a refused one a refusal by its code. pos is the
// position the student was shown (math.MaxInt64: none). A drawn frame that
// tells the student's last outcome ends its learning.
func (r *run) tell(pq *prequeueRun, st *student, i int, status string, id int64, code string, pos, at int64, byFrame bool) {
	pl := st.pl
	pl.mu.Lock()
	if byFrame && pl.done {
		pl.mu.Unlock()
		pq.strayFrames.Add(1) // after its reading ended: the reading counted the entry
		return
	}
	if pl.told[i] != toldNot {
		// Told before: a drawn frame, then the GET. They must agree.
		if (status == "drawn") != (pl.told[i] == toldDrawn) || (status == "drawn" && pl.ids[i] != id) {
			pq.mismatches.Add(1)
		}
		pl.mu.Unlock()
		if byFrame {
			pq.strayFrames.Add(1)
		}
		return
	}
	if status != "drawn" && status != "refused" {
		pl.mu.Unlock()
		pq.undrawn.Add(1) // still "prequeued" after the draw: the draw missed it
		return
	}
	pl.told[i], pl.ids[i] = toldRefused, id
	if status == "drawn" {
		pl.told[i] = toldDrawn
	}
	pl.left--
	complete := byFrame && pl.left == 0 && !pl.reading
	if complete {
		pl.done = true
	}
	pl.mu.Unlock()
	if st.pre[i] == preUnknown {
		pq.unknownFound.Add(1)
	}
	if byFrame {
		pq.byFrame.Add(1)
	} else {
		pq.byGET.Add(1)
	}
	switch status {
	case "drawn":
		pq.drawn.Add(1)
		r.c.admitted.Add(1)
		rec := &reqRec{ID: id, Student: st.tok.StudentID, Course: st.cart[i], Ticket: id, st: st,
			SentAt: at, AdmittedAt: at, FirstPos: pos, LastPos: pos}
		if r.tr.add(rec) { // else a request id drawn for two entries: counted as duplicated
			if st.ws != nil {
				st.ws.adopt(rec) // queue-ws watches a drawn request itself (positions.tellDrawn)
			}
			if st.cancel[i] {
				r.actions.Add(1)
				go r.cancelLater(pq.ctx, rec)
			}
		}
	case "refused":
		if code == "" {
			code = "refused"
		}
		pq.mu.Lock()
		pq.refused[code]++
		pq.mu.Unlock()
		r.refuse(r.c.refused, code)
	}
	if complete {
		pq.finish(st, at, true)
	}
}

// finish counts a student who knows every outcome of its entries (at, run
// clock), told by drawn frames alone (ws) or after reading its list.
func (pq *prequeueRun) finish(st *student, at int64, ws bool) {
	storeMax(&pq.learnDone, at)
	pq.learners.Add(1)
	if ws {
		pq.viaWS.Add(1)
	} else {
		pq.viaGET.Add(1)
	}
	pq.mu.Lock()
	pq.knowMS = append(pq.knowMS, float64(at-pq.callNs.Load())/1e6)
	pq.mu.Unlock()
	pq.pending.Add(-1)
}

// learn waits until every student with entries knows their outcomes. The
// students with a queue-ws session are told by drawn frames during the
// draw, and read GET /me/requests only if the opened frame finds an entry
// untold (drawFrame), or if no opened frame came at all (the fallback). The
// students without one read GET /me/requests once, spread uniformly over
// the opened notice's spread_ms from its arrival (as their pages would be
// told it; without any opened frame, over queue.OpenedSpread from the
// window's opening).
func (r *run) learn(ctx context.Context, pq *prequeueRun) {
	defer pq.sched.close()
	if pq.withSession > 0 { // the notice is on its way: its spread is the server's
		for t0 := time.Now(); time.Since(t0) < 2*time.Second && ctx.Err() == nil; time.Sleep(10 * time.Millisecond) {
			pq.mu.Lock()
			got := pq.firstOpened != 0
			pq.mu.Unlock()
			if got {
				break
			}
		}
	}
	base, spread := pq.windowAt, queue.OpenedSpread(pq.status.Students)
	pq.mu.Lock()
	if pq.firstOpened != 0 {
		base, spread = r.start.Add(time.Duration(pq.firstOpened)), pq.openedSpread
	}
	pq.mu.Unlock()
	pq.readSpread = spread
	for _, st := range pq.todo {
		if st.ws != nil {
			continue
		}
		if st.pl.claimRead() {
			pq.readsNoSession.Add(1)
			pq.sched.add(st, base.Add(randDur(spread)))
		}
	}
	r.logf("learning: %d students with entries, %d told on their queue-ws sessions (%d drawn frames so far), %d read GET /me/requests spread over %s",
		len(pq.todo), pq.withSession, pq.drawnFrames.Load(), pq.readsNoSession.Load(), spread)
	fallback := base.Add(spread + readFallback)
	fellBack := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for pq.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !fellBack && time.Now().After(fallback) {
			fellBack = true
			for _, st := range pq.todo {
				if st.pl.claimRead() {
					pq.readsFallback.Add(1)
					pq.sched.add(st, time.Now())
				}
			}
			if n := pq.readsFallback.Load(); n > 0 {
				r.logf("learning: %d students with a session got neither every outcome nor an opened frame: they read GET /me/requests", n)
			}
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			r.logf("  learning: %d of %d students know their outcomes (%d by drawn frames, %d by GET)",
				pq.learners.Load(), len(pq.todo), pq.viaWS.Load(), pq.viaGET.Load())
		}
	}
	r.logf("learned: %d students know their outcomes %.2fs after the opening call: %d by drawn frames alone, %d by GET /me/requests; %d drawn, %d refused",
		pq.learners.Load(), pq.learnedS(r.start), pq.viaWS.Load(), pq.viaGET.Load(), pq.drawn.Load(), sum(pq.refusedSnapshot()))
}

// learnRetryPause is the pause before a student's read of GET /me/requests
// after a 5xx, times the attempt (1, 2, ... 5).
var learnRetryPause = time.Second

// learnOne reads st's outcomes with GET /me/requests (unless drawn frames
// told them all meanwhile) and applies those not told yet.
func (r *run) learnOne(ctx context.Context, st *student, pq *prequeueRun) {
	pl := st.pl
	pl.mu.Lock()
	if pl.done {
		pl.mu.Unlock()
		return
	}
	if pl.left == 0 { // drawn frames told it everything meanwhile: no read
		pl.done = true
		pl.mu.Unlock()
		pq.finish(st, r.now(), true)
		return
	}
	pl.mu.Unlock()
	var v myRequests
	var err error
	for attempt := 0; ; attempt++ {
		t0 := time.Now()
		v, err = r.api.myRequests(ctx, st.who())
		code := errCode(err)
		if code == "" {
			pq.mu.Lock()
			pq.learnLatMS = append(pq.learnLatMS, float64(time.Since(t0))/1e6)
			pq.mu.Unlock()
			break
		}
		if ctx.Err() != nil {
			break
		}
		var ae *apiError
		if code == "rate_limited" && attempt < 5 && errors.As(err, &ae) {
			r.c.retries429.Add(1)
			sleepCtx(ctx, min(max(ae.RetryAfter, 100*time.Millisecond), 2*time.Second))
			continue
		}
		if code == "transport" && attempt < 3 {
			sleepCtx(ctx, time.Duration(50*(attempt+1))*time.Millisecond)
			continue
		}
		if serverError(err) && attempt < 5 {
			// The page reads again on its next tick after a failed read
			// (web/js/queue.js, readDraw); here sooner, so the run stays short.
			pq.learnRetries.Add(1)
			sleepCtx(ctx, time.Duration(attempt+1)*learnRetryPause)
			continue
		}
		break
	}
	if err != nil {
		pq.mu.Lock()
		pq.learnErrs[errCode(err)]++
		pq.mu.Unlock()
		pl.mu.Lock()
		for i, s := range st.pre {
			if s == preEntered && pl.told[i] == toldNot {
				pq.unlearned.Add(1)
			}
		}
		pl.done = true
		pl.mu.Unlock()
		pq.pending.Add(-1)
		return
	}
	done := r.now()
	pos := map[int64]int64{}
	for _, q := range v.Requests {
		if q.Status == "queued" {
			pos[q.RequestID] = q.Position
		}
	}
	seen := make([]bool, len(st.cart))
	for _, e := range v.Prequeue {
		i := slices.Index(st.cart, e.CourseID)
		if i < 0 || st.pre[i] == preNone || seen[i] {
			continue // not an entry of this run (an earlier round's, say)
		}
		seen[i] = true
		p, ok := pos[e.RequestID]
		if !ok {
			p = math.MaxInt64 // decided already: no position was shown
		}
		r.tell(pq, st, i, e.Status, e.RequestID, e.Error, p, done, false)
	}
	pl.mu.Lock()
	for i, s := range st.pre {
		if s == preEntered && !seen[i] && pl.told[i] == toldNot {
			pq.missing.Add(1) // answered prequeued, gone from the student's list
		}
	}
	pl.done = true
	pl.mu.Unlock()
	pq.finish(st, done, false)
}

// readSched runs the students' reads of GET /me/requests, each at its
// time, at most -concurrency at once.
type readSched struct {
	mu   sync.Mutex
	h    readHeap
	wake chan struct{}
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

type readAt struct {
	at time.Time
	st *student
}

type readHeap []readAt

func (h readHeap) Len() int           { return len(h) }
func (h readHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h readHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readHeap) Push(x any)        { *h = append(*h, x.(readAt)) }
func (h *readHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (r *run) startReads(ctx context.Context, pq *prequeueRun) *readSched {
	s := &readSched{wake: make(chan struct{}, 1), stop: make(chan struct{})}
	jobs := make(chan *student)
	for range r.cfg.Concurrency {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for st := range jobs {
				r.learnOne(ctx, st, pq)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(jobs)
		s.dispatch(ctx, jobs)
	}()
	return s
}

// add schedules st's read at at.
func (s *readSched) add(st *student, at time.Time) {
	s.mu.Lock()
	heap.Push(&s.h, readAt{at: at, st: st})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *readSched) dispatch(ctx context.Context, jobs chan<- *student) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var next *student
		wait := time.Hour
		s.mu.Lock()
		if len(s.h) > 0 {
			if d := time.Until(s.h[0].at); d <= 0 {
				next = heap.Pop(&s.h).(readAt).st
			} else {
				wait = d
			}
		}
		s.mu.Unlock()
		if next != nil {
			select {
			case jobs <- next:
				continue
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			}
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.wake:
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		}
	}
}

// close stops the reads (those not started are dropped) and waits for the
// ones under way.
func (s *readSched) close() {
	if s == nil {
		return
	}
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
}

func (pq *prequeueRun) refusedSnapshot() map[string]int64 {
	pq.mu.Lock()
	defer pq.mu.Unlock()
	return maps.Clone(pq.refused)
}

// learnedS is the time from the opening call to the moment the last
// student knew every outcome of its entries.
func (pq *prequeueRun) learnedS(start time.Time) float64 {
	last, call := pq.learnDone.Load(), pq.callNs.Load()
	if last == 0 || call == 0 {
		return 0
	}
	return round3(max(float64(last-call)/1e9, 0))
}

// learnedAfterWindowS is the same from the opening call's return (negative
// when every student knew before it returned).
func (pq *prequeueRun) learnedAfterWindowS(start time.Time) float64 {
	last := pq.learnDone.Load()
	if last == 0 || pq.windowAt.IsZero() {
		return 0
	}
	return round3(start.Add(time.Duration(last)).Sub(pq.windowAt).Seconds())
}

// prequeueReport is the report's "prequeue" section (-prequeue runs only).
type prequeueReport struct {
	Note         string           `json:"note"`
	DurationS    float64          `json:"duration_s"`     // the entries were spread over this long before the opening
	Arrivals     string           `json:"arrivals"`       // how: uniform over duration_s
	EntriesSent  int64            `json:"entries_sent"`   // POST /enrollments while the pre-queue was open
	Prequeued    int64            `json:"prequeued"`      // answered 202 prequeued
	ErrorsByCode map[string]int64 `json:"errors_by_code"` // the other answers, by error code
	EntriesSpanS float64          `json:"entries_span_s"` // first entry sent → last answer
	OpenedAtS    float64          `json:"window_opened_at_s"`

	// GET /admin/prequeue after the opening.
	Students      int64     `json:"students"`       // pre-queued students
	ServerEntries int64     `json:"server_entries"` // entries the server counted this round
	TotalDrawn    int64     `json:"total_drawn"`    // entries in the drawn order
	Cursor        int64     `json:"cursor"`         // entries of it admitted or refused
	State         string    `json:"state"`          // done
	Seed          uint64    `json:"seed"`
	DrawStartedAt time.Time `json:"draw_started_at,omitzero"`
	DrawDoneAt    time.Time `json:"draw_done_at,omitzero"`
	ServerDrawS   float64   `json:"server_draw_s"` // draw_done_at − draw_started_at

	// admitted_s: from sending the opening call to the draw's end at the
	// server (draw_done_at; loadgen runs on the server's host, so one
	// clock): every entry holds its place in line then. draw_s adds the
	// answer's way back through nginx to a harness busy with 100,000
	// sessions.
	AdmittedS    float64 `json:"admitted_s"`
	DrawS        float64 `json:"draw_s"`          // POST /admin/window open=true, client side: the draw + the opening
	DrawRatePerS float64 `json:"draw_rate_per_s"` // total_drawn / draw_s
	OpenAttempts int     `json:"open_attempts"`   // 1 unless the opening had to be resumed

	// How the students learned their entries' outcomes, as the web page
	// does: drawn frames on a queue-ws session waiting for the draw, GET
	// /me/requests without one (or for entries no drawn frame told).
	LearnedS            float64          `json:"learned_s"`                   // the opening call → the last student knows every outcome of its entries
	LearnedAfterWindowS float64          `json:"learned_after_window_open_s"` // the same from the call's return (the window open; negative: all knew before)
	TimeToKnowMS        Percentiles      `json:"time_to_know_ms"`             // per student: the opening call → it knows every outcome
	Learners            int64            `json:"learners"`                    // students who know every outcome (of those with entries)
	WithSession         int64            `json:"learners_with_session"`       // students with entries and a queue-ws session waiting for the draw
	LearnedViaWS        int64            `json:"learned_via_ws"`              // told every outcome by drawn frames: no HTTP read
	LearnedViaGET       int64            `json:"learned_via_get"`             // read GET /me/requests
	ReadsNoSession      int64            `json:"reads_without_session"`       // GETs of students without a session
	ReadsMissing        int64            `json:"reads_entries_untold"`        // GETs after the opened frame found an entry untold
	ReadsFallback       int64            `json:"reads_fallback"`              // GETs with a session but no opened frame in time
	ReadSpreadMS        int64            `json:"read_spread_ms"`              // the sessionless reads' spread (the opened frame's spread_ms, else OpenedSpread)
	EntriesByFrame      int64            `json:"entries_told_by_frame"`       // outcomes told by a drawn frame
	EntriesByGET        int64            `json:"entries_read_by_get"`         // outcomes read with GET /me/requests
	DrawnFrames         int64            `json:"drawn_frames"`                // drawn frames received
	OpenedFrames        int64            `json:"opened_frames"`               // opened frames received
	StrayFrames         int64            `json:"stray_drawn_frames"`          // drawn frames for no entry of the student, or told before
	FrameGETMismatches  int64            `json:"frame_get_mismatches"`        // a drawn frame and the student's list disagreed (0 in a clean run)
	LearnErrors         map[string]int64 `json:"learn_errors,omitempty"`      // students whose read failed for good, by code
	LearnRetries        int64            `json:"learn_retries"`               // reads tried again after a 5xx (up to 5 per student)
	// Drawn frames from queue-ws's send (the frame's ts) to loadgen's
	// reading it: nginx, loopback, the ws-holders and their pipe to
	// loadgen. Set beside time_to_know_ms, it splits how late a student
	// learns between the servers and the way to the page.
	DrawnFrameLagMS Percentiles `json:"drawn_frame_lag_ms"`
	LearnLatencyMS  Percentiles `json:"learn_latency_ms"` // GET /me/requests

	// The outcomes the students read: every entry answered prequeued is
	// drawn (admitted, with a request id) or refused, exactly once.
	Admitted       int64            `json:"admitted"`        // drawn: admitted requests (they follow the normal path)
	RefusedByCode  map[string]int64 `json:"refused_by_code"` // drawn and refused (sold_out: the seat hint), by code
	Undrawn        int64            `json:"undrawn"`         // still prequeued after the draw (counted as lost)
	Missing        int64            `json:"missing"`         // answered prequeued, absent from the student's list (counted as lost)
	Unlearned      int64            `json:"unlearned"`       // the student could not read its list (counted as unresolved)
	Unacknowledged int64            `json:"unacknowledged"`  // entries whose answer was lost, found in the list (drawn or refused)

	CPUEntries map[string]float64 `json:"cpu_seconds_entries"` // CPU seconds of each process group while the entries were sent
	CPUDraw    map[string]float64 `json:"cpu_seconds_draw"`    // during the opening call (the draw)
}

const prequeueNote = "admission is the draw at the opening: the students sent their requests into the pre-queue " +
	"before the window opened (202 prequeued, no ticket); opening the window drew them and admitted every entry " +
	"in drawn order. admitted_s (from sending the opening call to the draw's end at the server) is this mode's admission time; draw_s is the call until its answer came back; admission_span_s and admit_rate_per_s " +
	"are the draw's, admission_latency_ms is the answer to a pre-queue entry. The students learned their outcomes " +
	"as the web page does: with a queue-ws session (draw=1) by drawn frames during the draw, reading GET " +
	"/me/requests only for entries still untold at the opened frame; without one by one GET /me/requests, the reads " +
	"spread over the opened notice's spread_ms. learned_s and time_to_know_ms count from the opening call, time to " +
	"result from the student's learning its request id, and the series and CPU seconds from the pre-queue's opening."

// report assembles the prequeue section.
func (pq *prequeueRun) report(r *run) *prequeueReport {
	st := pq.status
	p := &prequeueReport{Note: prequeueNote, DurationS: round3(r.cfg.Prequeue.Seconds()), Arrivals: "uniform",
		EntriesSent: r.c.sent.Load(), Prequeued: r.c.prequeued.Load(), ErrorsByCode: pq.errs, EntriesSpanS: pq.spanS,
		Students: st.Students, ServerEntries: st.Entries, TotalDrawn: st.Total, Cursor: st.Cursor, State: st.State,
		Seed: uint64(st.Seed), DrawStartedAt: st.StartedAt, DrawDoneAt: st.DoneAt, DrawS: round3(pq.drawDur.Seconds()),
		OpenAttempts: pq.attempts, LearnedS: pq.learnedS(r.start), LearnedAfterWindowS: pq.learnedAfterWindowS(r.start),
		Learners: pq.learners.Load(), WithSession: int64(pq.withSession), LearnedViaWS: pq.viaWS.Load(), LearnedViaGET: pq.viaGET.Load(),
		ReadsNoSession: pq.readsNoSession.Load(), ReadsMissing: pq.readsMissing.Load(), ReadsFallback: pq.readsFallback.Load(),
		LearnRetries: pq.learnRetries.Load(),
		ReadSpreadMS: pq.readSpread.Milliseconds(), EntriesByFrame: pq.byFrame.Load(), EntriesByGET: pq.byGET.Load(),
		DrawnFrames: pq.drawnFrames.Load(), OpenedFrames: pq.openedFrames.Load(), StrayFrames: pq.strayFrames.Load(),
		FrameGETMismatches: pq.mismatches.Load(), Admitted: pq.drawn.Load(), RefusedByCode: pq.refusedSnapshot(), Undrawn: pq.undrawn.Load(),
		Missing: pq.missing.Load(), Unlearned: pq.unlearned.Load(), Unacknowledged: pq.unknownFound.Load(),
		CPUEntries: withOther(pq.cpuEnter), CPUDraw: withOther(pq.cpuDraw)}
	if p.ErrorsByCode == nil {
		p.ErrorsByCode = map[string]int64{}
	}
	if !pq.windowAt.IsZero() {
		p.OpenedAtS = round3(pq.windowAt.Sub(pq.openedAt).Seconds())
	}
	if !st.StartedAt.IsZero() && st.DoneAt.After(st.StartedAt) {
		p.ServerDrawS = round3(st.DoneAt.Sub(st.StartedAt).Seconds())
	}
	if !st.DoneAt.IsZero() && !pq.callAt.IsZero() && st.DoneAt.After(pq.callAt) {
		p.AdmittedS = round3(st.DoneAt.Sub(pq.callAt).Seconds())
	}
	if p.DrawS > 0 {
		p.DrawRatePerS = round1(float64(st.Total) / p.DrawS)
	}
	pq.mu.Lock()
	if len(pq.learnErrs) > 0 {
		p.LearnErrors = maps.Clone(pq.learnErrs)
	}
	p.LearnLatencyMS = summarize(slices.Clone(pq.learnLatMS))
	p.TimeToKnowMS = summarize(slices.Clone(pq.knowMS))
	p.DrawnFrameLagMS = summarize(slices.Clone(pq.frameLagMS))
	pq.mu.Unlock()
	return p
}

// accounted reports whether every entry answered prequeued (and every one
// whose answer was lost but the list showed) was drawn or refused.
func (p *prequeueReport) accounted() bool {
	return p.Undrawn == 0 && p.Missing == 0 && p.Unlearned == 0 && p.FrameGETMismatches == 0 &&
		p.Admitted+sum(p.RefusedByCode) == p.Prequeued+p.Unacknowledged
}

// prequeueLines is the summary's pre-queue part.
func prequeueLines(p *prequeueReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  pre-queue (admission is the draw at the opening): %d entries sent over %gs, %d prequeued, errors %v; %d students, %d entries drawn (seed %d, %s)\n",
		p.EntriesSent, p.DurationS, p.Prequeued, p.ErrorsByCode, p.Students, p.TotalDrawn, p.Seed, p.State)
	if l := p.DrawnFrameLagMS; l.N > 0 {
		fmt.Fprintf(&b, "  drawn frames from queue-ws's send to loadgen: p50/p95/p99 %g/%g/%g ms (%d frames)\n", l.P50, l.P95, l.P99, l.N)
	}
	fmt.Fprintf(&b, "  draw: all admitted %.3fs after the opening call was sent (admitted_s; server draw %.3fs), the call answered after %.3fs (draw_s, %.0f entries/s), %d admitted, refused %v\n",
		p.AdmittedS, p.ServerDrawS, p.DrawS, p.DrawRatePerS, p.Admitted, p.RefusedByCode)
	fmt.Fprintf(&b, "  learned: learned_s %.3fs after the opening call (%.3fs after the window opened), %d students know, time to know p50/p99 %g/%g ms; via ws frames %d, via GET %d (no session %d, entries untold %d, no opened frame %d; GET p99 %g ms, spread %d ms); frames drawn %d, opened %d, stray %d\n",
		p.LearnedS, p.LearnedAfterWindowS, p.Learners, p.TimeToKnowMS.P50, p.TimeToKnowMS.P99, p.LearnedViaWS, p.LearnedViaGET,
		p.ReadsNoSession, p.ReadsMissing, p.ReadsFallback, p.LearnLatencyMS.P99, p.ReadSpreadMS, p.DrawnFrames, p.OpenedFrames, p.StrayFrames)
	if !p.accounted() {
		fmt.Fprintf(&b, "  pre-queue entries NOT all accounted for: undrawn %d, missing %d, unlearned %d, frame/GET mismatches %d\n",
			p.Undrawn, p.Missing, p.Unlearned, p.FrameGETMismatches)
	}
	return b.String()
}

// transient reports whether a failed admin call may succeed if made again:
// the connection failed, or nginx or the api answered with a server error.
func transient(err error) bool {
	return errCode(err) == "transport" || serverError(err)
}

// serverError reports whether err is an HTTP 5xx answer: the api's own
// (unavailable, internal, opening) or nginx's (bad_gateway,
// gateway_timeout; once HTML pages, http_5xx).
func serverError(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status >= 500
}
