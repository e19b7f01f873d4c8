// Command api is EnrollQ's HTTP API (Gin). It is stateless: run as many as
// you like behind nginx. Each instance also runs the drain scheduler unless
// started with --scheduler=false; a redsync lock lets one drain at a time.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/app"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/profiling"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/ratelimit"
	"github.com/enrollq/enrollq/internal/revocation"
	"github.com/enrollq/enrollq/internal/store"
)

//go:embed openapi.json
var openapiJSON []byte

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(log)
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("api stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	// Production mode unless ENROLLQ_DEV=1: unsafe secrets and unparsable
	// values stop the start (issue #16).
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if w := cfg.DevWarning(); w != "" {
		log.Warn(w)
	}
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	withScheduler := fs.Bool("scheduler", true, "run the drain scheduler in this instance")
	addr := fs.String("addr", cfg.HTTPAddr, "listen address (ENROLLQ_HTTP_ADDR)")
	withSearch := fs.Bool("search", true, "answer GET /courses from the search node (with SQL fallback)")
	withIndexer := fs.Bool("indexer", true, "run the search indexer (one per deployment is enough)")
	pprofAddr := fs.String("pprof", "", "serve Go's /debug/pprof on this loopback address (off when empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	deps, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer deps.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)

	srv, err := newServer(ctx, cfg, deps, reg, m, log)
	if err != nil {
		return err
	}
	svc, q, st := srv.svc, srv.svc.Queue, srv.svc.Store
	// Token versions: loaded at start, kept fresh from Redis (revocation).
	go svc.Versions.Run(ctx, log)
	if *withSearch {
		ss, err := startSearch(ctx, cfg, deps, reg, log, *withIndexer)
		if err != nil {
			return err
		}
		srv.search = ss
	}

	var sched *enroll.Scheduler
	if *withScheduler {
		rs := redsync.New(goredis.NewPool(deps.rdb))
		sched = enroll.NewScheduler(q, st, rs, q.Keys().Lock(), enroll.SchedulerConfig{
			BatchSize: cfg.BatchSize, Reconcile: svc.Reconcile, Observe: m.observeBatch, Logger: log,
		})
		go func() {
			if err := sched.Start(ctx); err != nil {
				log.Error("scheduler", "err", err)
			}
		}()
		// An opening whose drawer died is finished by a scheduler instance.
		go svc.ResumeOpenings(ctx, 5*time.Second)
		// Redis's AOF is rewritten between bursts, not in them.
		if cfg.AOFCompactEvery > 0 {
			go queue.NewCompactor(deps.rdb, queue.CompactConfig{
				Every: cfg.AOFCompactEvery, Hold: q.CompactHold, Observe: m.observeAOF, Logger: log,
			}).Run(ctx)
		}
	}
	go watchQueue(ctx, q, m, sched)

	if *pprofAddr != "" {
		stopPprof, err := profiling.Serve(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	httpSrv := newHTTPServer(*addr, srv.routes())
	serverErrors := make(chan error, 1)
	go func() {
		log.Info("api listening", "addr", *addr, "scheduler", *withScheduler)
		serverErrors <- httpSrv.ListenAndServe()
	}()

	select {
	case err := <-serverErrors:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("api shutting down")
	// Intake first, then the scheduler (it finishes and acks its batch).
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		_ = httpSrv.Close()
	}
	if sched != nil {
		sched.Stop()
	}
	return nil
}

// newServer builds the HTTP adapter over deps: the use cases, the rate
// limiter, the bootstrap admin account and every extension. Tests build the
// same server on a test database and Redis key space.
func newServer(ctx context.Context, cfg config.Config, d *deps, reg *prometheus.Registry, m *metrics, log *slog.Logger) (*server, error) {
	proxies, err := trustedProxies()
	if err != nil {
		return nil, err
	}
	q := queue.New(d.rdb, cfg.Term)
	st := enroll.NewStore(d.db, cfg.Term)
	signer := auth.NewSigner(cfg.TokenSecret)
	svc := &app.Service{DB: d.db, Replica: d.replica, Queue: q, Store: st, Signer: signer,
		TokenTTL: cfg.TokenTTL, WSTokenTTL: 15 * time.Minute, CancelLease: 10 * time.Second,
		AdminUser: cfg.AdminUser, AdminPassword: cfg.AdminPassword, BcryptCost: cfg.BcryptCost, Term: cfg.Term, Log: log,
		Versions: revocation.New(d.db, d.rdb, cfg.Term), Dev: cfg.Dev}
	if _, err := svc.BootstrapAdmin(ctx, cfg.AdminUser, cfg.AdminPassword); err != nil {
		return nil, err
	}
	srv := &server{svc: svc, signer: signer, metrics: m, reg: reg, wsURL: cfg.WSPublicURL, webDir: cfg.WebDir,
		ready: cachedReadiness(readiness(d, q), readyTTL, log), limiter: ratelimit.New(d.rdb, cfg.Term), limits: ratelimit.FromEnv(), log: log, proxies: proxies}
	for _, ext := range extensions {
		if err := ext(ctx, cfg, d, srv, reg, log); err != nil {
			return nil, err
		}
	}
	// admissions / admit.lua calls = how many requests one Redis round trip carried
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "enrollq_admit_calls_total",
		Help: "admit.lua calls sent by this instance; enrollq_admissions_total over this is the mean group size.",
	}, func() float64 { return float64(q.AdmitCalls()) }))
	return srv, nil
}

