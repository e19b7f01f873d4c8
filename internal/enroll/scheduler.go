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
//
// Every step that changes the line carries the leader's fence (TakeFence),
// and Redis refuses it with ErrFenced once a newer leader took over.
type Queue interface {
	TakeFence(ctx context.Context, lockKey, lockValue string, floor int64) (int64, error)
	PopFenced(ctx context.Context, fence int64, n int, lease time.Duration) ([]Request, error)
	PreAck(ctx context.Context, fence int64, ds []Decision) error
	AckFenced(ctx context.Context, fence int64, ds []Decision) error
	RequeueFenced(ctx context.Context, fence int64, ids []int64) (int, error)
	Inflight(ctx context.Context, expiredOnly bool) ([]Request, error)
	Refusals(ctx context.Context) ([]RefusalMark, error)
}

// Decider records decisions durably (implemented by *Store). Its fence is
// MariaDB's half of the leader's fence: a decision committed with an older
// one is refused by the transaction itself.
type Decider interface {
	Fence(ctx context.Context) (int64, error)
	TakeFence(ctx context.Context, token int64) error
	DecideFenced(ctx context.Context, reqs []Request, fence int64, beforeCommit func(context.Context, []Decision) error) ([]Decision, error)
	Decisions(ctx context.Context, ids []int64) ([]Decision, error)
	RecordRefusals(ctx context.Context, marks []RefusalMark) error
}

// SchedulerConfig tunes a Scheduler. Zero values take the defaults.
type SchedulerConfig struct {
	BatchSize      int           // requests per transaction (500)
	Lease          time.Duration // in-flight lease (10s)
	LockTTL        time.Duration // redsync lock expiry (3s); extended every TTL/3
	Idle           time.Duration // pause when the queue is empty (5ms)
	RecoverEvery   time.Duration // expired-lease scan period (1s)
	ReconcileEvery time.Duration // seat hint reconciliation period (10s)
	RefusalsEvery  time.Duration // refusal marks copied to MariaDB (1s, and when the line empties)
	// Reconcile, when set, runs on taking leadership and every ReconcileEvery.
	Reconcile func(ctx context.Context) error
	// Observe, when set, is told about every decided batch.
	Observe func(ds []Decision, took time.Duration)
	// AfterCommit, when set, runs between the commit of a batch and its ack
	// (fault tests use it to stop a process in exactly that gap).
	AfterCommit func(ds []Decision)
	// BeforePop, when set, runs before each pop is sent (tests use it to
	// hold a leader's pop until the lock has passed on).
	BeforePop func()
	// AfterFence, when set, runs after a new leader took its fence and
	// before it settles what is in flight.
	AfterFence func(fence int64)
	Logger     *slog.Logger
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
	fence    atomic.Int64
	decided  atomic.Int64
	copied   map[int64]RefusalMark // refusal marks already in MariaDB (drain goroutine only)
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
	if cfg.RefusalsEvery <= 0 {
		cfg.RefusalsEvery = time.Second
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

// Fence returns the fence this scheduler took when it last became leader.
func (s *Scheduler) Fence() int64 { return s.fence.Load() }

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

	// The fence: from here on Redis and MariaDB refuse every drain step of
	// a former leader, whatever its clock says.
	fence, err := s.takeFence(leadCtx, m)
	if err != nil {
		s.log.Error("scheduler: take the drain fence", "err", err)
		sleep(leadCtx, s.cfg.LockTTL/6)
		return
	}
	s.fence.Store(fence)
	s.leader.Store(true)
	defer s.leader.Store(false)
	s.log.Info("scheduler: took the drain lock", "fence", fence)
	if s.cfg.AfterFence != nil {
		s.cfg.AfterFence(fence)
	}

	// Whatever is in flight now belongs to a previous leader: settle it
	// first, so the oldest tickets are decided first (fairness). No former
	// leader can commit or pop any more, so MariaDB's answer is final.
	if err := s.recoverInflight(leadCtx, fence, false); err != nil {
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
			s.ack(ctx, fence, ds)
		}
	}()
	defer func() {
		close(acks)
		<-ackDone
		s.copyRefusals(context.WithoutCancel(ctx))
	}()

	type popped struct {
		reqs []Request
		err  error
	}
	pop := func() <-chan popped {
		ch := make(chan popped, 1)
		go func() {
			if s.cfg.BeforePop != nil {
				s.cfg.BeforePop()
			}
			reqs, err := s.q.PopFenced(leadCtx, fence, s.cfg.BatchSize, s.cfg.Lease)
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
			if err := s.settle(rctx, fence, p.reqs); err != nil {
				s.log.Error("scheduler: requeue prefetched batch", "err", err)
			}
		}
	}()

	lastRecover, lastReconcile, lastRefusals := time.Now(), time.Now(), time.Now()
	busy := false
	for leadCtx.Err() == nil {
		if time.Now().UnixNano() > trustedUntil.Load() {
			s.log.Warn("scheduler: trust window passed; stepping down")
			return
		}
		if time.Since(lastRecover) > s.cfg.RecoverEvery {
			lastRecover = time.Now()
			if err := s.recoverInflight(leadCtx, fence, true); err != nil {
				if errors.Is(err, ErrFenced) {
					return
				}
				s.log.Error("scheduler: recover expired leases", "err", err)
			}
		}
		if s.cfg.Reconcile != nil && time.Since(lastReconcile) > s.cfg.ReconcileEvery {
			lastReconcile = time.Now()
			if err := s.cfg.Reconcile(leadCtx); err != nil {
				s.log.Error("scheduler: reconcile seat hints", "err", err)
			}
		}
		if time.Since(lastRefusals) > s.cfg.RefusalsEvery {
			lastRefusals = time.Now()
			s.copyRefusals(leadCtx)
		}
		if next == nil {
			next = pop()
		}
		p := <-next
		next = nil
		if p.err != nil {
			if errors.Is(p.err, ErrFenced) {
				s.log.Warn("scheduler: pop refused: another leader holds the drain", "err", p.err)
				return
			}
			if leadCtx.Err() == nil {
				s.log.Error("scheduler: pop", "err", p.err)
				sleep(leadCtx, 100*time.Millisecond)
			}
			continue
		}
		if len(p.reqs) == 0 {
			if busy {
				// The line just emptied: the refusals of the burst reach
				// MariaDB now rather than at the next period.
				busy = false
				lastRefusals = time.Now()
				s.copyRefusals(leadCtx)
			}
			sleep(leadCtx, s.cfg.Idle)
			continue
		}
		busy = true
		if len(p.reqs) == s.cfg.BatchSize {
			next = pop() // prefetch while this batch is decided
		}
		ds, err := s.decideUntilDone(leadCtx, fence, p.reqs)
		if err != nil {
			// Leadership ended with the batch undecided: it stays in flight
			// and the next leader settles it before anything else.
			return
		}
		acks <- ds
	}
}

