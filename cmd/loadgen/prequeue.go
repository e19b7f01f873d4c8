package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// -prequeue D: registration day with the pre-queue (a lottery at the
// opening; internal/queue/prequeue.go). With the window still closed the
// registrar opens the pre-queue, the students send their carts into it over
// D (every request answers 202 prequeued: an entry, no ticket), then the
// registrar opens the window, which first draws: the pre-queued students
// shuffled, every entry admitted into the line in drawn order (a ticket,
// or refused: sold_out, ...). So in this mode admission is the draw at the
// opening, and its time is the time of that one call (draw_s). Each student
// then reads the outcome of its entries with GET /me/requests (learned_s),
// watches its drawn requests on its queue-ws session, and from there on the
// run is the normal one: cancels, polls, drops, MariaDB verification and
// every law, on the drawn requests.

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
	learnDone atomic.Int64       // run clock of the last student's reading of its outcome

	learners, drawn, undrawn, missing, unknownFound, unlearned atomic.Int64

	mu         sync.Mutex
	refused    map[string]int64 // drawn entries refused, by code
	learnErrs  map[string]int64
	learnLatMS []float64
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
	for pq.attempts = 1; ; pq.attempts++ {
		err := slow.setWindow(ctx, admin, true)
		if err == nil {
			break
		}
		code := errCode(err)
		again := code == "transport" || strings.HasPrefix(code, "http_5") || code == "unavailable" || code == "internal"
		if !again || pq.attempts >= 5 || ctx.Err() != nil {
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
	st, err := r.api.prequeue(ctx, admin)
	if err != nil {
		return err
	}
	pq.status = st
	r.logf("window open after %.2fs: the draw admitted %d entries of %d students in drawn order (state %s, seed %d)",
		pq.drawDur.Seconds(), st.Total, st.Students, st.State, st.Seed)
	return nil
}

// learn has every student with entries read their outcome (GET
// /me/requests), cfg.Concurrency students at a time: a drawn entry becomes
// an admitted request (tracked, watched on the student's queue-ws session,
// maybe cancelled), a refused one a refusal by its code.
func (r *run) learn(ctx context.Context, pq *prequeueRun) {
	var todo []*student
	for _, st := range r.students {
		if slices.ContainsFunc(st.pre, func(s uint8) bool { return s != preNone }) {
			todo = append(todo, st)
		}
	}
	jobs := make(chan *student)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range jobs {
				r.learnOne(ctx, st, pq)
			}
		}()
	}
	for _, st := range todo {
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- st:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	r.logf("learned: %d students read their outcome in %.2fs: %d drawn, %d refused",
		pq.learners.Load(), pq.learnedS(r.start), pq.drawn.Load(), sum(pq.refusedSnapshot()))
}

func (r *run) learnOne(ctx context.Context, st *student, pq *prequeueRun) {
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
		break
	}
	if err != nil {
		pq.mu.Lock()
		pq.learnErrs[errCode(err)]++
		pq.mu.Unlock()
		for _, s := range st.pre {
			if s == preEntered {
				pq.unlearned.Add(1)
			}
		}
		return
	}
	done := r.now()
	storeMax(&pq.learnDone, done)
	pq.learners.Add(1)
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
		if st.pre[i] == preUnknown {
			pq.unknownFound.Add(1)
		}
		switch e.Status {
		case "drawn":
			pq.drawn.Add(1)
			r.c.admitted.Add(1)
			p, ok := pos[e.RequestID]
			if !ok {
				p = math.MaxInt64 // decided already: no position was shown
			}
			rec := &reqRec{ID: e.RequestID, Student: st.tok.StudentID, Course: e.CourseID, Ticket: e.RequestID, st: st,
				SentAt: done, AdmittedAt: done, FirstPos: p, LastPos: p}
			if !r.tr.add(rec) {
				continue // a request id drawn for two entries: counted as duplicated
			}
			if st.ws != nil {
				st.ws.watch(rec)
			}
			if st.cancel[i] {
				r.actions.Add(1)
				go r.cancelLater(ctx, rec)
			}
		case "refused":
			code := e.Error
			if code == "" {
				code = "refused"
			}
			pq.mu.Lock()
			pq.refused[code]++
			pq.mu.Unlock()
			r.refuse(r.c.refused, code)
		default: // still "prequeued" after the draw: the draw missed it
			pq.undrawn.Add(1)
		}
	}
	for i, s := range st.pre {
		if s == preEntered && !seen[i] {
			pq.missing.Add(1) // answered prequeued, gone from the student's list
		}
	}
}

