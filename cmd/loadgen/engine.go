package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
	"github.com/enrollq/enrollq/internal/queue"
)

// config is everything one run needs; main fills it from flags.
type config struct {
	BaseURL       string        // nginx (or an api) on loopback
	Students      int           // students to simulate
	TokensFile    string        // prepared tokens (enrollctl issue-tokens); empty: issue in process
	Ramp          time.Duration // arrivals spread over this long
	Shape         string        // burst | uniform | step
	Concurrency   int           // students in flight at once
	PopularShare  float64       // share of cart picks aimed at the popular sections
	PopularCount  int           // how many sections are popular
	CartMin       int
	CartMax       int
	CancelRate    float64 // share of admitted requests the student leaves
	DropRate      float64 // share of students who drop a course they got
	WS            bool
	WSShare       float64  // share of students with a queue-ws connection
	WSDirect      []string // dial these queue-ws endpoints instead of going through BaseURL
	APIMetrics    string   // api instances whose /metrics give the server-side admission latency
	WSGrace       time.Duration
	WSMax         int           // cap on queue-ws connections (0: what the open-files limits allow)
	WSProcs       int           // processes holding the queue-ws connections: 0 auto, 1 this one, N ws-holder children
	WSHolderBin   string        // program started as `<bin> ws-holder` (default: this executable)
	Hold          time.Duration // hold the open sessions idle this long before the window opens
	Prequeue      time.Duration // > 0: send the carts into the pre-queue over this long, then open (the draw)
	Poll          bool          // students without queue-ws poll for their decision
	Sources       string        // local source address range
	ClientIPs     int           // simulated client addresses (X-Forwarded-For): 0 one per student, -1 none
	MaxDuration   time.Duration
	DBDSN         string
	RedisAddr     string
	Term          string
	TokenSecret   string
	TokenTTL      time.Duration
	AdminUser     string
	AdminPassword string
	Reset         bool
	Ensure        bool
	StudentPW     string
	BcryptCost    int
	Seed          uint64
	Out           string
	BaselinesFile string
	CloseWindow   bool
	ProgressEvery time.Duration
	Quiet         bool
	Stdout        io.Writer
}

// counters of the run (all safe for concurrent use).
type counters struct {
	sent, answered, admitted, transport      atomic.Int64
	transportRetries                         atomic.Int64 // admissions sent again: answer lost (transport, 502/503/504) or 503 opening
	unavailable                              atomic.Int64 // admission answers 502, 503 unavailable, 504
	replayed                                 atomic.Int64 // admission answers with Idempotent-Replayed: true
	unknownOutcome                           atomic.Int64 // admissions whose answer stayed unknown after every retry
	retries429                               atomic.Int64
	cancelsSent, cancelsOK, cancelsLate      atomic.Int64
	cancelErrors                             atomic.Int64
	dropsSent, dropsOK, dropErrors           atomic.Int64
	wsDials, wsDialErrors, wsReconnects      atomic.Int64
	wsDrops, wsWriteErrors                   atomic.Int64
	positionFrames, resultFrames, badFrames  atomic.Int64
	errorFrames, unknownFrames, otherFrames  atomic.Int64
	polls, pollErrors, pollResults           atomic.Int64
	firstSent, lastAdmitted, lastAnswered    atomic.Int64
	prequeued                                atomic.Int64 // 202 prequeued (-prequeue)
	lastResult                               atomic.Int64
	refusedMu                                sync.Mutex
	refused                                  map[string]int64 // admission refusals by error code
	wsErrors                                 map[string]int64 // error frames by code
	connectErrors                            map[string]int64
	pollErrorCodes                           map[string]int64 // poll errors by code
	ambiguous                                [][2]int64       // (student, course) whose admission answer was lost
	unknown                                  [][2]int64       // of those, the ones never answered after every retry
	wsConnectFailed, wsConnected, wsStudents atomic.Int64
}

