package queue

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// AOF compaction at quiet times.
//
// Redis's own policy rewrites the append-only file as soon as it has doubled
// (auto-aof-rewrite-percentage 100 over 64 MB). A burst of 100,000 students
// writes about 280 MB of AOF, so that policy fired two or three times in every
// opening: each rewrite forks Redis and its child writes the whole data set to
// the disk that appendfsync always is syncing the burst's writes to, at
// Redis's CPU share. deploy/redis/redis.conf therefore leaves Redis's own
// trigger at 1 GB (a safety net), and the api instances that run the
// scheduler rewrite the AOF when it has grown as much as Redis's policy asks
// and Redis has been quiet for one look: the AOF grew less than QuietBytes
// since the look before.

// CompactConfig says when a rewrite is due and when Redis counts as quiet.
// Zero fields take the defaults.
type CompactConfig struct {
	Every      time.Duration // time between looks (default 30 s)
	QuietBytes int64         // the AOF grew less than this since the last look: quiet (default 4 MiB)
	MinSize    int64         // no rewrite below this AOF size (default 64 MiB, Redis's default)
	Growth     float64       // rewrite once the AOF is this much larger than the last rewrite left it (default 1.0: doubled)
	// Hold, when set, names why a rewrite must wait even though Redis is
	// quiet ("" when it need not): the api passes Redis.CompactHold, which
	// holds while the pre-queue waits for its opening or requests wait.
	Hold func(context.Context) (string, error)
	// Observe, when set, is told each look's outcome and the AOF's state
	// (the api exports them as metrics).
	Observe func(outcome string, st AOFState)
	Logger  *slog.Logger
}

func (c *CompactConfig) defaults() {
	if c.Every <= 0 {
		c.Every = 30 * time.Second
	}
	if c.QuietBytes <= 0 {
		c.QuietBytes = 4 << 20
	}
	if c.MinSize <= 0 {
		c.MinSize = 64 << 20
	}
	if c.Growth <= 0 {
		c.Growth = 1.0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// AOFState is Redis's INFO persistence, the parts compaction reads.
type AOFState struct {
	Enabled   bool  // aof_enabled
	Rewriting bool  // aof_rewrite_in_progress or aof_rewrite_scheduled
	Size      int64 // aof_current_size
	Base      int64 // aof_base_size: what the last rewrite left
	Rewrites  int64 // aof_rewrites since Redis started
}

// ReadAOF reads the AOF's state from INFO persistence.
func ReadAOF(ctx context.Context, rdb redis.UniversalClient) (AOFState, error) {
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		return AOFState{}, fmt.Errorf("read INFO persistence: %w", err)
	}
	return parseAOFInfo(info)
}

func parseAOFInfo(info string) (AOFState, error) {
	var st AOFState
	var enabled, inProgress, scheduled int64
	fields := map[string]*int64{
		"aof_enabled": &enabled, "aof_rewrite_in_progress": &inProgress, "aof_rewrite_scheduled": &scheduled,
		"aof_current_size": &st.Size, "aof_base_size": &st.Base, "aof_rewrites": &st.Rewrites,
	}
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		p, ok := fields[k]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return AOFState{}, fmt.Errorf("INFO persistence: %s=%q: %w", k, v, err)
		}
		*p = n
		seen++
	}
	if seen == 0 {
		return AOFState{}, fmt.Errorf("INFO persistence has no AOF fields")
	}
	st.Enabled = enabled == 1
	st.Rewriting = inProgress == 1 || scheduled == 1
	return st, nil
}

// What one look of the Compactor found (Check).
const (
	CompactOff       = "aof_off"   // appendonly no: nothing to compact
	CompactRewriting = "rewriting" // a rewrite is running or scheduled
	CompactSmall     = "small"     // the AOF has not grown enough yet
	CompactBusy      = "busy"      // it has, but Redis is being written to (or this is the first look)
	CompactHeld      = "held"      // quiet, but Hold named a reason to wait
	CompactStarted   = "started"   // BGREWRITEAOF was sent
)

// Compactor rewrites Redis's AOF when it is due and Redis is quiet.
type Compactor struct {
	rdb  redis.UniversalClient
	cfg  CompactConfig
	last int64 // aof_current_size at the last look
	seen bool
}

// NewCompactor returns a Compactor of rdb's AOF.
func NewCompactor(rdb redis.UniversalClient, cfg CompactConfig) *Compactor {
	cfg.defaults()
	return &Compactor{rdb: rdb, cfg: cfg}
}

// Check looks once and starts a rewrite if it is due and Redis was quiet
// since the last look. The first look (and the first after the file shrank)
// only takes the size: quiet is measured between two looks.
func (c *Compactor) Check(ctx context.Context) (string, error) {
	st, err := ReadAOF(ctx, c.rdb)
	if err != nil {
		return "", err
	}
	outcome, err := c.check(ctx, st)
	if err == nil && c.cfg.Observe != nil {
		c.cfg.Observe(outcome, st)
	}
	return outcome, err
}

func (c *Compactor) check(ctx context.Context, st AOFState) (string, error) {
	// A file smaller than at the last look was rewritten or reloaded (Redis
	// restarted): its growth since then is unknown, so this look starts over.
	grew, first := st.Size-c.last, !c.seen || st.Size < c.last
	c.last, c.seen = st.Size, true
	switch {
	case !st.Enabled:
		return CompactOff, nil
	case st.Rewriting:
		return CompactRewriting, nil
	case st.Size < c.cfg.MinSize || float64(st.Size) < float64(st.Base)*(1+c.cfg.Growth):
		return CompactSmall, nil
	case first || grew >= c.cfg.QuietBytes:
		return CompactBusy, nil
	}
	if c.cfg.Hold != nil {
		why, err := c.cfg.Hold(ctx)
		if err != nil {
			return "", fmt.Errorf("ask whether the AOF rewrite must wait: %w", err)
		}
		if why != "" {
			return CompactHeld, nil
		}
	}
	if err := c.rdb.BgRewriteAOF(ctx).Err(); err != nil {
		if strings.Contains(err.Error(), "already in progress") {
			return CompactRewriting, nil // another instance was first
		}
		return "", fmt.Errorf("start AOF rewrite (%d bytes, base %d): %w", st.Size, st.Base, err)
	}
	c.cfg.Logger.Info("aof rewrite started", "size", st.Size, "base", st.Base, "grew_since_last_look", grew)
	return CompactStarted, nil
}

// Run looks every cfg.Every until ctx ends.
func (c *Compactor) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.Check(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("aof compaction", "err", err)
		}
	}
}

// CompactHold is the api's Hold for the Compactor: a rewrite waits while
// the pre-queue is open (its opening, the burst of the draw, is coming),
// while a draw runs, or while requests wait or are in flight (the drain).
func (q *Redis) CompactHold(ctx context.Context) (string, error) {
	d, err := q.DrawStatus(ctx)
	if err != nil {
		return "", err
	}
	switch {
	case d.Open:
		return "prequeue_open", nil
	case d.Running():
		return "draw_running", nil
	}
	st, err := q.Stats(ctx)
	if err != nil {
		return "", err
	}
	if st.Waiting+st.Inflight > 0 {
		return "requests_waiting", nil
	}
	return "", nil
}
