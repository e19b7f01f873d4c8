package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/jmoiron/sqlx"
)

// IndexerConfig configures an Indexer.
type IndexerConfig struct {
	Client  *Client  // the node; writes go to Client.Alias()
	Replica *sqlx.DB // the MariaDB replica the feed reads (never the primary)
	// Interval between incremental passes (default 1s). Every pass
	// re-indexes each section whose seats changed since the last one, so
	// during a registration burst, when every section changes all the
	// time, the node's work is proportional to 1/Interval; 1s keeps the
	// 2s freshness bound with room for the pass and replication lag.
	Interval time.Duration
	// BatchSize is the number of rows per read and per _bulk (default 1000).
	BatchSize int
	// Overlap is how far behind the newest updated_at seen each pass
	// starts reading again (default 2s). A transaction that commits later
	// than this after it stamped updated_at would be missed by a pure
	// watermark; the overlap re-reads that window and skips the versions
	// already indexed, so such late commits still arrive.
	Overlap time.Duration
	Logger  *slog.Logger
}

// Indexer keeps the course index in step with the replica: incremental
// passes by (updated_at, id) watermark every Interval, and full rebuilds
// behind the alias. Run one Indexer per deployment.
type Indexer struct {
	cfg IndexerConfig
	c   *Client

	passMu sync.Mutex // one incremental pass at a time
	state  feedState
	resume bool // state.hw must be read from the index first
}

// feedState is the progress of one feed: the newest updated_at applied and
// the versions applied inside the overlap window.
type feedState struct {
	hw     time.Time
	recent map[uint64]time.Time
}

// feedFloor is the watermark of a feed that has applied nothing yet.
var feedFloor = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// NewIndexer returns an Indexer; it does not contact anything.
func NewIndexer(cfg IndexerConfig) (*Indexer, error) {
	if cfg.Client == nil || cfg.Replica == nil {
		return nil, errors.New("search: indexer needs a client and the replica")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Indexer{cfg: cfg, c: cfg.Client, resume: true,
		state: feedState{hw: feedFloor, recent: map[uint64]time.Time{}}}, nil
}

// feedQuery is FeedStatement paged by (updated_at, id): its parameters are
// the watermark time (for :sql_last_value), the keyset time again, the
// keyset (time, id) and the page size.
var feedQuery = func() string {
	var lines []string
	for _, l := range strings.Split(FeedStatement, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	stmt := strings.ReplaceAll(strings.Join(lines, "\n"), ":sql_last_value", "?")
	// The plain "updated_at >= ?" repeats the keyset's first column so the
	// (updated_at, id) index serves it as a range.
	return "SELECT * FROM (" + stmt + ") AS feed " +
		"WHERE feed.updated_at >= ? AND (feed.updated_at, feed.id) > (?, ?) " +
		"ORDER BY feed.updated_at, feed.id LIMIT ?"
}()

// Bootstrap makes sure the alias exists: when neither the alias nor an
// index of that name exists, it creates "<alias>_<timestamp>" with the
// alias attached, empty (the next pass fills it).
func (ix *Indexer) Bootstrap(ctx context.Context) error {
	alias := ix.c.alias
	targets, concrete, err := ix.c.aliasTargets(ctx, alias)
	if err != nil {
		return fmt.Errorf("bootstrap %s: %w", alias, err)
	}
	if len(targets) > 0 || concrete {
		return nil
	}
	name := newIndexName(alias)
	if err := ix.c.createIndex(ctx, name, alias, nil); err != nil {
		return fmt.Errorf("bootstrap %s: %w", alias, err)
	}
	ix.cfg.Logger.Info("search index created", "index", name, "alias", alias)
	return nil
}

func newIndexName(alias string) string {
	return alias + "_" + strings.ReplaceAll(time.Now().UTC().Format("20060102t150405.000000"), ".", "")
}

// Sync runs one incremental pass: every change since the last pass, read
// from the replica in pages and bulk-indexed into the alias, then refreshed
// so it is searchable at once. It returns the number of index and delete
// operations sent.
func (ix *Indexer) Sync(ctx context.Context) (int, error) {
	ix.passMu.Lock()
	defer ix.passMu.Unlock()
	if ix.resume {
		hw, err := ix.indexedUpTo(ctx)
		if err != nil {
			return 0, fmt.Errorf("resume feed: %w", err)
		}
		ix.state.hw, ix.resume = hw, false
	}
	n, err := ix.pass(ctx, ix.c.alias, &ix.state, false, nil)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// The index is gone: whatever is recreated starts from its own
			// contents, not from this feed's memory.
			ix.resume = true
			ix.state.recent = map[uint64]time.Time{}
		}
		return n, fmt.Errorf("sync %s: %w", ix.c.alias, err)
	}
	if n > 0 {
		// Seat counts matter within seconds: make the changes searchable
		// now instead of at the next scheduled refresh.
		if err := ix.c.refresh(ctx, ix.c.alias); err != nil {
			return n, fmt.Errorf("sync %s: %w", ix.c.alias, err)
		}
	}
	return n, nil
}

