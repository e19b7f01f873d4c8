// Command wsbench measures what queue-ws costs per connection, beside the
// floor of a bare melody server pushing the same number of frames to the
// same number of connections, in one run.
//
// Phase 1 (bare): N connections to `queue-ws -bare`, which broadcasts one
// position-shaped frame per tick. Phase 2 (queue-ws): N waiting requests are
// admitted into the term's queue, N connections watch them (one per student,
// ws token, ?requests=id), and the queue is drained at a steady rate while
// the clients read. For each phase it reports the server's peak RSS (VmHWM
// from /proc/<pid>/status), its CPU time (utime+stime from /proc/<pid>/stat)
// while connecting and during the steady window, the frames received, the
// delivery latency (receive time − the frame's ts), and for queue-ws the
// staleness of positions: the time from the ack that made a position true
// to the client receiving the first frame showing it.
//
// Connections come from several 127.0.0.x source addresses so more than one
// port range is available. Every connection is a file descriptor in this
// process and in the server, so both need RLIMIT_NOFILE above N (see
// docs/WEBSOCKET.md).
//
//	wsbench -spawn ./bin/queue-ws -n 19000 -duration 60s
//	wsbench -url ws://127.0.0.1:8092/ws -pid 1234 -bare-url ws://127.0.0.1:8093/ws -bare-pid 1235
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

type flags struct {
	n         int
	url       string
	pid       int
	bareURL   string
	barePid   int
	spawn     string
	port      int
	sources   int
	duration  time.Duration
	settle    time.Duration
	rate      float64
	dial      int
	redisAddr string
	term      string
	secret    string
	courses   int
	jsonOut   string
}

