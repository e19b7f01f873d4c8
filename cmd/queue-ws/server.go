package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/positions"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/revocation"
)

// options are the WebSocket server's settings.
type options struct {
	Tick       time.Duration // watermark read period
	BufferSize int           // melody MessageBufferSize: frames queued per session
	PingPeriod time.Duration
	PongWait   time.Duration
	WriteWait  time.Duration
	MaxIDs     int // request ids accepted in ?requests=
	// MaxSocketsPerStudent caps the sockets one student holds on this
	// instance (default 5); beyond it a socket is closed with 4008.
	MaxSocketsPerStudent int
	// MsgRate and MsgBurst are each session's client-message budget (a token
	// bucket, default 10/s, burst 40); beyond it the session is closed with
	// 4009.
	MsgRate, MsgBurst int
	Logger            *slog.Logger
}

func (o *options) defaults() {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 16
	}
	if o.BufferSize < positionHeadroom+2 {
		o.BufferSize = positionHeadroom + 2
	}
	// Pings find vanished clients. They are not what keeps a waiting
	// student's socket alive: a position goes out every tick while a request
	// waits, and the web client drops a socket that is silent for 6 s and
	// closes it when nothing is pending. Each ping crosses nginx twice (ping
	// and pong): at 100,000 sessions a 20 s period was 5,000 pings a second,
	// most of an otherwise idle machine's loopback traffic, and a 30 s pong
	// wait closed sessions whose pong was merely late under load; 120 s /
	// 240 s answered the 100k run 19% faster than 50 s / 100 s
	// (docs/BENCHMARKS.md) and frees a dead client's session within 4 min.
	if o.PingPeriod <= 0 {
		o.PingPeriod = 120 * time.Second
	}
	if o.PongWait <= o.PingPeriod {
		o.PongWait = 2 * o.PingPeriod
	}
	if o.WriteWait <= 0 {
		o.WriteWait = 5 * time.Second
	}
	if o.MaxIDs <= 0 {
		o.MaxIDs = 32
	}
	if o.MaxSocketsPerStudent <= 0 {
		o.MaxSocketsPerStudent = defaultMaxSockets
	}
	if o.MsgRate <= 0 {
		o.MsgRate = defaultMsgRate
	}
	if o.MsgBurst <= 0 {
		o.MsgBurst = defaultMsgBurst
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// deps are the services the server talks to.
type deps struct {
	Line      positions.Line
	Redis     redis.UniversalClient // events channel and discovery (nil: neither)
	Keys      queue.Keys
	Decisions positions.Decisions
	Signer    *auth.Signer
	Versions  *revocation.Versions // token versions (nil: not checked)
}

// server is one queue-ws instance: a Gin router in front of melody, and the
// positions engine behind it.
type server struct {
	opts     options
	log      *slog.Logger
	eng      *positions.Engine
	mel      *melody.Melody
	signer   *auth.Signer
	versions *revocation.Versions
	reg      *prometheus.Registry
	handler  http.Handler
	http     *http.Server
	sockets  *studentSockets // per-student socket cap

	baseCtx    context.Context // lookups made on behalf of sessions
	cancelBase context.CancelFunc
	engDone    chan struct{}
	watchers   sync.WaitGroup // initial watches of new sessions
	upgrading  atomic.Int64   // handshakes between the handler and onConnect
	startOnce  sync.Once
	stopOnce   sync.Once
}

// Keys of the values stored in a melody session.
const (
	keyStudent = "student"
	keyIDs     = "ids"
	keyDraw    = "draw"
	keySink    = "sink"
	keySession = "ps"
	keyJoined  = "joined"  // func() called once the session is registered
	keyRefused = "refused" // over the per-student socket cap: closed at once
	keyBudget  = "budget"  // *msgBucket: the client-message budget
	keyClaims  = "claims"  // auth.Claims of the session's token (revocation)
)

func newMelody(o options) *melody.Melody {
	m := melody.New()
	m.Config.MessageBufferSize = o.BufferSize
	m.Config.PingPeriod = o.PingPeriod
	m.Config.PongWait = o.PongWait
	m.Config.WriteWait = o.WriteWait
	m.Config.MaxMessageSize = 512
	m.Upgrader.ReadBufferSize = 512
	m.Upgrader.WriteBufferSize = 1024
	m.Upgrader.WriteBufferPool = &sync.Pool{} // idle sessions hold no write buffer
	// Tokens travel in the URL, not in cookies, so a cross-site page cannot
	// ride on a student's session: any origin may connect.
	m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	return m
}

func newServer(o options, d deps) *server {
	o.defaults()
	s := &server{opts: o, log: o.Logger, signer: d.Signer, versions: d.Versions, reg: prometheus.NewRegistry(), engDone: make(chan struct{}),
		sockets: newStudentSockets(o.MaxSocketsPerStudent)}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	m := newMetrics(s.reg)
	s.eng = positions.New(positions.Config{
		Line:        d.Line,
		Decisions:   d.Decisions,
		Redis:       d.Redis,
		Keys:        d.Keys,
		Tick:        o.Tick,
		ObserveTick: func(took time.Duration) { m.tick.Observe(took.Seconds()) },
		Logger:      o.Logger,
	})
	m.watch(s.eng)

	s.mel = newMelody(o)
	if s.versions != nil {
		s.versions.OnBump = s.onBump
	}
	s.mel.HandleConnect(s.onConnect)
	s.mel.HandleDisconnect(s.onDisconnect)
	s.mel.HandleMessage(s.onMessage)
	s.mel.HandleSentMessage(func(ms *melody.Session, _ []byte) {
		if k, ok := ms.Get(keySink); ok {
			k.(*wsSink).sent()
		}
	})
	s.mel.HandleError(func(ms *melody.Session, err error) {
		if errors.Is(err, melody.ErrMessageBufferFull) {
			if k, ok := ms.Get(keySink); ok {
				k.(*wsSink).full.Store(true)
			}
		}
	})

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/ws", s.handleWS)
	r.GET("/healthz", s.handleHealth)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})))
	s.handler = r
	s.http = &http.Server{Handler: r, ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}
	applyTimeouts(s.http)
	return s
}

