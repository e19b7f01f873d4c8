// Command searchbench measures course search on the OpenSearch node against
// the SQL LIKE fallback on the MariaDB replica, in one run on one machine.
//
// It creates a scratch database enrollq_t_bench_<random> on the primary,
// seeds a catalog of -sections sections (the fixture multiplied with new
// codes), waits for the replica, builds a scratch index through the real
// Indexer.Rebuild, and then, for each backend, runs
//
//   - a closed loop: -concurrency workers searching back to back for
//     -duration (the throughput the backend sustains: qps, p50, p99);
//   - an open loop: searches started at a fixed -rate per second for
//     -duration, latency measured from each search's scheduled start so a
//     stall is not hidden (p50, p99 at that rate).
//
// The query mix is searchtest.QueryMix: typed prefixes, titles, codes,
// professors, English typos and filter-only browsing, first pages with
// facets. The scratch database and index are removed at the end.
//
//	go run ./cmd/searchbench -sections 12000 -duration 10s -rate 500
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/search"
	"github.com/enrollq/enrollq/internal/search/searchtest"
	"github.com/enrollq/enrollq/internal/store"
)

// firstErr keeps the first search error for the report.
var firstErr atomic.Value

func noteErr(err error) {
	firstErr.CompareAndSwap(nil, err.Error())
}

type options struct {
	sections    int
	duration    time.Duration
	concurrency int
	rate        int
	fixture     string
	backends    string
}