// student is one simulated student and their plan.
type student struct {
	idx     int32
	tok     students.Token
	cart    []int64
	cancel  []bool    // per cart item: leave the line after admission
	pre     []uint8   // per cart item, -prequeue: preEntered, preUnknown (written by fire, read after the burst)
	pl      *preLearn // -prequeue, a student with entries: what it knows of their outcomes (prepareLearn)
	offset  time.Duration
	withWS  bool
	drop    bool
	dropped atomic.Bool
	ws      wsLink
	ip      string // simulated client address (X-Forwarded-For), "" for none
}

func (st *student) who() cred { return cred{Token: st.tok.Token, IP: st.ip} }

// clientIP is the simulated address of student i among n addresses: students
// share addresses round-robin (n ≥ students: one each), in 10.0.0.0/8.
func clientIP(i, n int) string {
	j := i % n
	return fmt.Sprintf("10.%d.%d.%d", (j>>16)&255, (j>>8)&255, j&255)
}

// run is one load run.
type run struct {
	cfg    config
	start  time.Time    // the run's clock; burst offsets count from open
	openNs atomic.Int64 // when the window opened (openedAt); read by the monitor, running since before
	// With -prequeue, when the pre-queue opened: the series and the CPU
	// figures count from here (seriesZero); 0 otherwise.
	seriesNs atomic.Int64
	// With -prequeue, the pre-queue phase, once the students wait for the
	// draw (prepareLearn): drawn and opened frames apply to it.
	pq atomic.Pointer[prequeueRun]

	api *api
	src *sourceAddrs
	db  *sqlx.DB
	rdb *redis.Client
	q   *queue.Redis

	keyPrefix string // of the run's Idempotency-Keys (idemKey)

	tr       *tracker
	students []*student
	c        counters

	httpSockets, httpSocketsPeak atomic.Int64
	wsSockets, wsSocketsPeak     atomic.Int64
	wsOpen, wsPeak               atomic.Int64
	wsWG                         sync.WaitGroup
	wsProcs                      []*wsProc      // ws-holder children, when they hold the connections
	wsNext                       atomic.Uint64  // round-robin over wsProcs
	actions                      sync.WaitGroup // cancels and drops in flight

	latMu     sync.Mutex
	latencies []float64 // admission answers, ms
	sendLag   []float64 // students' first request: sent − planned arrival, ms

	seriesMu sync.Mutex
	series   []point

	rss *rssMonitor
	out io.Writer
}