// start runs the positions engine until shutdown.
func (s *server) start() {
	s.startOnce.Do(func() {
		go func() {
			defer close(s.engDone)
			s.eng.Run(s.baseCtx)
		}()
	})
}

// serve accepts connections on ln until shutdown; it returns
// http.ErrServerClosed after a clean shutdown.
func (s *server) serve(ln net.Listener) error { return s.http.Serve(ln) }

// shutdown stops the instance in order: no new connections; the engine
// stops producing frames; every session gets a going-away close frame (the
// client reconnects and nginx sends it to another instance); then it waits
// for the sessions to end, up to ctx's deadline.
func (s *server) shutdown(ctx context.Context) error {
	var errs []error
	s.stopOnce.Do(func() {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			_ = s.http.Close()
		}
		if err := waitFor(ctx, func() bool { return s.upgrading.Load() == 0 }); err != nil {
			errs = append(errs, fmt.Errorf("handshakes still under way: %w", err))
			return
		}
		s.cancelBase()
		s.start() // so that engDone closes even if start was never called
		<-s.engDone
		s.watchers.Wait()
		// Each session is closed on its own, and melody's hub stops only
		// once they have all ended: a session that ends while the hub stops
		// would block for ever on its unregister (melody v1.1.4 checks that
		// the hub is open, then sends on an unbuffered channel its loop no
		// longer reads), and its disconnect would never run.
		goingAway := melody.FormatCloseMessage(positions.CloseGoingAway, positions.ReasonGoingAway)
		if all, err := s.mel.Sessions(); err == nil {
			for _, ms := range all {
				_ = ms.CloseWithMsg(goingAway) // ErrSessionClosed: it is ending already
			}
		}
		if err := waitFor(ctx, func() bool { return s.eng.Stats().Sessions == 0 }); err != nil {
			errs = append(errs, fmt.Errorf("%d sessions still open: %w", s.eng.Stats().Sessions, err))
		}
		if err := s.mel.CloseWithMsg(goingAway); err != nil && !errors.Is(err, melody.ErrClosed) {
			errs = append(errs, fmt.Errorf("close the session hub: %w", err))
		}
	})
	return errors.Join(errs...)
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// apiError is an error answered before the upgrade, in the API's format.
type apiError struct {
	Status    int
	Code      string
	Message   string // Korean
	MessageEN string
}

