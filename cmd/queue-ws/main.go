// Command queue-ws is EnrollQ's WebSocket server: students connect to /ws
// with the ws_token of an admission and get their live position, ETA and
// result. Any number of instances may run behind nginx; each makes one Redis
// call per tick whatever its number of sessions (see internal/positions and
// docs/WEBSOCKET.md).
//
//	queue-ws [-addr 127.0.0.1:8082] [-tick 1s] [-ping 120s] [-buffer 16] [-bare] [-pprof 127.0.0.1:9082]
//
// Settings come from the environment (internal/config): ENROLLQ_WS_ADDR,
// ENROLLQ_REDIS_ADDR, ENROLLQ_DB_DSN, ENROLLQ_REPLICA_DSN, ENROLLQ_TERM,
// ENROLLQ_TOKEN_SECRET; ENROLLQ_WS_TICK sets the tick. -bare serves the
// cost floor for cmd/wsbench: melody broadcasting one frame per tick, with no
// authentication and no Redis or MariaDB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/profiling"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/revocation"
	"github.com/enrollq/enrollq/internal/store"
)

func main() {
	// Production mode unless ENROLLQ_DEV=1: an unsafe token secret or an
	// unparsable value stops the start (issue #16).
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "queue-ws: configuration:", err)
		os.Exit(1)
	}
	tickDefault := time.Second
	if v, err := time.ParseDuration(os.Getenv("ENROLLQ_WS_TICK")); err == nil {
		tickDefault = v
	}
	var pingDefault time.Duration // 0: options.defaults (120 s)
	if v, err := time.ParseDuration(os.Getenv("ENROLLQ_WS_PING")); err == nil {
		pingDefault = v
	}
	addr := flag.String("addr", cfg.WSAddr, "listen address (ENROLLQ_WS_ADDR)")
	tick := flag.Duration("tick", tickDefault, "watermark read period (ENROLLQ_WS_TICK)")
	ping := flag.Duration("ping", pingDefault, "ping period of every session; the pong deadline is twice that (ENROLLQ_WS_PING, default 120s)")
	buffer := flag.Int("buffer", 16, "frames queued per session before positions are dropped")
	pprofAddr := flag.String("pprof", "", "serve Go's /debug/pprof on this loopback address (off when empty)")
	bare := flag.Bool("bare", false, "serve the benchmark floor: melody broadcasting one frame per tick, nothing else")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	if w := cfg.DevWarning(); w != "" {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	o := options{Tick: *tick, BufferSize: *buffer, PingPeriod: *ping, Logger: log}
	if *pprofAddr != "" {
		stopPprof, err := profiling.Serve(*pprofAddr, log)
		if err != nil {
			log.Error("queue-ws: stopped", "err", err)
			os.Exit(1)
		}
		defer stopPprof()
	}
	if err := run(ctx, cfg, *addr, *bare, o); err != nil {
		log.Error("queue-ws: stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config, addr string, bare bool, o options) error {
	// No TCP keep-alive probes: every session is pinged (options.PingPeriod)
	// and closed when its pong is missing; Go's default probes, every 15 s
	// per socket, would be 6,700 more packets a second at 100,000 sessions.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if bare {
		return runBare(ctx, ln, o)
	}
	defer ln.Close()

	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: 64})
	defer rdb.Close()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rdb.Ping(octx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", cfg.RedisAddr, err)
	}
	primary, err := store.Open(octx, cfg.DBDSN)
	if err != nil {
		return fmt.Errorf("mariadb primary: %w", err)
	}
	defer primary.Close()
	reader := decisionReader{primary: enroll.NewStore(primary, cfg.Term)}
	if replica, err := store.Open(octx, cfg.ReplicaDSN); err != nil {
		o.Logger.Warn("queue-ws: replica unavailable; reading decisions from the primary", "err", err)
	} else {
		defer replica.Close()
		reader.replica = enroll.NewStore(replica, cfg.Term)
	}

	q := queue.New(rdb, cfg.Term)
	// Token versions: loaded at start, kept fresh from Redis (revocation).
	versions := revocation.New(primary, rdb, cfg.Term)
	vctx, stopVersions := context.WithCancel(ctx)
	defer stopVersions()
	go versions.Run(vctx, o.Logger)
	srv := newServer(o, deps{Line: q, Redis: rdb, Keys: q.Keys(), Decisions: newGroupedDecisions(reader), Signer: auth.NewSigner(cfg.TokenSecret),
		Versions: versions})
	srv.start()
	rctx, stopReports := context.WithCancel(context.Background())
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		reportSessions(rctx, q, instanceName(ln.Addr().String()), func() int64 { return srv.eng.Stats().Sessions },
			sessionsReportEvery, o.Logger)
	}()
	defer func() { stopReports(); <-reportsDone }()
	serverErrors := make(chan error, 1)
	go func() { serverErrors <- srv.serve(ln) }()
	o.Logger.Info("queue-ws: listening", "addr", ln.Addr().String(), "term", cfg.Term, "tick", o.Tick)

	select {
	case err := <-serverErrors:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	case <-ctx.Done():
		o.Logger.Info("queue-ws: shutting down", "sessions", srv.eng.Stats().Sessions)
	}
	stopReports() // the registrar's view stops counting this instance now
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	if err := srv.shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Redis and MariaDB close through the defers above, after the sessions.
	return nil
}