func newRun(cfg config) (*run, error) {
	srcs, err := parseSourceRange(cfg.Sources)
	if err != nil {
		return nil, err
	}
	var nonce [6]byte
	if _, err := crand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("idempotency key prefix: %w", err)
	}
	r := &run{cfg: cfg, start: time.Now(), src: &sourceAddrs{addrs: srcs}, tr: newTracker(), out: cfg.Stdout,
		keyPrefix: "lg" + hex.EncodeToString(nonce[:])}
	r.c.refused = map[string]int64{}
	r.c.wsErrors = map[string]int64{}
	r.c.connectErrors = map[string]int64{}
	r.c.pollErrorCodes = map[string]int64{}
	tr := &http.Transport{
		DialContext:         r.src.dialContext(&r.httpSockets, &r.httpSocketsPeak),
		MaxIdleConns:        cfg.Concurrency * 2,
		MaxIdleConnsPerHost: cfg.Concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	r.api = &api{base: cfg.BaseURL, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	if r.out == nil {
		r.out = io.Discard
	}
	return r, nil
}

func (r *run) now() int64 { return int64(time.Since(r.start)) }

func (r *run) logf(format string, args ...any) {
	if !r.cfg.Quiet {
		fmt.Fprintf(r.out, "[%6.1fs] "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
	}
}

func (r *run) noteWSOpen(d int64) {
	n := r.wsOpen.Add(d)
	for {
		p := r.wsPeak.Load()
		if n <= p || r.wsPeak.CompareAndSwap(p, n) {
			return
		}
	}
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		p := a.Load()
		if v <= p || a.CompareAndSwap(p, v) {
			return
		}
	}
}

func (r *run) refuse(m map[string]int64, code string) {
	r.c.refusedMu.Lock()
	m[code]++
	r.c.refusedMu.Unlock()
}

// planStudents gives each student a cart, an arrival offset and the dice
// rolls of the run (cancel, drop, ws), all from cfg.Seed.
func planStudents(cfg config, toks []students.Token, courses []int64) []*student {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6c6f616467656e))
	popular := make([]int64, 0, cfg.PopularCount)
	if len(courses) > 0 {
		for _, i := range rng.Perm(len(courses))[:min(cfg.PopularCount, len(courses))] {
			popular = append(popular, courses[i])
		}
	}
	out := make([]*student, len(toks))
	for i, t := range toks {
		st := &student{idx: int32(i), tok: t}
		n := cfg.CartMin
		if cfg.CartMax > cfg.CartMin {
			n += rng.IntN(cfg.CartMax - cfg.CartMin + 1)
		}
		n = min(n, len(courses))
		for len(st.cart) < n {
			var c int64
			if len(popular) > 0 && rng.Float64() < cfg.PopularShare {
				c = popular[rng.IntN(len(popular))]
			} else {
				c = courses[rng.IntN(len(courses))]
			}
			if !slices.Contains(st.cart, c) {
				st.cart = append(st.cart, c)
				st.cancel = append(st.cancel, rng.Float64() < cfg.CancelRate)
			}
		}
		if cfg.Prequeue > 0 { // before the opening nobody needs to hurry: spread over the pre-queue
			st.offset = arrival(rng, "uniform", cfg.Prequeue)
			st.pre = make([]uint8, len(st.cart))
		} else {
			st.offset = arrival(rng, cfg.Shape, cfg.Ramp)
		}
		st.withWS = cfg.WS && rng.Float64() < cfg.WSShare
		st.drop = rng.Float64() < cfg.DropRate
		if cfg.ClientIPs >= 0 {
			n := cfg.ClientIPs
			if n == 0 || n > len(toks) {
				n = len(toks)
			}
			st.ip = clientIP(i, n)
		}
		out[i] = st
	}
	return out
}

// arrival draws one student's click time after opening. "burst" is the
// registration-day shape: most students click in the first instants and the
// rest trail off (exponential with mean ramp/5, redrawn past ramp: 99% land
// in the first 92% of the ramp); "uniform" spreads evenly; "step" is everyone
// at once.
func arrival(rng *rand.Rand, shape string, ramp time.Duration) time.Duration {
	if ramp <= 0 || shape == "step" {
		return 0
	}
	if shape == "uniform" {
		return time.Duration(rng.Int64N(int64(ramp)))
	}
	for {
		d := time.Duration(rng.ExpFloat64() * float64(ramp) / 5)
		if d < ramp {
			return d
		}
	}
}

