// Command loadgen simulates registration day: N students (default 100,000)
// who have logged in beforehand open their queue-ws connection, then press
// "신청" on their cart in a burst shaped like registration opening, against
// nginx on loopback. It waits for every decision (result frames, falling
// back to GET /api/v1/requests/{id}), then checks DESIGN's laws against
// MariaDB (internal/verify plus its own bookkeeping of what each student was
// told), and writes a JSON and an HTML report.
//
//	go run ./cmd/loadgen -students 1000 -reset
//	make loadgen STUDENTS=100000
//
// The queue-ws connections are held by loadgen itself while they fit its
// open-files limit, and otherwise by ws-holder child processes of the same
// binary (`loadgen ws-holder`, -ws-procs), each within its own limit: the
// children dial, watch and reconnect, and hand every frame to loadgen, which
// keeps all the bookkeeping (budget.go, wsholder.go).
//
// With -prequeue D the carts go into the pre-queue over D before the opening,
// and the opening is the pre-queue's draw (prequeue.go).
//
// Bounded in count and time (-max-duration), loopback only, stops by itself.
// The exit status is 1 when a law was broken, 2 when the run could not be
// carried out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
	env "github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/verify"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ws-holder" { // a child of a run (-ws-procs), never by hand
		os.Exit(holderMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := mainRun(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		if errors.Is(err, errSamplesFailed) {
			os.Exit(1)
		}
		os.Exit(2)
	}
	if !rep.LawsOK {
		fmt.Fprintln(os.Stderr, "loadgen: a law was broken (see the report)")
		os.Exit(1)
	}
}

// modes are the flags that make loadgen do something else than a run.
type modes struct {
	JSONOut     string // also write the JSON report here
	CheckJTL    string // summarise a JMeter JTL and fail on failed samples
	PrepareOnly bool   // prepare students, write tokens.csv and courses.csv, stop
	CPUProfile  string // write loadgen's own CPU profile of the run here
}