// deps are the connections a process holds.
type deps struct {
	db      *sqlx.DB
	replica *sqlx.DB
	rdb     *redis.Client
}

func (d *deps) close() {
	if d.rdb != nil {
		d.rdb.Close()
	}
	if d.replica != nil && d.replica != d.db {
		d.replica.Close()
	}
	if d.db != nil {
		d.db.Close()
	}
}

func connect(ctx context.Context, cfg config.Config) (*deps, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(cctx, cfg.DBDSN)
	if err != nil {
		return nil, fmt.Errorf("connect primary: %w", err)
	}
	d := &deps{db: db}
	rep, err := store.Open(cctx, cfg.ReplicaDSN)
	if err != nil {
		slog.Warn("replica unavailable; reading from the primary", "err", err)
		rep = db
	}
	d.replica = rep
	d.rdb = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: 512, MinIdleConns: 16})
	if err := d.rdb.Ping(cctx).Err(); err != nil {
		d.close()
		return nil, fmt.Errorf("connect redis %s: %w", cfg.RedisAddr, err)
	}
	return d, nil
}

func readiness(d *deps, q *queue.Redis) func(ctx context.Context) map[string]any {
	return func(ctx context.Context) map[string]any {
		rep := map[string]any{}
		ok := true
		check := func(name string, err error) {
			if err != nil {
				ok = false
				rep[name] = obj{"ok": false, "error": err.Error()}
				return
			}
			rep[name] = obj{"ok": true}
		}
		check("primary", d.db.PingContext(ctx))
		check("redis", d.rdb.Ping(ctx).Err())
		lag, err := replicaLag(ctx, d.replica)
		if err != nil {
			check("replica", err)
		} else {
			rep["replica"] = obj{"ok": true, "lag_seconds": lag}
		}
		for name, probe := range readyProbes {
			check(name, probe(ctx))
		}
		rep["ok"] = ok
		return rep
	}
}

type obj = map[string]any

// readyProbes are extra readiness checks registered by extensions (search).
var readyProbes = map[string]func(ctx context.Context) error{}

// extensions wire optional parts (search, admin, web) into the server.
var extensions []func(ctx context.Context, cfg config.Config, d *deps, s *server, reg *prometheus.Registry, log *slog.Logger) error

func replicaLag(ctx context.Context, rep *sqlx.DB) (float64, error) {
	rows, err := rep.QueryxContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return 0, fmt.Errorf("replica status: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, errors.New("replica: not replicating (no slave status)")
	}
	row := map[string]any{}
	if err := rows.MapScan(row); err != nil {
		return 0, fmt.Errorf("replica status: %w", err)
	}
	if string(asBytes(row["Slave_SQL_Running"])) != "Yes" || string(asBytes(row["Slave_IO_Running"])) != "Yes" {
		return 0, fmt.Errorf("replica: replication threads not running (io=%s sql=%s)", asBytes(row["Slave_IO_Running"]), asBytes(row["Slave_SQL_Running"]))
	}
	var lag float64
	if _, err := fmt.Sscan(string(asBytes(row["Seconds_Behind_Master"])), &lag); err != nil {
		return 0, errors.New("replica: lag unknown")
	}
	return lag, nil
}

func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	case nil:
		return nil
	default:
		return []byte(fmt.Sprint(x))
	}
}

func watchQueue(ctx context.Context, q *queue.Redis, m *metrics, sched *enroll.Scheduler) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := q.Stats(ctx)
		if err != nil {
			continue
		}
		m.queueDepth.WithLabelValues("waiting").Set(float64(st.Waiting))
		m.queueDepth.WithLabelValues("inflight").Set(float64(st.Inflight))
		if sched != nil && sched.IsLeader() {
			m.leader.Set(1)
		} else {
			m.leader.Set(0)
		}
	}
}