// connectAll opens the queue-ws connections of the students that have one,
// parallelism workers at a time.
func (r *run) connectAll(ctx context.Context, parallelism int) {
	d := r.wsDialer()
	var todo []*student
	for _, st := range r.students {
		if st.withWS {
			todo = append(todo, st)
		}
	}
	r.c.wsStudents.Store(int64(len(todo)))
	if len(todo) == 0 {
		return
	}
	r.logf("opening %d queue-ws connections (%d at a time) ...", len(todo), parallelism)
	t0 := time.Now()
	ch := make(chan *student)
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range ch {
				if err := r.connectWS(ctx, st, d); err != nil {
					r.c.wsConnectFailed.Add(1)
					r.refuse(r.c.connectErrors, shortErr(err))
					continue
				}
				r.c.wsConnected.Add(1)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < len(todo); {
		select {
		case <-ctx.Done():
			close(ch)
			wg.Wait()
			return
		case ch <- todo[i]:
			i++
		case <-tick.C:
			r.logf("  ws connected %d/%d, failed %d, open %d", r.c.wsConnected.Load(), len(todo), r.c.wsConnectFailed.Load(), r.wsOpen.Load())
		}
	}
	close(ch)
	wg.Wait()
	r.logf("ws connected %d/%d in %.1fs (failed %d), open %d", r.c.wsConnected.Load(), len(todo),
		time.Since(t0).Seconds(), r.c.wsConnectFailed.Load(), r.wsOpen.Load())
}

func shortErr(err error) string {
	s := errCode(err)
	if s != "transport" {
		return s
	}
	msg := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "timeout", "cannot assign requested address",
		"too many open files", "bad handshake", "EOF", "HTTP "} {
		if containsFold(msg, k) {
			return k
		}
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return msg
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		match := true
		for j := 0; j < len(sub); j++ {
			a, b := s[i+j], sub[j]
			if 'A' <= a && a <= 'Z' {
				a += 'a' - 'A'
			}
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			if a != b {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// burst sends every student's cart, each student arriving at their offset
// after at (the window's opening, or with -prequeue the pre-queue's), at
// most cfg.Concurrency students at a time.
func (r *run) burst(ctx context.Context, at time.Time) {
	order := slices.Clone(r.students)
	slices.SortStableFunc(order, func(a, b *student) int { return int(a.offset - b.offset) })
	jobs := make(chan *student, 1<<14)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range jobs {
				r.fire(ctx, st, at)
			}
		}()
	}
	for i := 0; i < len(order) && ctx.Err() == nil; {
		due := time.Since(at)
		for i < len(order) && order[i].offset <= due {
			select {
			case jobs <- order[i]:
				i++
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		if i < len(order) {
			time.Sleep(time.Millisecond)
		}
	}
	close(jobs)
	wg.Wait()
}

// fire sends one student's requests, one cart item after the other, like a
// student pressing "신청" down the cart; at is when the arrivals began.
func (r *run) fire(ctx context.Context, st *student, at time.Time) {
	// How late the student's first click goes out against the plan: the
	// time it waited for one of the -concurrency senders.
	lag := float64(time.Since(at)-st.offset) / 1e6
	r.latMu.Lock()
	r.sendLag = append(r.sendLag, max(lag, 0))
	r.latMu.Unlock()
	for i, course := range st.cart {
		r.c.sent.Add(1)
		// One key per click, the same on every retry of it: a retry after a
		// lost answer gets the click's original answer (a 202 with its
		// request id, or the refusal) and queues nothing twice.
		key := r.idemKey(st, course)
		lostAnswer := false // an earlier attempt got no answer: it may have been admitted
		answered := false
		lost := 0 // attempts whose answer was lost
		for attempt := 0; ctx.Err() == nil; attempt++ {
			sent := r.now()
			if r.c.firstSent.Load() == 0 {
				r.c.firstSent.CompareAndSwap(0, sent)
			}
			a, err := r.api.enroll(ctx, st.who(), course, key)
			done := r.now()
			code := errCode(err)
			if answerLost(err) {
				// No answer (transport), or nginx or the api could not get
				// one (502, 503 unavailable, 504): the request may or may not
				// have reached Redis. Ask again under the same key, as the
				// web client does.
				if code == "transport" {
					r.c.transport.Add(1)
				} else {
					r.c.unavailable.Add(1)
				}
				lostAnswer = true
				lost++
				if lost < lostRetry.tries {
					r.c.transportRetries.Add(1)
					sleepCtx(ctx, lostRetry.delay(lost, retryAfter(err)))
					continue
				}
				break
			}
			var ae *apiError
			if code == "opening" && attempt < 10 && errors.As(err, &ae) {
				// The pre-queue is being drawn: nothing was done; the page
				// asks again after Retry-After.
				r.c.transportRetries.Add(1)
				sleepCtx(ctx, min(max(ae.RetryAfter, 100*time.Millisecond), 2*time.Second))
				continue
			}
			r.latMu.Lock()
			r.latencies = append(r.latencies, float64(done-sent)/1e6)
			r.latMu.Unlock()
			if code == "rate_limited" && attempt < 5 && errors.As(err, &ae) {
				r.c.retries429.Add(1)
				sleepCtx(ctx, min(max(ae.RetryAfter, 100*time.Millisecond), 2*time.Second))
				continue
			}
			answered = true
			r.c.answered.Add(1)
			storeMax(&r.c.lastAnswered, done)
			if a.Replayed {
				r.c.replayed.Add(1)
			}
			if lostAnswer {
				r.noteAmbiguous(st, course)
				if code == "already_queued" && errors.As(err, &ae) && ae.RequestID > 0 {
					// The lost attempt was admitted (a server that did not
					// know the key): this is its id.
					a, err = admission{RequestID: ae.RequestID, Ticket: ae.RequestID, Position: math.MaxInt64}, nil
				}
				if code == "already_prequeued" && st.pre != nil {
					a, err = admission{Status: statusPrequeued}, nil // the lost attempt was the entry
				}
			}
			if err != nil {
				r.refuse(r.c.refused, code)
				break
			}
			if a.Status == statusPrequeued {
				// An entry: the draw at the opening gives it a ticket, or not
				// (learn reads which).
				r.c.prequeued.Add(1)
				if st.pre != nil {
					st.pre[i] = preEntered
				}
				break
			}
			r.c.admitted.Add(1)
			storeMax(&r.c.lastAdmitted, done)
			rec := &reqRec{ID: a.RequestID, Student: st.tok.StudentID, Course: course, Ticket: a.Ticket, st: st,
				SentAt: sent, AdmittedAt: done, FirstPos: a.Position, LastPos: a.Position}
			if !r.tr.add(rec) {
				break
			}
			if st.ws != nil {
				st.ws.watch(rec)
			}
			if st.cancel[i] {
				r.actions.Add(1)
				go r.cancelLater(ctx, rec)
			}
			break
		}
		if lostAnswer && !answered {
			// Every try's answer was lost (or the run ended meanwhile):
			// whether it was admitted, MariaDB tells after the run.
			r.noteUnknown(st, course)
			if st.pre != nil {
				st.pre[i] = preUnknown // the student's list will tell
			}
		}
	}
}

// idemKey is the Idempotency-Key of a student's click on course in this run
// (1–64 characters of [A-Za-z0-9_-.:]; a run of its own, since the server
// keeps a key's answer for 24 h and runs reuse students).
func (r *run) idemKey(st *student, course int64) string {
	return r.keyPrefix + "-" + strconv.FormatInt(st.tok.StudentID, 10) + "-" + strconv.FormatInt(course, 10)
}

// answerLost reports whether err leaves the admission's outcome unknown:
// no HTTP answer, or 502 / 503 / 504 — nginx could not reach an api, or the
// api could not reach Redis or MariaDB (503 unavailable; 503 opening is an
// answer: nothing was done).
func answerLost(err error) bool {
	if err == nil {
		return false
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		return true // transport
	}
	switch ae.Status {
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case http.StatusServiceUnavailable:
		return ae.Code != "opening"
	}
	return false
}

func retryAfter(err error) time.Duration {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// backoff is how loadgen retries an admission whose answer was lost: like
// the web client (web/js/api.js withRetry), tries attempts in all, the n-th
// retry after base·2^(n-1), at least the answer's Retry-After, at most max.
type backoff struct {
	tries     int
	base, max time.Duration
}

// lostRetry is the policy of the burst (tests shorten it).
var lostRetry = backoff{tries: 5, base: 500 * time.Millisecond, max: 5 * time.Second}

// delay is the pause before retry n (1, 2, ...).
func (b backoff) delay(n int, retryAfter time.Duration) time.Duration {
	d := b.base << (n - 1)
	return min(max(d, retryAfter), b.max)
}

// noteUnknown remembers a (student, section) pair whose admission outcome
// stayed unknown after every retry (and as ambiguous: see noteAmbiguous).
func (r *run) noteUnknown(st *student, course int64) {
	r.c.unknownOutcome.Add(1)
	r.c.refusedMu.Lock()
	r.c.unknown = append(r.c.unknown, [2]int64{st.tok.StudentID, course})
	r.c.ambiguous = append(r.c.ambiguous, [2]int64{st.tok.StudentID, course})
	r.c.refusedMu.Unlock()
}

// noteAmbiguous remembers a (student, section) pair whose admission answer
// was lost at least once: whatever MariaDB recorded for it was admitted by
// us, even if we never saw the id.
func (r *run) noteAmbiguous(st *student, course int64) {
	r.c.refusedMu.Lock()
	r.c.ambiguous = append(r.c.ambiguous, [2]int64{st.tok.StudentID, course})
	r.c.refusedMu.Unlock()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// cancelLater leaves the line a moment after admission, as a student who
// changed their mind does. The request may already be decided by then.
func (r *run) cancelLater(ctx context.Context, rec *reqRec) {
	defer r.actions.Done()
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(rand.Int64N(int64(1500 * time.Millisecond)))):
	}
	r.c.cancelsSent.Add(1)
	v, err := r.api.cancel(ctx, rec.st.who(), rec.ID)
	switch code := errCode(err); code {
	case "":
		r.c.cancelsOK.Add(1)
		if rec.observeResult(v.Status, v.Reason, srcCancel, r.now()) {
			r.afterResult(rec)
		}
	case "already_decided":
		r.c.cancelsLate.Add(1)
	default:
		r.c.cancelErrors.Add(1)
		r.refuse(r.c.refused, "cancel_"+code)
	}
}

// afterResult runs once per request when its decision is first known: a
// student who drops drops the first course they got.
func (r *run) afterResult(rec *reqRec) {
	storeMax(&r.c.lastResult, r.now())
	st := rec.st
	if rec.Status != "enrolled" || !st.drop || !st.dropped.CompareAndSwap(false, true) {
		return
	}
	r.actions.Add(1)
	go func() {
		defer r.actions.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.c.dropsSent.Add(1)
		if err := r.api.drop(ctx, st.who(), rec.Course); err != nil {
			r.c.dropErrors.Add(1)
			r.refuse(r.c.refused, "drop_"+errCode(err))
			return
		}
		rec.mu.Lock()
		rec.Dropped = true
		rec.mu.Unlock()
		r.c.dropsOK.Add(1)
	}()
}

// unresolved counts admitted requests whose decision loadgen does not know.
func (r *run) unresolved() int {
	n := 0
	for _, rec := range r.tr.snapshot() {
		if !rec.resolved() {
			n++
		}
	}
	return n
}

// limitWS caps the students with a queue-ws connection to what fits (see
// budget.go) and returns how many were planned, how many keep one, why
// fewer, if so, and how many ws-holder children are to hold them (0: this
// process holds them).
func (r *run) limitWS(nofile uint64) (planned, kept int, why string, children int) {
	for _, st := range r.students {
		if st.withWS {
			planned++
		}
	}
	var limits []wsBudget
	if len(r.cfg.WSDirect) == 0 {
		if p := nginxConfFor(r.cfg.BaseURL); p != "" {
			if f, err := os.Open(p); err == nil {
				l, err := parseNginxLimits(f)
				f.Close()
				if err == nil {
					limits = append(limits, l.budget(r.cfg.Concurrency))
					if l.WSInstances > 0 {
						limits = append(limits, l.queueWSBudget(nofile))
					}
				}
			}
		}
	}
	want := planned
	if r.cfg.WSMax > 0 {
		want = min(want, r.cfg.WSMax)
	} else {
		for _, l := range limits {
			want = min(want, l.Max)
		}
	}
	children, b := planWS(r.cfg.WSProcs, want, nofile, r.cfg.Concurrency, limits)
	if r.cfg.WSMax > 0 {
		if r.cfg.WSMax > b.Max {
			r.logf("warning: -ws-max %d is above what fits (%d, %s)", r.cfg.WSMax, b.Max, b.Reason)
		}
		b = wsBudget{Max: r.cfg.WSMax, Reason: "-ws-max"}
	}
	kept = capWS(r.students, b)
	children = min(children, kept) // a ws-holder without connections is of no use
	if kept < planned {
		why = fmt.Sprintf("%d of %d planned queue-ws connections: limited by %s", kept, planned, b.Reason)
		r.logf("%s; the other students poll or are verified from MariaDB", why)
	}
	return planned, kept, why, children
}

// settled reports whether every decision loadgen waits for is known: every
// watched request's (and, when polling, every request's), and the queue is
// empty.
func (r *run) settled(ctx context.Context) bool {
	quiet := 0
	for _, rec := range r.tr.snapshot() {
		rec.mu.Lock()
		st, watched := rec.Status, rec.Watched
		rec.mu.Unlock()
		if st != "" {
			continue
		}
		if r.cfg.Poll || watched {
			return false
		}
		quiet++
	}
	if quiet == 0 {
		return true
	}
	if r.q == nil {
		return false
	}
	st, err := r.q.Stats(ctx)
	return err == nil && st.Pending == 0
}

// pairReq is a request MariaDB recorded, with its (student, section).
type pairReq struct {
	ID      int64 `db:"id"`
	Student int64 `db:"student_id"`
	Course  int64 `db:"course_id"`
}

// ambiguousRequests returns the requests MariaDB recorded for the (student,
// section) pairs whose admission answer was lost.
func (r *run) ambiguousRequests(ctx context.Context) ([]pairReq, error) {
	r.c.refusedMu.Lock()
	pairs := slices.Clone(r.c.ambiguous)
	r.c.refusedMu.Unlock()
	var out []pairReq
	for len(pairs) > 0 {
		n := min(len(pairs), 500)
		q := `SELECT id, student_id, course_id FROM enrollment_requests WHERE (student_id, course_id) IN (` +
			strings.TrimSuffix(strings.Repeat("(?,?),", n), ",") + `)`
		args := make([]any, 0, 2*n)
		for _, p := range pairs[:n] {
			args = append(args, p[0], p[1])
		}
		var rows []pairReq
		if err := r.db.SelectContext(ctx, &rows, q, args...); err != nil {
			return nil, fmt.Errorf("look up requests whose answer was lost: %w", err)
		}
		out = append(out, rows...)
		pairs = pairs[n:]
	}
	return out, nil
}

// lostAnswers is what MariaDB holds for the admissions whose answer was
// lost, beyond the requests loadgen saw admitted.
type lostAnswers struct {
	IDs            []int64 // admitted by us after all: part of the admitted set verify checks
	Unacknowledged int64   // len(IDs): admitted, the 202 never seen
	Recovered      int64   // of those, the ones whose pair's outcome stayed unknown after every retry
}

// classifyLost sorts rows, the requests MariaDB recorded for pairs whose
// answer was lost (ambiguousRequests): those loadgen already tracks (a retry
// got their 202) are accounted for; the others are ours too and go to
// verify, and those of a pair in unknown (never answered) count as
// recovered_after_lost_answer.
func classifyLost(rows []pairReq, tracked func(id int64) bool, unknown [][2]int64) lostAnswers {
	unk := make(map[[2]int64]bool, len(unknown))
	for _, p := range unknown {
		unk[p] = true
	}
	var out lostAnswers
	seen := map[int64]bool{}
	for _, row := range rows {
		if seen[row.ID] || tracked(row.ID) {
			continue
		}
		seen[row.ID] = true
		out.IDs = append(out.IDs, row.ID)
		out.Unacknowledged++
		if unk[[2]int64{row.Student, row.Course}] {
			out.Recovered++
		}
	}
	return out
}

// pollLoop is the fallback for decisions no result frame brought: requests
// the queue shows as decided (below the head, or in the done list) are read
// with GET /requests/{id} — at once for students without a connection,
// after cfg.WSGrace for the others.
func (r *run) pollLoop(ctx context.Context, final <-chan struct{}) {
	jobs := make(chan *reqRec, 4096)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range jobs {
				r.poll(ctx, rec)
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	everything := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-final:
			everything, final = true, nil // past the deadline: ask about everything left
		case <-tick.C:
		}
		var w queue.Watermark
		if r.q != nil && !everything {
			var err error
			if w, err = r.q.ReadWatermark(ctx, 100_000); err != nil {
				continue
			}
		}
		now := r.now()
		for _, rec := range r.tr.snapshot() {
			rec.mu.Lock()
			if rec.Status != "" || rec.Polling {
				rec.mu.Unlock()
				continue
			}
			if !rec.Watched && !r.cfg.Poll && !everything {
				rec.mu.Unlock() // read from MariaDB at the end
				continue
			}
			decided := everything || r.q == nil || rec.Ticket < w.Head || inSorted(w.Done, rec.Ticket)
			if !decided {
				rec.mu.Unlock()
				continue
			}
			if rec.DecidedSeen == 0 {
				rec.DecidedSeen = now
			}
			grace := int64(0)
			if rec.Watched && !everything {
				grace = int64(r.cfg.WSGrace)
			}
			if r.q == nil && !everything {
				grace = int64(time.Second) // no queue view: ask every second
			}
			if now-rec.DecidedSeen < grace {
				rec.mu.Unlock()
				continue
			}
			rec.Polling = true
			rec.mu.Unlock()
			select {
			case jobs <- rec:
			case <-ctx.Done():
				return
			}
		}
	}
}

func inSorted(xs []int64, x int64) bool {
	_, ok := slices.BinarySearch(xs, x)
	return ok
}

func (r *run) poll(ctx context.Context, rec *reqRec) {
	r.c.polls.Add(1)
	v, err := r.api.request(ctx, rec.st.who(), rec.ID)
	if err != nil {
		r.c.pollErrors.Add(1)
		r.refuse(r.c.pollErrorCodes, errCode(err))
	} else if v.Status != "" && v.Status != "queued" {
		r.c.pollResults.Add(1)
		if rec.observeResult(v.Status, v.Reason, srcPoll, r.now()) {
			r.afterResult(rec)
		}
	}
	rec.mu.Lock()
	rec.Polling = false
	if rec.Status == "" {
		rec.DecidedSeen = r.now() // ask again after the grace period
	}
	rec.mu.Unlock()
}

// holdIdle keeps every open queue-ws session idle for d before the window
// opens and records what the whole host spent on them meanwhile.
func (r *run) holdIdle(ctx context.Context, d time.Duration, info *runInfo) {
	n := r.wsOpen.Load()
	r.logf("holding %d queue-ws sessions idle for %s (-hold) ...", n, d)
	r.rss.sample()
	r.rss.resetCPU()
	t0 := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	r.rss.sample()
	info.HoldS = round1(time.Since(t0).Seconds())
	info.HoldSessions = n
	info.HoldCPUSeconds = r.rss.cpuSeconds()
	r.logf("idle %.1fs with %d sessions: CPU seconds %v", info.HoldS, n, info.HoldCPUSeconds)
}

// seriesZero returns the time the series counts from: the pre-queue's
// opening with -prequeue, else the window's (zero before either).
func (r *run) seriesZero() time.Time {
	if ns := r.seriesNs.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return r.openedAt()
}

// openedAt returns when the window opened, or the zero time before that.
func (r *run) openedAt() time.Time {
	if ns := r.openNs.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
