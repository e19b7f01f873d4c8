package enroll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redsync/redsync/v4"
)

// Queue is the reliable queue the scheduler drains (implemented by
// queue.Redis). Pop moves requests in flight under a lease; nothing leaves
// the queue's books before Ack, which runs after the decision is committed.
type Queue interface {
	Pop(ctx context.Context, n int, lease time.Duration) ([]Request, error)
	Ack(ctx context.Context, ds []Decision) error
	Requeue(ctx context.Context, ids []int64) (int, error)
	Inflight(ctx context.Context, expiredOnly bool) ([]Request, error)
}

// Decider records decisions durably (implemented by *Store).
type Decider interface {
	DecideBatch(ctx context.Context, reqs []Request) ([]Decision, error)
	Decisions(ctx context.Context, ids []int64) ([]Decision, error)
}

// SchedulerConfig tunes a Scheduler. Zero values take the defaults.
type SchedulerConfig struct {
	BatchSize      int           // requests per transaction (500)
	Lease          time.Duration // in-flight lease (10s)
	LockTTL        time.Duration // redsync lock expiry (3s); extended every TTL/3
	Idle           time.Duration // pause when the queue is empty (5ms)
	RecoverEvery   time.Duration // expired-lease scan period (1s)
	ReconcileEvery time.Duration // seat hint reconciliation period (10s)
	// Reconcile, when set, runs on taking leadership and every ReconcileEvery.
	Reconcile func(ctx context.Context) error
	// Observe, when set, is told about every decided batch.
	Observe func(ds []Decision, took time.Duration)
	// AfterCommit, when set, runs between the commit of a batch and its ack
	// (fault tests use it to stop a process in exactly that gap).
	AfterCommit func(ds []Decision)
	Logger      *slog.Logger
}

// Scheduler drains the queue. Many may run (one per api instance); a redsync
// lock elects one drainer at a time. The lock only saves wasted work: MariaDB
// row locks and the request-id key keep decisions correct even if two drain.
//
// Leadership follows a trust window: the leader trusts its lock until
// start+TTL-margin and extends it every TTL/3; if an extension fails or the
// window passes, it cancels its drain context and steps down.
type Scheduler struct {
	q    Queue
	d    Decider
	rs   *redsync.Redsync
	name string
	cfg  SchedulerConfig
	log  *slog.Logger

	leader   atomic.Bool
	decided  atomic.Int64
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewScheduler returns a scheduler draining q into d, elected through the
// redsync mutex named lockName.
func NewScheduler(q Queue, d Decider, rs *redsync.Redsync, lockName string, cfg SchedulerConfig) *Scheduler {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Second
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 3 * time.Second
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 5 * time.Millisecond
	}
	if cfg.RecoverEvery <= 0 {
		cfg.RecoverEvery = time.Second
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{q: q, d: d, rs: rs, name: lockName, cfg: cfg, log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// IsLeader reports whether this scheduler currently drains.
func (s *Scheduler) IsLeader() bool { return s.leader.Load() }

// Decided returns how many decisions this scheduler has recorded.
func (s *Scheduler) Decided() int64 { return s.decided.Load() }

// Start runs the scheduler until ctx ends or Stop is called. It returns nil
// on a clean stop.
func (s *Scheduler) Start(ctx context.Context) error {
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		m := s.rs.NewMutex(s.name, redsync.WithExpiry(s.cfg.LockTTL), redsync.WithTries(1))
		if err := m.TryLockContext(ctx); err != nil {
			sleep(ctx, s.cfg.LockTTL/6)
			continue
		}
		s.lead(ctx, m)
	}
	return nil
}

// Stop asks the scheduler to finish its current batch and return; it waits
// for Start to return. Safe to call more than once, and before Start.
func (s *Scheduler) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
	}
}