func (pq *prequeueRun) refusedSnapshot() map[string]int64 {
	pq.mu.Lock()
	defer pq.mu.Unlock()
	return maps.Clone(pq.refused)
}

// learnedS is the time from the window's opening to the last student's
// reading of its outcome.
func (pq *prequeueRun) learnedS(start time.Time) float64 {
	last := pq.learnDone.Load()
	if last == 0 || pq.windowAt.IsZero() {
		return 0
	}
	return round3(max(start.Add(time.Duration(last)).Sub(pq.windowAt).Seconds(), 0))
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

	DrawS        float64 `json:"draw_s"`          // POST /admin/window open=true, client side: the draw + the opening
	DrawRatePerS float64 `json:"draw_rate_per_s"` // total_drawn / draw_s
	OpenAttempts int     `json:"open_attempts"`   // 1 unless the opening had to be resumed

	LearnedS       float64          `json:"learned_s"` // window open → the last student has read its outcome (GET /me/requests)
	Learners       int64            `json:"learners"`  // students who read it
	LearnErrors    map[string]int64 `json:"learn_errors,omitempty"`
	LearnLatencyMS Percentiles      `json:"learn_latency_ms"`

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
	"in drawn order. draw_s (the opening call) is this mode's admission time, admission_span_s and admit_rate_per_s " +
	"are the draw's, admission_latency_ms is the answer to a pre-queue entry, time to result counts from the " +
	"student's reading of its request id (GET /me/requests), and the series and CPU seconds count from the " +
	"pre-queue's opening."

// report assembles the prequeue section.
func (pq *prequeueRun) report(r *run) *prequeueReport {
	st := pq.status
	p := &prequeueReport{Note: prequeueNote, DurationS: round3(r.cfg.Prequeue.Seconds()), Arrivals: "uniform",
		EntriesSent: r.c.sent.Load(), Prequeued: r.c.prequeued.Load(), ErrorsByCode: pq.errs, EntriesSpanS: pq.spanS,
		Students: st.Students, ServerEntries: st.Entries, TotalDrawn: st.Total, Cursor: st.Cursor, State: st.State,
		Seed: uint64(st.Seed), DrawStartedAt: st.StartedAt, DrawDoneAt: st.DoneAt, DrawS: round3(pq.drawDur.Seconds()),
		OpenAttempts: pq.attempts, LearnedS: pq.learnedS(r.start), Learners: pq.learners.Load(),
		Admitted: pq.drawn.Load(), RefusedByCode: pq.refusedSnapshot(), Undrawn: pq.undrawn.Load(),
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
	if p.DrawS > 0 {
		p.DrawRatePerS = round1(float64(st.Total) / p.DrawS)
	}
	pq.mu.Lock()
	if len(pq.learnErrs) > 0 {
		p.LearnErrors = maps.Clone(pq.learnErrs)
	}
	p.LearnLatencyMS = summarize(slices.Clone(pq.learnLatMS))
	pq.mu.Unlock()
	return p
}

// accounted reports whether every entry answered prequeued (and every one
// whose answer was lost but the list showed) was drawn or refused.
func (p *prequeueReport) accounted() bool {
	return p.Undrawn == 0 && p.Missing == 0 && p.Unlearned == 0 &&
		p.Admitted+sum(p.RefusedByCode) == p.Prequeued+p.Unacknowledged
}

// prequeueLines is the summary's pre-queue part.
func prequeueLines(p *prequeueReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  pre-queue (admission is the draw at the opening): %d entries sent over %gs, %d prequeued, errors %v; %d students, %d entries drawn (seed %d, %s)\n",
		p.EntriesSent, p.DurationS, p.Prequeued, p.ErrorsByCode, p.Students, p.TotalDrawn, p.Seed, p.State)
	fmt.Fprintf(&b, "  draw: opening call (draw_s) %.3fs (server %.3fs, %.0f entries/s), %d admitted, refused %v; learned_s %.3fs by %d students (p99 %g ms)\n",
		p.DrawS, p.ServerDrawS, p.DrawRatePerS, p.Admitted, p.RefusedByCode, p.LearnedS, p.Learners, p.LearnLatencyMS.P99)
	if !p.accounted() {
		fmt.Fprintf(&b, "  pre-queue entries NOT all accounted for: undrawn %d, missing %d, unlearned %d\n", p.Undrawn, p.Missing, p.Unlearned)
	}
	return b.String()
}