// report is one backend's numbers.
type report struct {
	Backend     string  `json:"backend"`
	Mode        string  `json:"mode"` // closed (max throughput) or open (fixed rate)
	Concurrency int     `json:"concurrency,omitempty"`
	TargetQPS   int     `json:"target_qps,omitempty"`
	Searches    int     `json:"searches"`
	Errors      int     `json:"errors"`
	Dropped     int     `json:"dropped,omitempty"` // open loop: not started, backend saturated
	QPS         float64 `json:"qps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
}

func main() {
	var o options
	flag.IntVar(&o.sections, "sections", 12000, "catalog size to seed")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measurement")
	flag.IntVar(&o.concurrency, "concurrency", 8, "workers in the closed loop")
	flag.IntVar(&o.rate, "rate", 500, "searches per second in the open loop")
	flag.StringVar(&o.fixture, "fixture", "testdata/fixtures/catalog.csv", "catalog CSV to multiply")
	flag.StringVar(&o.backends, "backends", "node,sql", "backends to measure (node, sql)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cfg := config.FromEnv()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	base, err := searchtest.LoadCSV(o.fixture)
	if err != nil {
		return err
	}
	courses := searchtest.Multiply(base, o.sections)

	// Scratch database on the primary, seen through the replica.
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "enrollq_t_bench_" + hex.EncodeToString(b)
	admin, err := store.Open(ctx, withDB(cfg.DBDSN, ""))
	if err != nil {
		return fmt.Errorf("connect to the primary: %w", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(cctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			log.Warn("drop scratch database", "db", name, "err", err)
		}
	}()
	primary, err := store.Open(ctx, withDB(cfg.DBDSN, name))
	if err != nil {
		return err
	}
	defer primary.Close()
	if err := store.Migrate(ctx, primary); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := searchtest.Seed(ctx, primary, courses); err != nil {
		return err
	}
	log.Info("seeded", "sections", len(courses), "took", time.Since(t0).Round(time.Millisecond))
	replica, err := openReplica(ctx, withDB(cfg.ReplicaDSN, name))
	if err != nil {
		return err
	}
	defer replica.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = searchtest.WaitReplica(wctx, primary, replica)
	cancel()
	if err != nil {
		return err
	}

	alias := name + "_courses"
	client, err := search.NewClient(search.ClientConfig{Addresses: []string{cfg.SearchURL}, Alias: alias})
	if err != nil {
		return err
	}
	ix, err := search.NewIndexer(search.IndexerConfig{Client: client, Replica: replica, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		targets, _ := client.AliasTargets(cctx)
		for _, t := range targets {
			if err := client.DeleteIndex(cctx, t); err != nil {
				log.Warn("delete scratch index", "index", t, "err", err)
			}
		}
	}()
	t0 = time.Now()
	if err := ix.Rebuild(ctx, nil); err != nil {
		return err
	}
	log.Info("indexed", "sections", len(courses), "took", time.Since(t0).Round(time.Millisecond))

	specs := searchtest.QueryMix(base, 5000, 42)
	queries := make([]search.Query, len(specs))
	for i, s := range specs {
		queries[i] = search.Query{Text: s.Text, Department: s.Department, Category: s.Category, Credits: s.Credits,
			Days: s.Days, From: s.From, To: s.To, OpenOnly: s.OpenOnly}
	}
	if _, err := client.Search(ctx, queries[0]); err != nil {
		return fmt.Errorf("first search %+v: %w", queries[0], err)
	}
	loadStart := loadavg()
	backends := map[string]search.Searcher{"node": client, "sql": search.NewSQL(replica)}
	var reports []report
	for _, name := range splitList(o.backends) {
		s, ok := backends[name]
		if !ok {
			return fmt.Errorf("unknown backend %q", name)
		}
		// Warm up caches and connections.
		closedLoop(ctx, s, queries, o.concurrency, 2*time.Second)
		r := closedLoop(ctx, s, queries, o.concurrency, o.duration)
		r.Backend = name
		reports = append(reports, r)
		r = openLoop(ctx, s, queries, o.rate, o.duration)
		r.Backend = name
		reports = append(reports, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Printf("catalog %d sections, query mix of %d, %v per measurement, load average %s -> %s\n\n",
		len(courses), len(queries), o.duration, loadStart, loadavg())
	fmt.Printf("%-5s %-22s %8s %7s %8s %9s %8s %8s %8s\n", "", "mode", "searches", "errors", "dropped", "qps", "p50 ms", "p99 ms", "max ms")
	for _, r := range reports {
		mode := fmt.Sprintf("closed, %d workers", r.Concurrency)
		if r.Mode == "open" {
			mode = fmt.Sprintf("open, %d/s offered", r.TargetQPS)
		}
		fmt.Printf("%-5s %-22s %8d %7d %8d %9.1f %8.2f %8.2f %8.2f\n", r.Backend, mode, r.Searches, r.Errors, r.Dropped, r.QPS, r.P50ms, r.P99ms, r.MaxMs)
	}
	if e := firstErr.Load(); e != nil {
		fmt.Printf("\nfirst error: %s\n", e)
	}
	js, _ := json.Marshal(reports)
	fmt.Printf("\n%s\n", js)
	return nil
}

// closedLoop runs workers that search back to back.
func closedLoop(ctx context.Context, s search.Searcher, qs []search.Query, workers int, d time.Duration) report {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		next   atomic.Int64
		errs   atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		wg     sync.WaitGroup
		start  = time.Now()
		worker = func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				q := qs[int(next.Add(1))%len(qs)]
				t := time.Now()
				_, err := s.Search(ctx, q)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					errs.Add(1)
					noteErr(err)
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}
	)
	for range workers {
		wg.Go(worker)
	}
	wg.Wait()
	r := summarize(lat, time.Since(start))
	r.Mode, r.Concurrency, r.Errors = "closed", workers, int(errs.Load())
	return r
}

// openLoop starts searches at a fixed rate, whatever the answers take, and
// measures each from its scheduled start.
func openLoop(ctx context.Context, s search.Searcher, qs []search.Query, rate int, d time.Duration) report {
	var (
		errs    atomic.Int64
		dropped atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		wg      sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	n := int(d / interval)
	sem := make(chan struct{}, 256) // beyond this the backend is saturated anyway
	for i := 0; i < n && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		// A backend that cannot take the search within a second of its
		// due time is saturated: count it as dropped instead of queueing.
		select {
		case sem <- struct{}{}:
		case <-time.After(time.Until(due.Add(time.Second))):
			dropped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.Search(qctx, qs[i%len(qs)])
			cancel()
			l := time.Since(due)
			if err != nil {
				errs.Add(1)
				noteErr(err)
			}
			mu.Lock()
			lat = append(lat, l)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := summarize(lat, time.Since(start))
	r.Mode, r.TargetQPS, r.Errors, r.Dropped = "open", rate, int(errs.Load()), int(dropped.Load())
	return r
}

func summarize(lat []time.Duration, elapsed time.Duration) report {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := min(len(lat)-1, int(p*float64(len(lat))))
		return float64(lat[i].Microseconds()) / 1000
	}
	r := report{Searches: len(lat), QPS: float64(len(lat)) / elapsed.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99)}
	if len(lat) > 0 {
		r.MaxMs = float64(lat[len(lat)-1].Microseconds()) / 1000
	}
	return r
}

func withDB(dsn, name string) string {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn
	}
	c.DBName = name
	return c.FormatDSN()
}

// openReplica waits until the scratch database exists on the replica.
func openReplica(ctx context.Context, dsn string) (*sqlx.DB, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		db, err := store.Open(ctx, dsn)
		if err == nil {
			return db, nil
		}
		if time.Now().After(deadline) || errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("open the replica: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// loadavg returns the 1-minute load average (the machine is shared: the
// numbers mean little when other work is running).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