// Watermark returns the newest updated_at the incremental feed has applied.
func (ix *Indexer) Watermark() time.Time {
	ix.passMu.Lock()
	defer ix.passMu.Unlock()
	return ix.state.hw
}

// indexedUpTo returns the newest updated_at in the alias (feedFloor when
// empty), where a restarted feed resumes (minus the overlap).
func (ix *Indexer) indexedUpTo(ctx context.Context) (time.Time, error) {
	body := `{"size":0,"aggs":{"m":{"max":{"field":"updated_at"}}}}`
	var out struct {
		Aggregations struct {
			M struct {
				Value *float64 `json:"value"`
			} `json:"m"`
		} `json:"aggregations"`
	}
	if _, err := ix.c.do(ctx, esapi.SearchRequest{Index: []string{ix.c.alias}, Body: strings.NewReader(body)}, &out); err != nil {
		return time.Time{}, fmt.Errorf("read newest updated_at of %s: %w", ix.c.alias, err)
	}
	if out.Aggregations.M.Value == nil {
		return feedFloor, nil
	}
	return time.UnixMilli(int64(*out.Aggregations.M.Value)).UTC(), nil
}

// pass reads every row changed since st.hw - Overlap and writes it into
// index. fresh means index is new and empty: deleted rows need no delete.
func (ix *Indexer) pass(ctx context.Context, index string, st *feedState, fresh bool, progress func(int)) (int, error) {
	from := st.hw.Add(-ix.cfg.Overlap)
	if from.Before(feedFloor) {
		from = feedFloor
	}
	curT, curID := from, uint64(0)
	sent := 0
	for {
		var rows []feedRow
		if err := sqlx.SelectContext(ctx, ix.cfg.Replica, &rows, feedQuery, from, curT, curT, curID, ix.cfg.BatchSize); err != nil {
			return sent, fmt.Errorf("read changes after %s/%d: %w", curT.Format(time.RFC3339Nano), curID, err)
		}
		ops := make([]bulkOp, 0, len(rows))
		for _, r := range rows {
			if v, ok := st.recent[r.ID]; ok && v.Equal(r.UpdatedAt) {
				continue // this version is indexed already
			}
			if r.DeletedAt.Valid {
				if !fresh {
					ops = append(ops, bulkOp{id: r.ID, version: r.UpdatedAt.UnixMicro()})
				}
				continue
			}
			d, err := r.toDocument()
			if err != nil {
				return sent, err
			}
			ops = append(ops, bulkOp{id: r.ID, version: r.UpdatedAt.UnixMicro(), doc: &d})
		}
		if err := ix.c.bulk(ctx, index, ops); err != nil {
			return sent, err
		}
		sent += len(ops)
		if progress != nil {
			progress(len(ops))
		}
		for _, r := range rows {
			st.recent[r.ID] = r.UpdatedAt
			if r.UpdatedAt.After(st.hw) {
				st.hw = r.UpdatedAt
			}
		}
		if len(rows) < ix.cfg.BatchSize {
			break
		}
		last := rows[len(rows)-1]
		curT, curID = last.UpdatedAt, last.ID
	}
	edge := st.hw.Add(-ix.cfg.Overlap)
	for id, v := range st.recent {
		if v.Before(edge) {
			delete(st.recent, id)
		}
	}
	return sent, nil
}