var (
	errNoToken      = apiError{http.StatusUnauthorized, "unauthorized", "대기열 연결 토큰이 필요합니다.", "A ws token is required (?token=...)."}
	errTokenInvalid = apiError{http.StatusUnauthorized, "token_invalid", "유효하지 않은 연결 토큰입니다.", "The ws token is invalid."}
	errTokenExpired = apiError{http.StatusUnauthorized, "token_expired", "연결 토큰이 만료되었습니다. 새 토큰을 받으세요.", "The ws token has expired; get a new one from the API."}
	errTokenKind    = apiError{http.StatusUnauthorized, "token_wrong_kind", "대기열 연결용 토큰이 아닙니다.", "This is not a ws token (use the ws_token of an admission)."}
	errBadRequests  = apiError{http.StatusBadRequest, "bad_request", "requests 파라미터가 올바르지 않습니다.", "requests must be a comma-separated list of positive request ids."}
	errNotWS        = apiError{http.StatusBadRequest, "websocket_required", "웹소켓 연결이 필요합니다.", "This endpoint only accepts WebSocket upgrades."}
	errGoingAway    = apiError{http.StatusServiceUnavailable, "going_away", "서버가 종료 중입니다. 다시 연결하세요.", "This instance is shutting down; reconnect."}
)

func abort(c *gin.Context, e apiError) {
	c.AbortWithStatusJSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message, "message_en": e.MessageEN}})
}

// handleWS authenticates before upgrading: a refused token gets an HTTP 401
// with a JSON error, never a WebSocket.
func (s *server) handleWS(c *gin.Context) {
	tok := c.Query("token")
	if tok == "" {
		tok, _ = strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	}
	if tok == "" {
		abort(c, errNoToken)
		return
	}
	claims, err := s.signer.Verify(tok, auth.KindWS)
	switch {
	case errors.Is(err, auth.ErrExpired):
		abort(c, errTokenExpired)
		return
	case errors.Is(err, auth.ErrWrongKind):
		abort(c, errTokenKind)
		return
	case err != nil || claims.Subject <= 0:
		abort(c, errTokenInvalid)
		return
	}
	if !s.checkVersion(c, claims) { // revoked sessions (revoke.go)
		return
	}
	ids, err := parseIDs(c.Query("requests"), s.opts.MaxIDs)
	if err != nil {
		abort(c, errBadRequests)
		return
	}
	if !websocket.IsWebSocketUpgrade(c.Request) {
		abort(c, errNotWS)
		return
	}
	if s.mel.IsClosed() || s.baseCtx.Err() != nil {
		abort(c, errGoingAway)
		return
	}
	// Count the handshake until melody has registered the session, so that
	// shutdown never closes melody's hub under a session still joining it.
	s.upgrading.Add(1)
	var once sync.Once
	joined := func() { once.Do(func() { s.upgrading.Add(-1) }) }
	keys := map[string]any{keyStudent: claims.Subject, keyIDs: ids, keyJoined: joined, keyDraw: c.Query("draw") == "1",
		keyBudget: newMsgBucket(s.opts.MsgRate, s.opts.MsgBurst), keyClaims: claims}
	// The cap is counted per student on this instance; the slot is held
	// for as long as the socket (HandleRequestWithKeys returns when it ends).
	// A socket over the cap is upgraded and closed at once with 4008, so
	// that a browser sees why (a refused handshake shows no status).
	if s.sockets.acquire(claims.Subject) {
		defer s.sockets.release(claims.Subject)
	} else {
		keys[keyRefused] = true
	}
	err = s.mel.HandleRequestWithKeys(c.Writer, c.Request, keys)
	joined()
	if err != nil {
		if errors.Is(err, melody.ErrClosed) {
			abort(c, errGoingAway)
			return
		}
		// The upgrader has answered the client already.
		s.log.Debug("queue-ws: upgrade failed", "err", err)
	}
}