// parseFlags turns the command line into a config.
func parseFlags(args []string, stderr io.Writer) (config, modes, error) {
	var m modes
	defaults := env.FromEnv()
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.BaseURL, "url", "http://127.0.0.1:8080", "EnrollQ base URL (nginx); loopback only")
	fs.IntVar(&cfg.Students, "students", 100_000, "students to simulate")
	fs.StringVar(&cfg.TokensFile, "tokens", "", "tokens CSV from `enrollctl issue-tokens` (default: issue them in process with ENROLLQ_TOKEN_SECRET)")
	fs.DurationVar(&cfg.Ramp, "ramp", 5*time.Second, "arrivals spread over this long after the window opens")
	fs.StringVar(&cfg.Shape, "shape", "burst", "arrival shape: burst (most at the opening instant), uniform, step (all at once)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 256, "students sending at once (HTTP keep-alive connections)")
	fs.Float64Var(&cfg.PopularShare, "popular-share", 0.3, "share of cart picks aimed at the popular sections")
	fs.IntVar(&cfg.PopularCount, "popular-count", 24, "number of popular sections")
	cart := fs.String("cart", "1-3", "courses per student: N or MIN-MAX")
	fs.Float64Var(&cfg.CancelRate, "cancel-rate", 0.02, "share of admitted requests the student leaves (DELETE /requests/{id})")
	fs.Float64Var(&cfg.DropRate, "drop-rate", 0.01, "share of students who drop a course they got (DELETE /enrollments/{id})")
	fs.BoolVar(&cfg.WS, "ws", true, "open a queue-ws connection per student")
	fs.Float64Var(&cfg.WSShare, "ws-share", 1, "share of students with a queue-ws connection (the rest poll)")
	fs.StringVar(&cfg.APIMetrics, "api-metrics", "127.0.0.1:8081,127.0.0.1:8083",
		"api instances (host:port, comma-separated; empty: none) whose /metrics give the server-side admission latency")
	wsDirect := fs.String("ws-direct", "", "comma-separated queue-ws endpoints to dial instead of going through -url (e.g. ws://127.0.0.1:8082/ws,ws://127.0.0.1:8084/ws)")
	fs.IntVar(&cfg.WSMax, "ws-max", 0, "at most this many queue-ws connections (0: as many as the open-files limits of loadgen's processes, nginx and queue-ws allow)")
	fs.IntVar(&cfg.WSProcs, "ws-procs", 0, "processes holding the queue-ws connections: 1 = loadgen itself; N > 1 = N child processes of loadgen (ws-holders), each within its own open-files limit; 0 = auto: loadgen itself while they fit its open-files limit, else as many ws-holders as they need")
	fs.DurationVar(&cfg.Hold, "hold", 0, "hold the open queue-ws sessions idle this long before the window opens and report the CPU every process used meanwhile (0: open at once)")
	fs.DurationVar(&cfg.Prequeue, "prequeue", 0, "registration with the pre-queue (a lottery at the opening): open the pre-queue with the window closed, send the carts into it spread uniformly over this long (instead of -ramp/-shape), then open the window, which draws them; admission is that draw (0: off)")
	fs.StringVar(&cfg.WSHolderBin, "ws-holder-bin", "", "loadgen binary started as the ws-holder children (default: this executable)")
	fs.BoolVar(&cfg.Poll, "poll", true, "students without a queue-ws connection poll GET /requests/{id} for their decision (false: read their decisions from MariaDB at the end)")
	fs.DurationVar(&cfg.WSGrace, "ws-grace", 3*time.Second, "wait this long for a result frame after the queue shows a request decided, then poll")
	fs.StringVar(&cfg.Sources, "sources", "127.0.0.2-127.0.0.9", "local source addresses (range) for client sockets (leave out 127.0.0.1: nginx's upstream connections need its ports)")
	fs.IntVar(&cfg.ClientIPs, "client-ips", 0, "simulated client addresses sent as X-Forwarded-For, shared round-robin (0: one per student, -1: send none and let the API see the real loopback peers)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 10*time.Minute, "hard stop for the whole run")
	fs.StringVar(&cfg.DBDSN, "db", defaults.DBDSN, "MariaDB primary DSN, to prepare and verify")
	fs.StringVar(&cfg.RedisAddr, "redis", defaults.RedisAddr, "Redis address (queue depth, reset)")
	fs.StringVar(&cfg.Term, "term", defaults.Term, "term whose queue is loaded")
	fs.StringVar(&cfg.AdminUser, "admin-user", defaults.AdminUser, "registrar user that opens the window")
	fs.StringVar(&cfg.AdminPassword, "admin-password", defaults.AdminPassword, "registrar password")
	fs.BoolVar(&cfg.Reset, "reset", false, "empty the term's registrations first (enrollments, requests, drops, waitlist; Redis queue)")
	fs.BoolVar(&cfg.Ensure, "ensure-students", true, "import generated load students when the roster has fewer than -students")
	fs.StringVar(&cfg.StudentPW, "student-password", "enrollq-load", "initial password of imported load students")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the plan (carts, arrivals, cancels, drops)")
	fs.StringVar(&cfg.Out, "out", "", "report directory (default out/loadgen/<time>)")
	fs.BoolVar(&cfg.CloseWindow, "close-window", true, "close the registration window after the run")
	fs.DurationVar(&cfg.ProgressEvery, "progress", time.Second, "progress line interval")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "no progress lines")
	fs.StringVar(&cfg.BaselinesFile, "baselines", "", "JSON of the Redis and MariaDB baselines of this run (scripts/loadtest.sh writes it)")
	fs.StringVar(&m.JSONOut, "json", "", "also write the JSON report to this file (it is always printed on stdout and written to -out)")
	fs.StringVar(&m.CheckJTL, "check-jtl", "", "only summarise this JMeter result file (CSV) and exit 1 if any sample failed")
	fs.StringVar(&m.CPUProfile, "cpuprofile", "", "write loadgen's own CPU profile of the run to this file")
	fs.BoolVar(&m.PrepareOnly, "prepare-only", false, "only prepare: import load students if needed (and -reset), write tokens.csv and courses.csv to -out")
	if err := fs.Parse(args); err != nil {
		return cfg, m, err
	}
	if fs.NArg() > 0 {
		return cfg, m, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.TokenSecret, cfg.TokenTTL, cfg.BcryptCost = defaults.TokenSecret, 2*time.Hour, defaults.BcryptCost
	if cfg.TokenSecret == "" && cfg.TokensFile == "" && m.CheckJTL == "" {
		return cfg, m, errors.New("ENROLLQ_TOKEN_SECRET is not set: give the api's secret (or -tokens), or ENROLLQ_DEV=1 for make run's development stack")
	}
	lo, hi, ok := strings.Cut(*cart, "-")
	if _, err := fmt.Sscan(lo, &cfg.CartMin); err != nil {
		return cfg, m, fmt.Errorf("-cart %q: %w", *cart, err)
	}
	cfg.CartMax = cfg.CartMin
	if ok {
		if _, err := fmt.Sscan(hi, &cfg.CartMax); err != nil {
			return cfg, m, fmt.Errorf("-cart %q: %w", *cart, err)
		}
	}
	if *wsDirect != "" {
		cfg.WSDirect = strings.Split(*wsDirect, ",")
	}
	return cfg, m, validate(cfg)
}

func validate(cfg config) error {
	var errs []error
	if cfg.Students <= 0 || cfg.Students > 1_000_000 {
		errs = append(errs, errors.New("-students must be 1..1000000"))
	}
	if cfg.CartMin < 1 || cfg.CartMax < cfg.CartMin || cfg.CartMax > 10 {
		errs = append(errs, errors.New("-cart must be N or MIN-MAX with 1 <= MIN <= MAX <= 10"))
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > 20_000 {
		errs = append(errs, errors.New("-concurrency must be 1..20000"))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"-popular-share", cfg.PopularShare}, {"-cancel-rate", cfg.CancelRate}, {"-drop-rate", cfg.DropRate}, {"-ws-share", cfg.WSShare}} {
		if f.v < 0 || f.v > 1 {
			errs = append(errs, fmt.Errorf("%s must be within 0..1", f.name))
		}
	}
	if cfg.Shape != "burst" && cfg.Shape != "uniform" && cfg.Shape != "step" {
		errs = append(errs, errors.New("-shape must be burst, uniform or step"))
	}
	if cfg.WSProcs < 0 || cfg.WSProcs > maxWSProcs {
		errs = append(errs, fmt.Errorf("-ws-procs must be 0..%d", maxWSProcs))
	}
	if cfg.Prequeue < 0 || cfg.Prequeue > 30*time.Minute {
		errs = append(errs, errors.New("-prequeue must be within [0, 30m]"))
	}
	if cfg.Hold < 0 || cfg.Hold > 10*time.Minute {
		errs = append(errs, errors.New("-hold must be within [0, 10m]"))
	}
	if cfg.MaxDuration <= 0 || cfg.MaxDuration > 2*time.Hour {
		errs = append(errs, errors.New("-max-duration must be within (0, 2h]"))
	}
	targets := append(append([]string{cfg.BaseURL}, cfg.WSDirect...), apiMetricsURLs(cfg.APIMetrics)...)
	for _, t := range targets {
		if err := loopbackOnly(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loopbackOnly refuses any target that is not on this machine: loadgen is a
// load generator and must never be pointed at someone else's server.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad URL %q", raw)
	}
	switch h := u.Hostname(); {
	case h == "localhost", strings.HasPrefix(h, "127."), h == "::1":
		return nil
	default:
		return fmt.Errorf("%s: loadgen only targets loopback (127.0.0.0/8, localhost)", raw)
	}
}

// mainRun runs loadgen with args and returns its report.
func mainRun(ctx context.Context, args []string, stdout, stderr io.Writer) (Report, error) {
	cfg, m, err := parseFlags(args, stderr)
	if err != nil {
		return Report{}, err
	}
	cfg.Stdout = stderr
	if m.CheckJTL != "" {
		if err := checkJTL(m.CheckJTL, stdout); err != nil {
			return Report{}, err
		}
		return Report{LawsOK: true}, nil
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join("out", "loadgen", time.Now().Format("20060102-150405"))
	}
	if m.PrepareOnly {
		return Report{LawsOK: true}, prepareOnly(ctx, cfg, stdout)
	}
	if m.CPUProfile != "" {
		f, err := os.Create(m.CPUProfile)
		if err != nil {
			return Report{}, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return Report{}, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := execute(ctx, cfg)
	if err != nil {
		return rep, err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return rep, fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return rep, fmt.Errorf("report dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, "report.json"), append(raw, '\n'), 0o644); err != nil {
		return rep, fmt.Errorf("write report: %w", err)
	}
	f, err := os.Create(filepath.Join(cfg.Out, "report.html"))
	if err != nil {
		return rep, fmt.Errorf("write report: %w", err)
	}
	if err := writeHTML(f, rep, raw); err != nil {
		f.Close()
		return rep, err
	}
	if err := f.Close(); err != nil {
		return rep, fmt.Errorf("write report: %w", err)
	}
	if m.JSONOut != "" {
		if err := os.WriteFile(m.JSONOut, append(raw, '\n'), 0o644); err != nil {
			return rep, fmt.Errorf("write %s: %w", m.JSONOut, err)
		}
	}
	// The JSON report on stdout (DESIGN: loadgen prints a JSON report), the
	// human summary on stderr with the progress lines.
	fmt.Fprintln(stdout, string(raw))
	fmt.Fprint(stderr, summary(rep, cfg.Out))
	return rep, nil
}

// summary is the few lines printed at the end.
func summary(rep Report, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nloadgen: %d students, %d requests: %d admitted, %d sold out early, %d enrolled, %d cancelled, %d rejected\n",
		rep.Run.Students, rep.Requested, rep.Admitted, rep.SoldOutEarly, rep.Enrolled, rep.Cancelled, sum(rep.RejectedByReason))
	if p := rep.ServerAdmissionLatencyMS; p.N > 0 {
		fmt.Fprintf(&b, "  admission latency at the apis (handler time, %d requests) p50/p95/p99 %g/%g/%g ms\n", p.N, p.P50, p.P95, p.P99)
	}
	fmt.Fprintf(&b, "  admission latency p50/p95/p99 %g/%g/%g ms, answered in %.2fs, admit %.0f/s, drain %.0f/s, decided %.2fs after the last admission\n",
		rep.AdmissionLatencyMS.P50, rep.AdmissionLatencyMS.P95, rep.AdmissionLatencyMS.P99, rep.AnswerSpanS, rep.AdmitRatePerS, rep.DrainRatePerS, rep.DecidedAfterLastAdmS)
	fmt.Fprintf(&b, "  time to result p50/p99 %g/%g ms (queue-ws), peak connections %d, peak RSS MB %v\n",
		rep.TimeToResultMS.P50, rep.TimeToResultMS.P99, rep.PeakConnections, rep.PeakRSSMB)
	if rep.Prequeue != nil {
		b.WriteString(prequeueLines(rep.Prequeue))
		fmt.Fprintf(&b, "  CPU seconds from the pre-queue's opening: %v\n", rep.CPUSeconds)
	}
	if rep.UnknownOutcome > 0 || rep.Unacknowledged > 0 || rep.Actions.Transport > 0 || rep.Actions.Unavailable > 0 {
		fmt.Fprintf(&b, "  answers lost: %d transport errors, %d 502/503/504, %d retries (%d replayed answers); %d outcomes unknown after every retry, %d of their requests found in MariaDB (recovered_after_lost_answer); %d admitted without a 202 seen\n",
			rep.Actions.Transport, rep.Actions.Unavailable, rep.Actions.TransportRtry, rep.Actions.Replayed, rep.UnknownOutcome, rep.Recovered, rep.Unacknowledged)
	}
	fmt.Fprintf(&b, "  laws: lost %d duplicated %d oversold %d fifo %d false sold-out %d position increases %d mismatches %d unresolved %d verify{%s}\n",
		rep.Lost, rep.Duplicated, rep.OversoldSections, rep.FIFOViolations, rep.FalseSoldOut, rep.PositionIncreases, rep.ResultMismatches, rep.Unresolved, rep.Verify)
	for _, t := range rep.Targets {
		mark := "met"
		if !t.Met {
			mark = "NOT MET"
		}
		fmt.Fprintf(&b, "  target %-70s %-8s measured %g %s: %s\n", t.Name, t.Goal, t.Value, t.Unit, mark)
	}
	fmt.Fprintf(&b, "  report: %s/report.json, %s/report.html\n", dir, dir)
	return b.String()
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// prepareOnly makes the roster big enough and writes the students' tokens
// and the open sections to cfg.Out (tokens.csv, courses.csv: the CSV files
// the JMeter plans read).
func prepareOnly(ctx context.Context, cfg config, stdout io.Writer) error {
	r, err := newRun(cfg)
	if err != nil {
		return err
	}
	if err := r.connect(ctx); err != nil {
		return err
	}
	defer r.close()
	if cfg.Reset {
		if err := r.reset(ctx); err != nil {
			return err
		}
	}
	toks, err := r.prepareStudents(ctx)
	if err != nil {
		return err
	}
	courses, err := r.openCourses(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	var tb strings.Builder
	if err := students.WriteCSV(&tb, toks); err != nil {
		return err
	}
	// Courses in a shuffled order (fixed by -seed), so that consecutive
	// students do not all ask for neighbouring sections.
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	rng.Shuffle(len(courses), func(i, j int) { courses[i], courses[j] = courses[j], courses[i] })
	var cb strings.Builder
	cb.WriteString("course_id\n")
	for _, c := range courses {
		fmt.Fprintf(&cb, "%d\n", c)
	}
	for name, body := range map[string]string{"tokens.csv": tb.String(), "courses.csv": cb.String()} {
		if err := os.WriteFile(filepath.Join(cfg.Out, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "loadgen: %d student tokens and %d courses written to %s\n", len(toks), len(courses), cfg.Out)
	return nil
}

// execute carries out one run and assembles its report.
func execute(parent context.Context, cfg config) (Report, error) {
	ctx, cancel := context.WithTimeout(parent, cfg.MaxDuration)
	defer cancel()
	r, err := newRun(cfg)
	if err != nil {
		return Report{}, err
	}
	r.rss = newRSSMonitor()
	var base *Baselines
	if cfg.BaselinesFile != "" {
		if base, err = readBaselines(cfg.BaselinesFile); err != nil {
			return Report{}, err
		}
	}
	nofile, err := raiseNoFile(1 << 20)
	if err != nil {
		r.logf("warning: %v", err)
		nofile = 1024
	}
	if err := r.connect(ctx); err != nil {
		return Report{}, err
	}
	defer r.close()

	info := runInfo{StartedAt: r.start.UTC(), BaseURL: cfg.BaseURL, Students: cfg.Students, Ramp: cfg.Ramp.String(),
		Shape: cfg.Shape, Concurrency: cfg.Concurrency, PopularShare: cfg.PopularShare, PopularCount: cfg.PopularCount,
		Cart: fmt.Sprintf("%d-%d", cfg.CartMin, cfg.CartMax), CancelRate: cfg.CancelRate, DropRate: cfg.DropRate,
		WS: cfg.WS, WSShare: cfg.WSShare, Sources: cfg.Sources, Seed: cfg.Seed, Reset: cfg.Reset, WSVia: "off", Poll: cfg.Poll}
	if cfg.Prequeue > 0 { // the arrivals are the pre-queue's
		info.Ramp, info.Shape = cfg.Prequeue.String(), "uniform (pre-queue)"
	}
	if cfg.WS {
		info.WSVia = cfg.BaseURL + " (nginx)"
		if len(cfg.WSDirect) > 0 {
			info.WSVia = "direct: " + strings.Join(cfg.WSDirect, ", ")
		}
	}

	admin, err := r.api.adminLogin(ctx, cfg.AdminUser, cfg.AdminPassword)
	if err != nil {
		return Report{}, fmt.Errorf("%w (is the API up at %s?)", err, cfg.BaseURL)
	}
	// Nobody registers while students take their places.
	if err := r.api.setWindow(ctx, admin, false); err != nil {
		return Report{}, err
	}
	var known []int64
	if cfg.Reset {
		if err := r.reset(ctx); err != nil {
			return Report{}, err
		}
	} else if known, err = r.existingRequests(ctx); err != nil {
		return Report{}, err
	}
	toks, err := r.prepareStudents(ctx)
	if err != nil {
		return Report{}, err
	}
	courses, err := r.openCourses(ctx)
	if err != nil {
		return Report{}, err
	}
	info.Courses = len(courses)
	r.students = planStudents(cfg, toks, courses)
	if cfg.WS {
		var children int
		info.WSPlanned, info.WSStudents, info.WSLimited, children = r.limitWS(nofile)
		if children > 0 {
			info.WSHolders = children
			if err := r.startWSProcs(children); err != nil {
				return Report{}, err
			}
			defer r.stopWSProcs(30 * time.Second) // on the way out of a run that failed; a no-op after closeWS
		}
	}
	r.logf("plan: %d students, %d sections (%d popular), cart %d-%d, ramp %s %s, concurrency %d",
		len(r.students), len(courses), min(cfg.PopularCount, len(courses)), cfg.CartMin, cfg.CartMax, info.Ramp, info.Shape, cfg.Concurrency)

	mctx, stopMonitor := context.WithCancel(ctx)
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		r.monitor(mctx, cfg.ProgressEvery)
	}()

	r.connectAll(ctx, 128)
	if cfg.Hold > 0 {
		r.holdIdle(ctx, cfg.Hold, &info)
	}
	// The apis' own view of admission latency (handler time), to set
	// beside the client's: on one box the harness's scheduling is in the
	// client's figure too.
	apiMetrics := apiMetricsURLs(cfg.APIMetrics)
	var admBefore histSnap
	if len(apiMetrics) > 0 {
		if admBefore, err = scrapeAdmissionHist(ctx, r.api.hc, apiMetrics); err != nil {
			r.logf("warning: the apis' latency histograms: %v (no server-side admission latency in the report)", err)
			apiMetrics = nil
		}
	}

	var pq *prequeueRun
	if cfg.Prequeue > 0 {
		// The burst goes into the pre-queue; the opening is the draw.
		if pq, err = r.prequeueEntries(ctx, admin); err == nil {
			r.prepareLearn(ctx, pq) // the students wait for the draw
			err = r.openWithDraw(ctx, admin, pq)
		}
		if err != nil {
			if pq != nil {
				pq.sched.close()
			}
			if pq != nil && pq.windowAt.IsZero() { // leave no pre-queue open behind a failed run
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				if _, cerr := r.api.setPrequeue(cctx, admin, false); cerr != nil {
					r.logf("warning: %v", cerr)
				}
				ccancel()
			}
			stopMonitor()
			<-monitorDone
			return Report{}, err
		}
	} else {
		if err := r.api.setWindow(ctx, admin, true); err != nil {
			stopMonitor()
			<-monitorDone
			return Report{}, err
		}
		r.rss.sample()
		r.rss.resetCPU()
		r.openNs.Store(time.Now().UnixNano())
		r.logf("window open: burst of %d students", len(r.students))
	}

	final := make(chan struct{})
	pollDone := make(chan struct{})
	pctx, stopPoll := context.WithCancel(ctx)
	go func() {
		defer close(pollDone)
		r.pollLoop(pctx, final)
	}()

	if pq != nil {
		r.learn(ctx, pq)
		r.logf("%d requests admitted by the draw; waiting for every decision", r.c.admitted.Load())
	} else {
		r.burst(ctx, r.openedAt())
		r.logf("burst done: %d sent, %d admitted; waiting for every decision", r.c.sent.Load(), r.c.admitted.Load())
	}

	// Wait for every decision, and for cancels and drops in flight. Within
	// the last 15% of the time budget, poll whatever is left.
	stoppedEarly := ""
	deadline, _ := ctx.Deadline()
	finalAt := deadline.Add(-cfg.MaxDuration * 15 / 100)
	actionsDone := make(chan struct{})
	go func() {
		r.actions.Wait()
		close(actionsDone)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
wait:
	for {
		select {
		case <-ctx.Done():
			stoppedEarly = "max duration reached with decisions still unknown"
			if parent.Err() != nil {
				stoppedEarly = "interrupted"
			}
			break wait
		case <-tick.C:
		}
		if final != nil && time.Now().After(finalAt) {
			close(final)
			final = nil
		}
		if r.settled(ctx) {
			select {
			case <-actionsDone:
				break wait
			default:
			}
		}
	}
	tick.Stop()
	stopPoll()
	<-pollDone

	// A grace second so that late frames (a duplicate result would be one)
	// are counted, then close every connection.
	if stoppedEarly == "" && cfg.WS {
		time.Sleep(time.Second)
	}
	r.rss.sample() // the ws-holders' last figures: they exit with their connections
	r.closeWS()
	r.rss.sample()
	stopMonitor()
	<-monitorDone

	// Verification and the report use a fresh context: a run stopped by the
	// time budget is still verified.
	vctx, vcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer vcancel()
	if cfg.CloseWindow {
		if err := r.api.setWindow(vctx, admin, false); err != nil {
			r.logf("warning: %v", err)
		}
	}
	r.logf("verifying the laws against MariaDB ...")
	recs := r.tr.snapshot()
	views := make([]recView, len(recs))
	ids := make([]int64, 0, len(recs)+len(known))
	for i, rec := range recs {
		views[i] = rec.view()
		ids = append(ids, rec.ID)
	}
	rows, err := r.readDecisions(vctx, ids)
	if err != nil {
		return Report{}, err
	}
	// Admissions whose answer was lost (transport, 502/503/504, even after
	// every retry): whatever MariaDB recorded for their (student, section)
	// was admitted by us, so it joins the admitted set verify checks.
	lostRows, err := r.ambiguousRequests(vctx)
	if err != nil {
		return Report{}, err
	}
	r.c.refusedMu.Lock()
	unknown := slices.Clone(r.c.unknown)
	r.c.refusedMu.Unlock()
	lost := classifyLost(lostRows, func(id int64) bool { return r.tr.get(id) != nil }, unknown)
	known = append(known, lost.IDs...)
	r.awaitRefusalMarks(vctx)
	vr, err := verify.Check(vctx, r.db, append(ids, known...))
	if err != nil {
		return Report{}, err
	}
	info.StoppedEarly = stoppedEarly
	peak, hwm, procs := r.rss.result()
	r.seriesMu.Lock()
	series := r.series
	r.seriesMu.Unlock()
	var peakConns int64
	for _, p := range series {
		peakConns = max(peakConns, p.WSOpen+p.HTTPConns)
	}
	r.c.refusedMu.Lock()
	in := assembleInput{
		Info: info, Recs: views, Rows: rows, Verify: vr, Latencies: r.latencies, SendLag: r.sendLag, Refused: r.c.refused,
		WS: wsReport{Students: r.c.wsStudents.Load(), Connected: r.c.wsConnected.Load(), ConnectFailed: r.c.wsConnectFailed.Load(),
			ConnectErrors: r.c.connectErrors, Reconnects: r.c.wsReconnects.Load(), ServerCloses: r.c.wsDrops.Load(),
			PositionFrames: r.c.positionFrames.Load(), ResultFrames: r.c.resultFrames.Load(), ErrorFrames: r.c.wsErrors,
			BadFrames: r.c.badFrames.Load(), UnknownFrames: r.c.unknownFrames.Load(), WriteErrors: r.c.wsWriteErrors.Load()},
		Actions: actionsReport{CancelsSent: r.c.cancelsSent.Load(), CancelsOK: r.c.cancelsOK.Load(), CancelsLate: r.c.cancelsLate.Load(),
			CancelErrors: r.c.cancelErrors.Load(), DropsSent: r.c.dropsSent.Load(), DropsOK: r.c.dropsOK.Load(), DropErrors: r.c.dropErrors.Load(),
			Retries429: r.c.retries429.Load(), Transport: r.c.transport.Load(), Unavailable: r.c.unavailable.Load(), Replayed: r.c.replayed.Load(),
			Polls: r.c.polls.Load(), PollErrors: r.c.pollErrors.Load(),
			PollDecisions: r.c.pollResults.Load(), PollErrorCodes: r.c.pollErrorCodes},
		Baselines: base, DBResults: !cfg.Poll, Unacknowledged: lost.Unacknowledged, TransportRetries: r.c.transportRetries.Load(),
		UnknownOutcome: r.c.unknownOutcome.Load(), Recovered: lost.Recovered,
		DupAdmission: r.tr.dups.Load(), Requested: r.c.sent.Load(), Answered: r.c.answered.Load(),
		FirstSent: r.c.firstSent.Load(), LastAdmitted: r.c.lastAdmitted.Load(), LastAnswered: r.c.lastAnswered.Load(),
		PeakConns: max(peakConns, r.wsPeak.Load()), PeakWS: r.wsPeak.Load(), PeakHTTP: r.httpSocketsPeak.Load(),
		RSS: peak, HWM: hwm, Procs: procs, CPU: r.rss.cpuSeconds(), Series: series, Duration: time.Since(r.start),
	}
	if pq != nil {
		in.Prequeue = pq.report(r)
	}
	if len(apiMetrics) > 0 {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		if after, err := scrapeAdmissionHist(sctx, r.api.hc, apiMetrics); err != nil {
			r.logf("warning: the apis' latency histograms: %v", err)
		} else {
			in.ServerAdmission = histQuantiles(admBefore, after)
		}
		scancel()
	}
	rep := assemble(in)
	r.c.refusedMu.Unlock()
	return rep, nil
}

// awaitRefusalMarks waits (up to 10 s) until the drain has copied every
// section's latest "sold out" mark from Redis into MariaDB, which law 7's
// check reads; it copies what is still missing itself after that, as the
// drain would, and says so.
func (r *run) awaitRefusalMarks(ctx context.Context) {
	if r.q == nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		marks, err := r.q.Refusals(ctx)
		if err != nil {
			r.logf("law 7: read the refusal marks: %v", err)
			return
		}
		var rows []struct {
			CourseID int64 `db:"course_id"`
			Ticket   int64 `db:"ticket"`
		}
		if err := r.db.SelectContext(ctx, &rows, `SELECT course_id, ticket FROM refusal_marks`); err != nil {
			r.logf("law 7: read refusal_marks: %v", err)
			return
		}
		copied := make(map[int64]int64, len(rows))
		for _, row := range rows {
			copied[row.CourseID] = row.Ticket
		}
		missing := 0
		for _, m := range marks {
			if t, ok := copied[m.CourseID]; !ok || t < m.Ticket {
				missing++
			}
		}
		if missing == 0 {
			r.logf("law 7: %d sections' latest sold-out marks are in MariaDB", len(marks))
			return
		}
		if time.Now().After(deadline) {
			r.logf("law 7: the drain had not copied %d of %d marks after 10 s; copying them", missing, len(marks))
			if err := enroll.NewStore(r.db, r.cfg.Term).RecordRefusals(ctx, marks); err != nil {
				r.logf("law 7: copy the refusal marks: %v", err)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