func (s *Scheduler) lead(ctx context.Context, m *redsync.Mutex) {
	margin := s.cfg.LockTTL / 3
	var trustedUntil atomic.Int64
	trustedUntil.Store(time.Now().Add(s.cfg.LockTTL - margin).UnixNano())
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.leader.Store(true)
	defer s.leader.Store(false)
	s.log.Info("scheduler: took the drain lock")

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-leadCtx.Done():
				return
			case <-t.C:
				start := time.Now()
				ok, err := m.ExtendContext(leadCtx)
				if err != nil || !ok {
					s.log.Warn("scheduler: lost the drain lock", "err", err)
					cancel()
					return
				}
				trustedUntil.Store(start.Add(s.cfg.LockTTL - margin).UnixNano())
			}
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
		uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ucancel()
		_, _ = m.UnlockContext(uctx)
		s.log.Info("scheduler: released the drain lock")
	}()

	// Whatever is in flight now belongs to a previous leader: settle it
	// first, so the oldest tickets are decided first (fairness).
	if err := s.recoverInflight(ctx, false); err != nil {
		s.log.Error("scheduler: recover in-flight requests", "err", err)
		return
	}
	if s.cfg.Reconcile != nil {
		if err := s.cfg.Reconcile(leadCtx); err != nil {
			s.log.Error("scheduler: reconcile seat hints", "err", err)
		}
	}
	// The drain is a three-stage pipeline: while batch k is decided in
	// MariaDB, batch k+1 is already popped (in flight under its lease) and
	// batch k-1 is being acked. Decisions stay sequential, so tickets are
	// still decided in order; acks run in commit order on one goroutine.
	acks := make(chan []Decision, 4)
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		for ds := range acks {
			s.ack(ctx, ds)
		}
	}()
	defer func() {
		close(acks)
		<-ackDone
	}()

	type popped struct {
		reqs []Request
		err  error
	}
	pop := func() <-chan popped {
		ch := make(chan popped, 1)
		go func() {
			reqs, err := s.q.Pop(leadCtx, s.cfg.BatchSize, s.cfg.Lease)
			ch <- popped{reqs, err}
		}()
		return ch
	}
	var next <-chan popped
	defer func() {
		// A prefetched batch that will not be decided goes back in line.
		if next == nil {
			return
		}
		p := <-next
		if len(p.reqs) > 0 {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.settle(rctx, p.reqs); err != nil {
				s.log.Error("scheduler: requeue prefetched batch", "err", err)
			}
		}
	}()

	lastRecover, lastReconcile := time.Now(), time.Now()
	for leadCtx.Err() == nil {
		if time.Now().UnixNano() > trustedUntil.Load() {
			s.log.Warn("scheduler: trust window passed; stepping down")
			return
		}
		if time.Since(lastRecover) > s.cfg.RecoverEvery {
			lastRecover = time.Now()
			if err := s.recoverInflight(leadCtx, true); err != nil {
				s.log.Error("scheduler: recover expired leases", "err", err)
			}
		}
		if s.cfg.Reconcile != nil && time.Since(lastReconcile) > s.cfg.ReconcileEvery {
			lastReconcile = time.Now()
			if err := s.cfg.Reconcile(leadCtx); err != nil {
				s.log.Error("scheduler: reconcile seat hints", "err", err)
			}
		}
		if next == nil {
			next = pop()
		}
		p := <-next
		next = nil
		if p.err != nil {
			if leadCtx.Err() == nil {
				s.log.Error("scheduler: pop", "err", p.err)
				sleep(leadCtx, 100*time.Millisecond)
			}
			continue
		}
		if len(p.reqs) == 0 {
			sleep(leadCtx, s.cfg.Idle)
			continue
		}
		if len(p.reqs) == s.cfg.BatchSize {
			next = pop() // prefetch while this batch is decided
		}
		ds, err := s.decideUntilDone(leadCtx, p.reqs)
		if err != nil {
			// Leadership ended with the batch undecided: it stays in flight
			// and the next leader settles it before anything else.
			return
		}
		acks <- ds
	}
}