// parseIDs parses "1,2,3" (empty: none).
func parseIDs(v string, maxIDs int) ([]int64, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxIDs {
		return nil, fmt.Errorf("%d request ids, at most %d", len(parts), maxIDs)
	}
	ids := make([]int64, 0, len(parts))
	for _, p := range parts {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("bad request id %q", p)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// onConnect registers the session and starts its watches: the ids named in
// the URL, or else a discovery of the student's pending requests; with
// draw=1, it also waits for the pre-queue's draw (and does not discover).
func (s *server) onConnect(ms *melody.Session) {
	if _, refused := ms.Get(keyRefused); refused {
		ms.MustGet(keyJoined).(func())()
		_ = ms.CloseWithMsg(melody.FormatCloseMessage(positions.CloseTooManySessions, positions.ReasonTooManySessions))
		return
	}
	student := ms.MustGet(keyStudent).(int64)
	ids, _ := ms.MustGet(keyIDs).([]int64)
	sink := newSink(ms, s.opts.BufferSize)
	ps := s.eng.Open(student, sink)
	ms.Set(keySink, sink)
	ms.Set(keySession, ps)
	ms.MustGet(keyJoined).(func())()
	if ms.MustGet(keyDraw).(bool) {
		// A page with pre-queue entries: the opened frame when the window
		// opens (it reads and names its drawn requests then; no discovery).
		ps.AwaitDraw(s.baseCtx)
	} else if len(ids) == 0 {
		ps.Discover()
		return
	}
	if len(ids) == 0 {
		return
	}
	// Lookups take a round trip each; let the write pump start meanwhile.
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		ps.Watch(s.baseCtx, ids...)
	}()
}

// onBump closes the open sockets of a student whose token version moved
// (a password change or a registrar's revoke) with 4010 if their token is
// older than it: a revoke ends the sessions already open, not only the next
// handshake. The same bump is told again within the overlap; sockets opened
// with the new token are left alone.
func (s *server) onBump(kind string, id int64) {
	if kind != revocation.Student {
		return
	}
	sessions, err := s.mel.Sessions()
	if err != nil {
		return
	}
	for _, ms := range sessions {
		st, ok := ms.Get(keyStudent)
		if !ok || st.(int64) != id {
			continue
		}
		c, ok := ms.Get(keyClaims)
		if !ok {
			continue
		}
		if err := s.versions.Check(s.baseCtx, c.(auth.Claims)); errors.Is(err, auth.ErrRevoked) {
			_ = ms.CloseWithMsg(melody.FormatCloseMessage(positions.CloseRevoked, positions.ReasonRevoked))
		}
	}
}

func (s *server) onDisconnect(ms *melody.Session) {
	if ps, ok := ms.Get(keySession); ok {
		ps.(*positions.Session).Close()
	}
}

func (s *server) onMessage(ms *melody.Session, msg []byte) {
	if b, ok := ms.Get(keyBudget); ok && !b.(*msgBucket).allow(time.Now()) {
		_ = ms.CloseWithMsg(melody.FormatCloseMessage(positions.CloseTooManyMessages, positions.ReasonTooManyMessages))
		return
	}
	if ps, ok := ms.Get(keySession); ok {
		ps.(*positions.Session).HandleMessage(s.baseCtx, msg)
	}
}

func (s *server) handleHealth(c *gin.Context) {
	st := s.eng.Stats()
	body := gin.H{"sessions": st.Sessions, "watches": st.Watches, "subscribed": st.Subscribed}
	if err := s.eng.Healthy(); err != nil {
		body["status"] = "unhealthy"
		body["error"] = err.Error()
		c.JSON(http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ok"
	c.JSON(http.StatusOK, body)
}