// Run bootstraps the index and then syncs every Interval until ctx ends.
// Failures (node or replica down) are logged and retried on the next tick;
// a pass in progress when ctx ends is allowed up to 10s to finish, so a
// stop never leaves a half-sent batch behind. It returns nil on a stop.
func (ix *Indexer) Run(ctx context.Context) error {
	t := time.NewTicker(ix.cfg.Interval)
	defer t.Stop()
	bootstrapped := false
	failing := false
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := func() error {
			if !bootstrapped {
				if err := ix.Bootstrap(pctx); err != nil {
					return err
				}
				bootstrapped = true
			}
			_, err := ix.Sync(pctx)
			if errors.Is(err, ErrNotFound) {
				bootstrapped = false // the alias was removed: create it again
			}
			return err
		}()
		cancel()
		switch {
		case err != nil && !failing:
			ix.cfg.Logger.Warn("search indexer pass failed; retrying", "err", err)
			failing = true
		case err == nil && failing:
			ix.cfg.Logger.Info("search indexer recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Rebuild loads every section from the replica into a new index
// "<alias>_<timestamp>" and then points the alias at it in one _aliases
// call (remove + add), so searches never see a missing or half-filled
// index. The old index is deleted afterwards. progress, if not nil, is
// called after each batch with the sections loaded so far and the total.
// Changes made while it runs are caught up before and after the swap.
func (ix *Indexer) Rebuild(ctx context.Context, progress func(done, total int)) error {
	alias := ix.c.alias
	var total int
	if err := sqlx.GetContext(ctx, ix.cfg.Replica, &total, "SELECT COUNT(*) FROM courses WHERE deleted_at IS NULL"); err != nil {
		return fmt.Errorf("rebuild %s: count courses: %w", alias, err)
	}
	name := newIndexName(alias)
	if err := ix.c.createIndex(ctx, name, "", map[string]any{"refresh_interval": "-1"}); err != nil {
		return fmt.Errorf("rebuild %s: %w", alias, err)
	}
	ok := false
	defer func() {
		if !ok {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := ix.c.DeleteIndex(dctx, name); err != nil {
				ix.cfg.Logger.Warn("rebuild: remove unfinished index", "index", name, "err", err)
			}
		}
	}()

	st := feedState{hw: feedFloor, recent: map[uint64]time.Time{}}
	done := 0
	report := func(n int) {
		done = min(done+n, total)
		if progress != nil {
			progress(done, total)
		}
	}
	if _, err := ix.pass(ctx, name, &st, true, report); err != nil {
		return fmt.Errorf("rebuild %s: load %s: %w", alias, name, err)
	}
	// Changes since the load started: into the new index before the swap…
	if _, err := ix.pass(ctx, name, &st, false, nil); err != nil {
		return fmt.Errorf("rebuild %s: catch up %s: %w", alias, name, err)
	}
	var def struct {
		Settings struct {
			Index struct {
				RefreshInterval string `json:"refresh_interval"`
			} `json:"index"`
		} `json:"settings"`
	}
	_ = json.Unmarshal(indexDefinition, &def)
	if err := ix.c.putSettings(ctx, name, map[string]any{"refresh_interval": def.Settings.Index.RefreshInterval}); err != nil {
		return fmt.Errorf("rebuild %s: %w", alias, err)
	}
	if err := ix.c.refresh(ctx, name); err != nil {
		return fmt.Errorf("rebuild %s: %w", alias, err)
	}
	old, err := ix.swapAlias(ctx, alias, name)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", alias, err)
	}
	ok = true
	// …and after it, for writes that went to the old index meanwhile.
	if _, err := ix.pass(ctx, alias, &st, false, nil); err != nil {
		return fmt.Errorf("rebuild %s: catch up after swap: %w", alias, err)
	}
	for _, o := range old {
		if err := ix.c.DeleteIndex(ctx, o); err != nil {
			return fmt.Errorf("rebuild %s: %w", alias, err)
		}
	}
	if progress != nil {
		progress(total, total)
	}
	ix.cfg.Logger.Info("search index rebuilt", "alias", alias, "index", name, "sections", total, "replaced", old)
	return nil
}

// swapAlias atomically moves alias to index and returns the indexes it
// pointed to before (a concrete index named alias is removed in the same
// call, so the name never resolves to nothing).
func (ix *Indexer) swapAlias(ctx context.Context, alias, index string) ([]string, error) {
	old, concrete, err := ix.c.aliasTargets(ctx, alias)
	if err != nil {
		return nil, err
	}
	var actions []any
	for _, o := range old {
		actions = append(actions, obj{"remove": obj{"index": o, "alias": alias}})
	}
	if concrete {
		actions = append(actions, obj{"remove_index": obj{"index": alias}})
	}
	actions = append(actions, obj{"add": obj{"index": index, "alias": alias}})
	body, _ := json.Marshal(obj{"actions": actions})
	if _, err := ix.c.do(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(body)}, nil); err != nil {
		return nil, fmt.Errorf("swap alias %s to %s: %w", alias, index, err)
	}
	return old, nil
}
