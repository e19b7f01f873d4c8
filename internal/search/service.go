package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Searcher is anything that answers a Query: *Client (the node), *SQL (the
// fallback) and *Service (both, with failover).
type Searcher interface {
	Search(ctx context.Context, q Query) (Result, error)
}

var (
	_ Searcher = (*Client)(nil)
	_ Searcher = (*SQL)(nil)
	_ Searcher = (*Service)(nil)
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// NodeTimeout bounds one search on the node before the fallback
	// answers instead (default 300ms).
	NodeTimeout time.Duration
	// ProbeAfter is how long the node is left alone after a failure; then
	// one request probes it again, and the first success closes the
	// breaker (default 5s).
	ProbeAfter time.Duration
	// Registerer receives enrollq_search_fallback_total (nil: not
	// registered). Registering twice on one registry reuses the counter.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// MaxFallback bounds concurrent SQL fallback searches (default 16):
	// the LIKE scans cost tens of times a node search, and during a node
	// outage at registration peak they would otherwise swamp the replica.
	// A search that waits longer than NodeTimeout for a slot fails with
	// ErrUnavailable.
	MaxFallback int
}

// ErrUnavailable means neither the node nor the fallback could take the
// search now (HTTP 503, retry shortly).
var ErrUnavailable = errors.New("search temporarily unavailable")

// Service is what the HTTP handler calls: it searches the node and, when
// the node fails or is slow, answers from SQL with Degraded set. A simple
// circuit breaker keeps requests off a failed node until ProbeAfter has
// passed, then lets a single request probe it; when that succeeds every
// request goes back to the node. It is safe for concurrent use.
type Service struct {
	node          Searcher
	fallback      Searcher
	cfg           ServiceConfig
	fallbackTotal prometheus.Counter
	now           func() time.Time
	fallbackSlots chan struct{}

	mu        sync.Mutex
	openUntil time.Time // zero: closed (use the node)
	probing   bool
}

// NewService returns a Service over node and fallback (usually a *Client
// and a *SQL on the replica).
func NewService(node, fallback Searcher, cfg ServiceConfig) (*Service, error) {
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 300 * time.Millisecond
	}
	if cfg.ProbeAfter <= 0 {
		cfg.ProbeAfter = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxFallback <= 0 {
		cfg.MaxFallback = 16
	}
	s := &Service{node: node, fallback: fallback, cfg: cfg, now: time.Now,
		fallbackSlots: make(chan struct{}, cfg.MaxFallback)}
	s.fallbackTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "enrollq_search_fallback_total",
		Help: "Course searches answered by the SQL fallback because the search node failed, was slow or was skipped by the open circuit breaker.",
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.fallbackTotal); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register search metrics: %w", err)
			}
			s.fallbackTotal = are.ExistingCollector.(prometheus.Counter)
		}
	}
	return s, nil
}

// Search answers q from the node or, failing that, from the fallback.
// Errors of the query itself (ErrInvalidQuery, ErrBadCursor) are returned
// as they are and never trip the breaker; ErrUnavailable means the
// fallback is saturated too. A cursor is bound to the backend
// that issued it: if the backend changes between two pages, the next page
// fails with ErrBadCursor and the listing has to start again.
func (s *Service) Search(ctx context.Context, q Query) (Result, error) {
	if _, err := q.normalize(); err != nil {
		return Result{}, err
	}
	if s.useNode() {
		nctx, cancel := context.WithTimeout(ctx, s.cfg.NodeTimeout)
		res, err := s.node.Search(nctx, q)
		cancel()
		switch {
		case err == nil:
			s.nodeOK()
			return res, nil
		case errors.Is(err, ErrInvalidQuery) || errors.Is(err, ErrBadCursor) && !isFallbackCursor(q):
			s.nodeOK()
			return Result{}, err
		case ctx.Err() != nil:
			s.nodeDone()
			return Result{}, ctx.Err()
		}
		if !errors.Is(err, ErrBadCursor) {
			s.nodeFailed(err)
		} else {
			s.nodeDone()
		}
	}
	wait := time.NewTimer(s.cfg.NodeTimeout)
	defer wait.Stop()
	select {
	case s.fallbackSlots <- struct{}{}:
		defer func() { <-s.fallbackSlots }()
	case <-wait.C:
		return Result{}, fmt.Errorf("%w: node down and %d fallback searches running", ErrUnavailable, s.cfg.MaxFallback)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	s.fallbackTotal.Inc()
	res, err := s.fallback.Search(ctx, q)
	if err != nil {
		return Result{}, fmt.Errorf("search fallback: %w", err)
	}
	res.Degraded = true
	return res, nil
}

// isFallbackCursor reports whether q.After was issued by the SQL backend:
// the node refuses it, and SQL should answer it while it can.
func isFallbackCursor(q Query) bool {
	q, err := q.normalize()
	if err != nil || q.After == "" {
		return false
	}
	_, err = decodeCursor(SourceSQL, q)
	return err == nil
}

// Degraded reports whether the breaker is open (searches go to SQL).
func (s *Service) Degraded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.openUntil.IsZero()
}

// useNode decides whether this request goes to the node; while the
// breaker is open only one probe at a time does, once ProbeAfter passed.
func (s *Service) useNode() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openUntil.IsZero() {
		return true
	}
	if s.probing || s.now().Before(s.openUntil) {
		return false
	}
	s.probing = true
	return true
}

func (s *Service) nodeOK() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.openUntil.IsZero() {
		s.cfg.Logger.Info("search node is back; leaving the SQL fallback")
	}
	s.openUntil, s.probing = time.Time{}, false
}

func (s *Service) nodeDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probing = false
}

func (s *Service) nodeFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openUntil.IsZero() {
		s.cfg.Logger.Warn("search node failed; answering from SQL", "err", err, "probe_after", s.cfg.ProbeAfter)
	}
	s.openUntil, s.probing = s.now().Add(s.cfg.ProbeAfter), false
}