func (s *Scheduler) takeFence(ctx context.Context, m *redsync.Mutex) (int64, error) {
	floor, err := s.d.Fence(ctx)
	if err != nil {
		return 0, err
	}
	fence, err := s.q.TakeFence(ctx, m.Name(), m.Value(), floor)
	if err != nil {
		return 0, err
	}
	if err := s.d.TakeFence(ctx, fence); err != nil {
		return 0, err
	}
	return fence, nil
}

// decideUntilDone decides reqs, retrying (with backoff) for as long as this
// scheduler leads. It never moves on to later tickets while an earlier batch
// is undecided: that would let a later request take a seat an earlier one
// should get (law 3). DecideFenced is idempotent, so a retry after a commit
// whose reply was lost returns the recorded decisions. A refusal by the
// fence ends the leadership at once.
func (s *Scheduler) decideUntilDone(leadCtx context.Context, fence int64, reqs []Request) ([]Decision, error) {
	backoff := 50 * time.Millisecond
	for {
		ds, err := s.decide(leadCtx, fence, reqs)
		if err == nil {
			return ds, nil
		}
		if errors.Is(err, ErrFenced) {
			s.log.Warn("scheduler: decision refused by MariaDB's fence: another leader holds the drain", "err", err, "first_ticket", reqs[0].Ticket)
			return nil, err
		}
		if leadCtx.Err() != nil {
			return nil, err
		}
		s.log.Error("scheduler: decide batch; retrying the same batch", "err", err, "first_ticket", reqs[0].Ticket, "backoff", backoff)
		sleep(leadCtx, backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// decide records the decisions of reqs under fence, pre-acking them in Redis
// inside the transaction, just before its commit.
func (s *Scheduler) decide(leadCtx context.Context, fence int64, reqs []Request) ([]Decision, error) {
	start := time.Now()
	preack := func(ctx context.Context, ds []Decision) error { return s.q.PreAck(ctx, fence, ds) }
	ds, err := s.d.DecideFenced(leadCtx, reqs, fence, preack)
	if err != nil {
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
// the entries stay in flight and recovery acks them from MariaDB later. A
// refusal by the fence needs no retry: the new leader's recovery acks them.
func (s *Scheduler) ack(ctx context.Context, fence int64, ds []Decision) {
	for attempt := 0; attempt < 5; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := s.q.AckFenced(actx, fence, ds)
		cancel()
		if err == nil {
			return
		}
		if errors.Is(err, ErrFenced) {
			s.log.Warn("scheduler: ack refused: another leader holds the drain and acks from MariaDB", "count", len(ds))
			return
		}
		s.log.Warn("scheduler: ack failed; retrying", "err", err, "attempt", attempt+1)
		sleep(ctx, time.Duration(attempt+1)*50*time.Millisecond)
	}
	s.log.Error("scheduler: ack gave up; recovery will ack from MariaDB", "count", len(ds))
}

// copyRefusals copies the refusal marks that moved since the last copy into
// MariaDB (law 7's record). Failures are logged; the next copy retries.
func (s *Scheduler) copyRefusals(ctx context.Context) {
	marks, err := s.q.Refusals(ctx)
	if err != nil {
		s.log.Warn("scheduler: read refusal marks", "err", err)
		return
	}
	if s.copied == nil {
		s.copied = map[int64]RefusalMark{}
	}
	var moved []RefusalMark
	for _, m := range marks {
		if s.copied[m.CourseID] != m {
			moved = append(moved, m)
		}
	}
	if len(moved) == 0 {
		return
	}
	if err := s.d.RecordRefusals(ctx, moved); err != nil {
		s.log.Warn("scheduler: copy refusal marks", "err", err)
		return
	}
	for _, m := range moved {
		s.copied[m.CourseID] = m
	}
}

// DrainOnce pops, decides and acks one batch as the leader holding fence
// (0: unfenced) without taking the lock. It is meant for benchmarks and
// tools; the scheduler does the same under the lock.
func (s *Scheduler) DrainOnce(ctx context.Context) (int, error) {
	reqs, err := s.q.PopFenced(ctx, s.fence.Load(), s.cfg.BatchSize, s.cfg.Lease)
	if err != nil || len(reqs) == 0 {
		return 0, err
	}
	ds, err := s.decide(ctx, s.fence.Load(), reqs)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := s.settle(rctx, s.fence.Load(), reqs); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
		return 0, err
	}
	// The decision is durable; ack even if leadership was just lost.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.q.AckFenced(actx, s.fence.Load(), ds); err != nil {
		return 0, fmt.Errorf("ack batch (recovery will retry): %w", err)
	}
	return len(ds), nil
}

func (s *Scheduler) recoverInflight(ctx context.Context, fence int64, expiredOnly bool) error {
	reqs, err := s.q.Inflight(ctx, expiredOnly)
	if err != nil || len(reqs) == 0 {
		return err
	}
	s.log.Info("scheduler: recovering in-flight requests", "count", len(reqs), "expired_only", expiredOnly)
	return s.settle(ctx, fence, reqs)
}

// settle acks the requests among reqs that MariaDB has a decision for and
// puts the others back in the line at their original tickets.
func (s *Scheduler) settle(ctx context.Context, fence int64, reqs []Request) error {
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
	if err := s.q.AckFenced(ctx, fence, ds); err != nil {
		return fmt.Errorf("settle: ack decided: %w", err)
	}
	var back []int64
	for _, id := range ids {
		if !decided[id] {
			back = append(back, id)
		}
	}
	if _, err := s.q.RequeueFenced(ctx, fence, back); err != nil {
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