// decideUntilDone decides reqs, retrying (with backoff) for as long as this
// scheduler leads. It never moves on to later tickets while an earlier batch
// is undecided: that would let a later request take a seat an earlier one
// should get (law 3). DecideBatch is idempotent, so a retry after a commit
// whose reply was lost returns the recorded decisions.
func (s *Scheduler) decideUntilDone(leadCtx context.Context, reqs []Request) ([]Decision, error) {
	backoff := 50 * time.Millisecond
	for {
		start := time.Now()
		ds, err := s.d.DecideBatch(leadCtx, reqs)
		if err == nil {
			if s.cfg.AfterCommit != nil {
				s.cfg.AfterCommit(ds)
			}
			s.decided.Add(int64(len(ds)))
			if s.cfg.Observe != nil {
				s.cfg.Observe(ds, time.Since(start))
			}
			return ds, nil
		}
		if leadCtx.Err() != nil {
			return nil, err
		}
		s.log.Error("scheduler: decide batch; retrying the same batch", "err", err, "first_ticket", reqs[0].Ticket, "backoff", backoff)
		sleep(leadCtx, backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// decide records the decisions of reqs. On failure the batch is settled
// (decided ones acked, the rest requeued at their tickets) and the error
// returned.
func (s *Scheduler) decide(leadCtx, ctx context.Context, reqs []Request) ([]Decision, error) {
	start := time.Now()
	ds, err := s.d.DecideBatch(leadCtx, reqs)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := s.settle(rctx, reqs); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return nil, err
	}
	if s.cfg.AfterCommit != nil {
		s.cfg.AfterCommit(ds)
	}
	s.decided.Add(int64(len(ds)))
	if s.cfg.Observe != nil {
		s.cfg.Observe(ds, time.Since(start))
	}
	return ds, nil
}

// ack acks a committed batch, retrying briefly; if Redis stays unreachable
// the entries stay in flight and recovery acks them from MariaDB later.
func (s *Scheduler) ack(ctx context.Context, ds []Decision) {
	for attempt := 0; attempt < 5; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := s.q.Ack(actx, ds)
		cancel()
		if err == nil {
			return
		}
		s.log.Warn("scheduler: ack failed; retrying", "err", err, "attempt", attempt+1)
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	s.log.Error("scheduler: ack gave up; recovery will ack from MariaDB", "count", len(ds))
}

// DrainOnce pops, decides and acks one batch without taking the lock. It is
// meant for benchmarks and tools; the scheduler calls it under the lock.
func (s *Scheduler) DrainOnce(ctx context.Context) (int, error) { return s.drainOnce(ctx, ctx) }

func (s *Scheduler) drainOnce(leadCtx, ackCtx context.Context) (int, error) {
	reqs, err := s.q.Pop(leadCtx, s.cfg.BatchSize, s.cfg.Lease)
	if err != nil || len(reqs) == 0 {
		return 0, err
	}
	ds, err := s.decide(leadCtx, ackCtx, reqs)
	if err != nil {
		return 0, err
	}
	// The decision is durable; ack even if leadership was just lost.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ackCtx), 10*time.Second)
	defer cancel()
	if err := s.q.Ack(actx, ds); err != nil {
		return 0, fmt.Errorf("ack batch (recovery will retry): %w", err)
	}
	return len(ds), nil
}

func (s *Scheduler) recoverInflight(ctx context.Context, expiredOnly bool) error {
	reqs, err := s.q.Inflight(ctx, expiredOnly)
	if err != nil || len(reqs) == 0 {
		return err
	}
	s.log.Info("scheduler: recovering in-flight requests", "count", len(reqs), "expired_only", expiredOnly)
	return s.settle(ctx, reqs)
}

// settle acks the requests among reqs that MariaDB has a decision for and
// puts the others back in the line at their original tickets.
func (s *Scheduler) settle(ctx context.Context, reqs []Request) error {
	ids := make([]int64, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
	}
	ds, err := s.d.Decisions(ctx, ids)
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	decided := make(map[int64]bool, len(ds))
	for _, d := range ds {
		decided[d.RequestID] = true
	}
	if err := s.q.Ack(ctx, ds); err != nil {
		return fmt.Errorf("settle: ack decided: %w", err)
	}
	var back []int64
	for _, id := range ids {
		if !decided[id] {
			back = append(back, id)
		}
	}
	if _, err := s.q.Requeue(ctx, back); err != nil {
		return fmt.Errorf("settle: requeue: %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