func main() {
	cfg := config.FromEnv()
	var f flags
	flag.IntVar(&f.n, "n", 100000, "connections per phase")
	flag.StringVar(&f.url, "url", "ws://127.0.0.1:8092/ws", "queue-ws /ws URL")
	flag.IntVar(&f.pid, "pid", 0, "queue-ws server pid (for RSS and CPU)")
	flag.StringVar(&f.bareURL, "bare-url", "", "bare melody server /ws URL (queue-ws -bare); empty skips the floor phase")
	flag.IntVar(&f.barePid, "bare-pid", 0, "bare server pid")
	flag.StringVar(&f.spawn, "spawn", "", "path of a queue-ws binary: start it (and a -bare one) with the right term and secret, on -port and -port+1")
	flag.IntVar(&f.port, "port", 8092, "first port used with -spawn")
	flag.IntVar(&f.sources, "sources", 4, "source addresses 127.0.0.1 .. 127.0.0.N")
	flag.DurationVar(&f.duration, "duration", 60*time.Second, "steady window of each phase")
	flag.DurationVar(&f.settle, "settle", 3*time.Second, "pause between connecting and the steady window")
	flag.Float64Var(&f.rate, "rate", 0, "decisions per second during the queue-ws phase (0: n / (4 × duration))")
	flag.IntVar(&f.dial, "dial", 256, "concurrent handshakes")
	flag.StringVar(&f.redisAddr, "redis", cfg.RedisAddr, "Redis address (ENROLLQ_REDIS_ADDR)")
	flag.StringVar(&f.term, "term", "wsbench", "term of the benchmark queue (its keys are deleted before and after)")
	// The spawned queue-ws instances are benchmark-only (their own term):
	// they run in development mode, explicitly, with this secret.
	secret := cfg.TokenSecret
	if secret == "" {
		secret = config.DevTokenSecret
	}
	flag.StringVar(&f.secret, "secret", secret, "token secret shared with queue-ws (ENROLLQ_TOKEN_SECRET)")
	flag.IntVar(&f.courses, "courses", 100, "courses the requests are spread over")
	flag.StringVar(&f.jsonOut, "json", "", "also write the report as JSON to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	if f.term == "" || f.term == config.FromEnv().Term {
		return fmt.Errorf("refusing to use term %q: its queue is deleted before and after the run", f.term)
	}
	if err := raiseNoFile(f.n); err != nil {
		return err
	}
	if f.spawn != "" {
		stopServers, err := spawn(ctx, &f)
		if err != nil {
			return err
		}
		defer stopServers()
	}
	if f.pid == 0 {
		return errors.New("-pid (the queue-ws server's pid) is required without -spawn")
	}
	rdb := redis.NewClient(&redis.Options{Addr: f.redisAddr, PoolSize: 64})
	defer rdb.Close()
	q := queue.New(rdb, f.term)
	defer func() { _ = clearTerm(context.Background(), rdb, q) }()

	rep := report{N: f.n, Sources: f.sources, Duration: f.duration.String(), Cores: runtime.NumCPU()}
	if f.bareURL != "" {
		ph, err := bare(ctx, f)
		if err != nil {
			return fmt.Errorf("bare phase: %w", err)
		}
		rep.Bare = &ph
		fmt.Println(ph.text("bare melody floor"))
	}
	ph, err := ours(ctx, f, rdb, q)
	if err != nil {
		return fmt.Errorf("queue-ws phase: %w", err)
	}
	rep.QueueWS = &ph
	fmt.Println(ph.text("queue-ws"))
	if rep.Bare != nil {
		r := ratios(*rep.QueueWS, *rep.Bare)
		rep.Ratios = &r
		fmt.Println(rep.Ratios.text())
	}
	if f.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(f.jsonOut, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.jsonOut, err)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// phases

type phase struct {
	Connected       int     `json:"connected"`
	ConnectErrors   int64   `json:"connect_errors"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	ConnectCPU      float64 `json:"connect_cpu_seconds"`
	SteadySeconds   float64 `json:"steady_seconds"`
	SteadyCPU       float64 `json:"steady_cpu_seconds"`
	CPUPerSecond    float64 `json:"cpu_cores_busy"` // steady CPU seconds per second
	Frames          int64   `json:"frames"`         // frames received in the steady window
	FramesPerSecond float64 `json:"frames_per_second"`
	CPUPerFrameUS   float64 `json:"cpu_us_per_frame"`
	PeakRSSMB       float64 `json:"peak_rss_mb"` // VmHWM
	RSSMB           float64 `json:"rss_mb"`      // VmRSS at the end
	RSSPerConnKB    float64 `json:"rss_kb_per_connection"`
	DeliveryP50MS   int64   `json:"delivery_p50_ms"`
	DeliveryP99MS   int64   `json:"delivery_p99_ms"`
	StalenessP50MS  int64   `json:"staleness_p50_ms,omitempty"`
	StalenessP99MS  int64   `json:"staleness_p99_ms,omitempty"`
	StalenessMaxMS  int64   `json:"staleness_max_ms,omitempty"`
	AgeP50MS        int64   `json:"age_p50_ms,omitempty"`
	AgeP99MS        int64   `json:"age_p99_ms,omitempty"`
	Changes         int64   `json:"position_changes,omitempty"`
	Increases       int64   `json:"position_increases"`
	Decided         int64   `json:"decided,omitempty"`
	Results         int64   `json:"results,omitempty"`
	DuplicateResult int64   `json:"duplicate_results"`
	Disconnects     int64   `json:"disconnects"`
}

func (p phase) text(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s: %d connections (%d failed) in %.1fs, connect CPU %.1fs\n", name, p.Connected, p.ConnectErrors, p.ConnectSeconds, p.ConnectCPU)
	fmt.Fprintf(&b, "   steady %.0fs: CPU %.2fs (%.3f cores), %d frames (%.0f/s, %.2f µs CPU/frame), %d disconnects\n",
		p.SteadySeconds, p.SteadyCPU, p.CPUPerSecond, p.Frames, p.FramesPerSecond, p.CPUPerFrameUS, p.Disconnects)
	fmt.Fprintf(&b, "   peak RSS %.1f MB (%.2f KB/connection), RSS now %.1f MB\n", p.PeakRSSMB, p.RSSPerConnKB, p.RSSMB)
	fmt.Fprintf(&b, "   delivery (recv − ts) p50 %d ms, p99 %d ms", p.DeliveryP50MS, p.DeliveryP99MS)
	if p.Changes > 0 {
		fmt.Fprintf(&b, "\n   staleness (ack that made the shown position wrong → new frame) p50 %d ms, p99 %d ms, max %d ms over %d changes; %d increases",
			p.StalenessP50MS, p.StalenessP99MS, p.StalenessMaxMS, p.Changes, p.Increases)
		fmt.Fprintf(&b, "\n   age of the new value (ack that made it true → client) p50 %d ms, p99 %d ms", p.AgeP50MS, p.AgeP99MS)
		fmt.Fprintf(&b, "\n   %d decided, %d results received, %d duplicate results", p.Decided, p.Results, p.DuplicateResult)
	}
	return b.String()
}

type ratioSet struct {
	PeakRSS     float64 `json:"peak_rss"`
	SteadyCPU   float64 `json:"steady_cpu"`
	CPUPerFrame float64 `json:"cpu_per_frame"`
	ConnectCPU  float64 `json:"connect_cpu"`
}

func ratios(ours, floor phase) ratioSet {
	div := func(a, b float64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return math.Round(a/b*100) / 100
	}
	return ratioSet{PeakRSS: div(ours.PeakRSSMB, floor.PeakRSSMB), SteadyCPU: div(ours.SteadyCPU, floor.SteadyCPU),
		CPUPerFrame: div(ours.CPUPerFrameUS, floor.CPUPerFrameUS), ConnectCPU: div(ours.ConnectCPU, floor.ConnectCPU)}
}

func (r ratioSet) text() string {
	return fmt.Sprintf("== queue-ws / bare floor: peak RSS ×%.2f, steady CPU ×%.2f, CPU per frame ×%.2f, connect CPU ×%.2f",
		r.PeakRSS, r.SteadyCPU, r.CPUPerFrame, r.ConnectCPU)
}

type report struct {
	N        int       `json:"n"`
	Sources  int       `json:"sources"`
	Duration string    `json:"duration"`
	Cores    int       `json:"cores"`
	Bare     *phase    `json:"bare,omitempty"`
	QueueWS  *phase    `json:"queue_ws"`
	Ratios   *ratioSet `json:"ratios,omitempty"`
}

// bare connects N clients to the floor server and reads for the window.
func bare(ctx context.Context, f flags) (phase, error) {
	var st stats
	urls := make([]string, f.n)
	for i := range urls {
		urls[i] = f.bareURL
	}
	return measure(ctx, f, f.barePid, urls, &st, func(*client, []byte, int64) {}, nil)
}

// ours seeds N waiting requests, connects one watcher each and drains the
// queue at a steady rate during the window.
func ours(ctx context.Context, f flags, rdb *redis.Client, q *queue.Redis) (phase, error) {
	if err := clearTerm(ctx, rdb, q); err != nil {
		return phase{}, err
	}
	var sc []enroll.SeatCount
	for c := 1; c <= f.courses; c++ {
		sc = append(sc, enroll.SeatCount{ID: int64(c), Capacity: f.n, Open: true})
	}
	q.RateLimit = 0
	if err := q.Reconcile(ctx, sc, 0); err != nil {
		return phase{}, err
	}
	if err := q.SetOpen(ctx, true); err != nil {
		return phase{}, err
	}
	began := time.Now()
	tickets := make([]int64, f.n)
	var g errgroup.Group
	g.SetLimit(32)
	for i := range f.n {
		g.Go(func() error {
			a, err := q.Admit(ctx, int64(i+1), int64(1+i%f.courses))
			tickets[i] = a.Ticket
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return phase{}, fmt.Errorf("admit: %w", err)
	}
	first := tickets[0]
	for _, t := range tickets {
		first = min(first, t)
	}
	fmt.Printf("   admitted %d requests in %.1fs\n", f.n, time.Since(began).Seconds())

	signer := auth.NewSigner(f.secret)
	urls := make([]string, f.n)
	for i := range urls {
		tok := signer.Issue(auth.Claims{Kind: auth.KindWS, Subject: int64(i + 1)}, time.Hour)
		urls[i] = f.url + "?token=" + url.QueryEscape(tok) + "&requests=" + strconv.FormatInt(tickets[i], 10)
	}

	var st stats
	ackAt := make([]atomic.Int64, f.n+1) // unix nanos when the ack of ticket first+i began
	onFrame := func(c *client, b []byte, now int64) {
		if bytes.Contains(b, []byte(`"type":"result"`)) {
			if c.result.Swap(true) {
				st.duplicates.Add(1)
			}
			st.results.Add(1)
			return
		}
		p, ok := intField(b, `"position":`)
		if !ok {
			return
		}
		last := c.last.Load()
		if last != 0 && p > last {
			st.increases.Add(1)
		}
		if last == 0 || p >= last {
			if last == 0 {
				c.last.Store(p)
			}
			return
		}
		c.last.Store(p)
		if !st.measuring.Load() {
			return
		}
		// The shown value `last` went stale when the ticket after the one
		// `last` places ahead was acked: staleness runs from that ack to
		// now. The new value p became true when the ticket p places ahead
		// was acked: its age runs from that ack to now.
		if k := c.ticket - last + 1 - first; k >= 0 && k < int64(len(ackAt)) {
			if at := ackAt[k].Load(); at > 0 {
				st.changes.Add(1)
				st.staleness.add((now - at) / 1e6)
			}
		}
		if k := c.ticket - p - first; k >= 0 && k < int64(len(ackAt)) {
			if at := ackAt[k].Load(); at > 0 {
				st.age.add((now - at) / 1e6)
			}
		}
	}
	clients := make([]*client, f.n)
	for i := range clients {
		clients[i] = &client{ticket: tickets[i]}
	}
	rate := f.rate
	if rate <= 0 {
		rate = float64(f.n) / (4 * f.duration.Seconds())
	}
	drain := func(ctx context.Context) {
		const every = 100 * time.Millisecond
		t := time.NewTicker(every)
		defer t.Stop()
		owed := 0.0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			owed += rate * every.Seconds()
			n := int(owed)
			if n == 0 {
				continue
			}
			owed -= float64(n)
			rs, err := q.Pop(ctx, n, time.Minute)
			if err != nil || len(rs) == 0 {
				continue
			}
			ds := make([]enroll.Decision, len(rs))
			now := time.Now().UnixNano()
			for i, r := range rs {
				ds[i] = enroll.Decision{RequestID: r.ID, StudentID: r.StudentID, CourseID: r.CourseID, Ticket: r.Ticket, Status: enroll.StatusEnrolled}
				if k := r.Ticket - first; k >= 0 && k < int64(len(ackAt)) {
					ackAt[k].Store(now)
				}
			}
			if err := q.Ack(ctx, ds); err == nil {
				st.decided.Add(int64(len(ds)))
			}
		}
	}
	return measure(ctx, f, f.pid, urls, &st, onFrame, drain, clients...)
}

// ---------------------------------------------------------------------------
// measurement

type client struct {
	ticket int64
	last   atomic.Int64
	result atomic.Bool
	frames atomic.Int64
}

type stats struct {
	frames, disconnects, connectErrors atomic.Int64
	changes, increases                 atomic.Int64
	decided, results, duplicates       atomic.Int64
	measuring                          atomic.Bool
	delivery, staleness, age           hist
}

// hist counts milliseconds in 1 ms buckets up to a minute.
type hist struct{ b [60001]atomic.Int64 }

func (h *hist) add(ms int64) { h.b[min(max(ms, 0), int64(len(h.b)-1))].Add(1) }

func (h *hist) quantile(q float64) int64 {
	var total int64
	for i := range h.b {
		total += h.b[i].Load()
	}
	if total == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.b {
		seen += h.b[i].Load()
		if seen >= want {
			return int64(i)
		}
	}
	return int64(len(h.b) - 1)
}

func (h *hist) max() int64 {
	for i := len(h.b) - 1; i >= 0; i-- {
		if h.b[i].Load() > 0 {
			return int64(i)
		}
	}
	return 0
}

// measure connects every URL, waits for the settle pause, then reads for
// the steady window (running work alongside, if any) and samples the
// server's CPU and memory.
func measure(ctx context.Context, f flags, pid int, urls []string, st *stats, onFrame func(*client, []byte, int64),
	work func(context.Context), clients ...*client) (phase, error) {
	if len(clients) == 0 {
		clients = make([]*client, len(urls))
		for i := range clients {
			clients[i] = &client{}
		}
	}
	var ph phase
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return ph, err
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var readers sync.WaitGroup
	conns := make([]*websocket.Conn, len(urls))
	began := time.Now()
	jobs := make(chan int)
	var dialers sync.WaitGroup
	for w := 0; w < f.dial; w++ {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for i := range jobs {
				d := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 256,
					NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%f.sources))}}).DialContext}
				var c *websocket.Conn
				var err error
				for attempt := 0; attempt < 3; attempt++ {
					if c, _, err = d.DialContext(ctx, urls[i], nil); err == nil {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil {
					st.connectErrors.Add(1)
					if st.connectErrors.Load() <= 3 {
						fmt.Fprintln(os.Stderr, "   dial:", err)
					}
					continue
				}
				conns[i] = c
				readers.Add(1)
				go func() {
					defer readers.Done()
					read(readCtx, c, clients[i], st, onFrame)
				}()
			}
		}()
	}
	for i := range urls {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	dialers.Wait()
	ph.ConnectSeconds = time.Since(began).Seconds()
	for _, c := range conns {
		if c != nil {
			ph.Connected++
		}
	}
	ph.ConnectErrors = st.connectErrors.Load()
	cpu1, _ := cpuSeconds(pid)
	ph.ConnectCPU = cpu1 - cpu0
	fmt.Printf("   %d connected in %.1fs\n", ph.Connected, ph.ConnectSeconds)

	sleepCtx(ctx, f.settle)
	workCtx, stopWork := context.WithCancel(ctx)
	var worker sync.WaitGroup
	if work != nil {
		worker.Add(1)
		go func() {
			defer worker.Done()
			work(workCtx)
		}()
	}
	cpu2, _ := cpuSeconds(pid)
	frames0 := st.frames.Load()
	t0 := time.Now()
	st.measuring.Store(true)
	sleepCtx(ctx, f.duration)
	st.measuring.Store(false)
	ph.SteadySeconds = time.Since(t0).Seconds()
	ph.Frames = st.frames.Load() - frames0
	cpu3, _ := cpuSeconds(pid)
	stopWork()
	worker.Wait()
	ph.SteadyCPU = cpu3 - cpu2
	ph.CPUPerSecond = ph.SteadyCPU / ph.SteadySeconds
	ph.FramesPerSecond = float64(ph.Frames) / ph.SteadySeconds
	if ph.Frames > 0 {
		ph.CPUPerFrameUS = ph.SteadyCPU / float64(ph.Frames) * 1e6
	}
	hwm, rss, err := memory(pid)
	if err != nil {
		return ph, err
	}
	ph.PeakRSSMB, ph.RSSMB = float64(hwm)/1024, float64(rss)/1024
	if ph.Connected > 0 {
		ph.RSSPerConnKB = float64(hwm) / float64(ph.Connected)
	}
	ph.DeliveryP50MS, ph.DeliveryP99MS = st.delivery.quantile(0.50), st.delivery.quantile(0.99)
	ph.StalenessP50MS, ph.StalenessP99MS, ph.StalenessMaxMS = st.staleness.quantile(0.50), st.staleness.quantile(0.99), st.staleness.max()
	ph.AgeP50MS, ph.AgeP99MS = st.age.quantile(0.50), st.age.quantile(0.99)
	ph.Changes, ph.Increases = st.changes.Load(), st.increases.Load()
	ph.Decided, ph.Results, ph.DuplicateResult = st.decided.Load(), st.results.Load(), st.duplicates.Load()

	stopReading()
	for _, c := range conns {
		if c != nil {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.Close()
		}
	}
	readers.Wait()
	ph.Disconnects = st.disconnects.Load()
	time.Sleep(2 * time.Second) // let the server reap the sessions before the next phase
	return ph, nil
}

func read(ctx context.Context, c *websocket.Conn, cl *client, st *stats, onFrame func(*client, []byte, int64)) {
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			if ctx.Err() == nil {
				st.disconnects.Add(1)
			}
			return
		}
		now := time.Now().UnixNano()
		cl.frames.Add(1)
		if st.measuring.Load() {
			st.frames.Add(1)
			if ts, ok := intField(b, `"ts":`); ok {
				st.delivery.add(now/1e6 - ts)
			}
		}
		onFrame(cl, b, now)
	}
}

// intField finds `key` (e.g. `"ts":`) in a frame and parses the integer
// after it.
func intField(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	j := i + len(key)
	k := j
	for k < len(b) && (b[k] == '-' || b[k] >= '0' && b[k] <= '9') {
		k++
	}
	v, err := strconv.ParseInt(string(b[j:k]), 10, 64)
	return v, err == nil
}

// ---------------------------------------------------------------------------
// processes and the queue

// cpuSeconds returns utime+stime of pid.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read server stat: %w", err)
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	ut, err1 := strconv.ParseFloat(fs[11], 64)                // field 14
	stt, err2 := strconv.ParseFloat(fs[12], 64)               // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return (ut + stt) / 100, nil // USER_HZ is 100 on Linux
}

// memory returns VmHWM and VmRSS of pid in KB.
func memory(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read server status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss, nil
}

func raiseNoFile(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	if need := uint64(n) + 256; lim.Max < need {
		return fmt.Errorf("RLIMIT_NOFILE hard limit is %d but %d connections need about %d descriptors here and in the server "+
			"(raise it: `ulimit -Hn 250000` as root with CAP_SYS_RESOURCE, or lower -n)", lim.Max, n, need)
	}
	return nil
}

func clearTerm(ctx context.Context, rdb *redis.Client, q *queue.Redis) error {
	prefix := strings.TrimSuffix(q.Keys().Open(), "open")
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan %s*: %w", prefix, err)
	}
	for len(keys) > 0 {
		k := min(len(keys), 500)
		if err := rdb.Del(ctx, keys[:k]...).Err(); err != nil {
			return fmt.Errorf("delete %s*: %w", prefix, err)
		}
		keys = keys[k:]
	}
	return nil
}

// spawn starts queue-ws and queue-ws -bare from f.spawn and fills in their
// URLs and pids.
func spawn(ctx context.Context, f *flags) (func(), error) {
	env := append(os.Environ(), "ENROLLQ_TERM="+f.term, "ENROLLQ_TOKEN_SECRET="+f.secret, "ENROLLQ_REDIS_ADDR="+f.redisAddr,
		"ENROLLQ_DEV=1") // benchmark instances on a term of their own
	start := func(args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(f.spawn, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s %v: %w", f.spawn, args, err)
		}
		return cmd, nil
	}
	addr := fmt.Sprintf("127.0.0.1:%d", f.port)
	bareAddr := fmt.Sprintf("127.0.0.1:%d", f.port+1)
	ws, err := start("-addr", addr)
	if err != nil {
		return nil, err
	}
	floor, err := start("-bare", "-addr", bareAddr)
	if err != nil {
		_ = ws.Process.Kill()
		return nil, err
	}
	stop := func() {
		for _, c := range []*exec.Cmd{ws, floor} {
			_ = c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}
	}
	for _, a := range []string{addr, bareAddr} {
		if err := waitHealthy(ctx, "http://"+a+"/healthz"); err != nil {
			stop()
			return nil, err
		}
	}
	f.url, f.pid = "ws://"+addr+"/ws", ws.Process.Pid
	f.bareURL, f.barePid = "ws://"+bareAddr+"/ws", floor.Process.Pid
	return stop, nil
}

func waitHealthy(ctx context.Context, u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not healthy: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
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
