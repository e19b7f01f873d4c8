package search

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// runIndexer runs b.indexer.Run until the test ends.
func runIndexer(t *testing.T, b *testBundle) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.indexer.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("indexer run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("indexer did not stop")
		}
	})
}

// hitByID searches the code of course i and returns its hit.
func hitByID(ctx context.Context, b *testBundle, i int) (Hit, bool, error) {
	res, err := b.client.Search(ctx, Query{Text: b.courses[i].Code, Size: 50})
	if err != nil {
		return Hit{}, false, err
	}
	for _, h := range res.Hits {
		if h.ID == b.ids[i] {
			return h, true, nil
		}
	}
	return Hit{}, false, nil
}

func TestFreshness(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{}) // the default interval, as deployed
	runIndexer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Seat counts: the enrolled column is bumped on the primary; the search
	// must show seats_left 0 within 2 s (+1 s margin for replication).
	const budget, margin = 2 * time.Second, time.Second
	var worst time.Duration
	for _, i := range []int{3, 777, 1500} {
		if _, err := b.db.ExecContext(ctx, "UPDATE courses SET enrolled = capacity WHERE id = ?", b.ids[i]); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		replicated := time.Duration(0)
		for {
			if replicated == 0 {
				var left int
				if err := b.replica.GetContext(ctx, &left, "SELECT capacity - enrolled FROM courses WHERE id = ?", b.ids[i]); err == nil && left == 0 {
					replicated = time.Since(start)
				}
			}
			h, ok, err := hitByID(ctx, b, i)
			if err != nil {
				t.Fatal(err)
			}
			if ok && h.SeatsLeft == 0 && h.Enrolled == h.Capacity {
				lag := time.Since(start)
				worst = max(worst, lag)
				t.Logf("course %d (%s-%s): seats_left 0 visible in search after %v (replica after %v)", b.ids[i], h.Code, h.Section, lag, replicated)
				break
			}
			if time.Since(start) > budget+margin {
				t.Fatalf("course %d: seats_left still %d after %v (replica lag %v)", b.ids[i], h.SeatsLeft, time.Since(start), replicated)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if worst > budget {
		t.Logf("warning: worst lag %v is over the %v goal (within the replication margin)", worst, budget)
	}

	// A burst: 300 sections fill up one after another; all must show 0 in time.
	burst := b.ids[100:400]
	start := time.Now()
	for _, id := range burst {
		if _, err := b.db.ExecContext(ctx, "UPDATE courses SET enrolled = capacity WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	wrote := time.Since(start)
	for {
		// count the burst sections still showing seats
		body := `{"size":0,"query":{"bool":{"filter":[{"terms":{"id":[` + joinIDs(burst) + `]}},{"range":{"seats_left":{"gt":0}}}]}}}`
		var out struct {
			Hits struct {
				Total struct {
					Value int64 `json:"value"`
				} `json:"total"`
			} `json:"hits"`
		}
		if _, err := b.client.do(ctx, esapi.SearchRequest{Index: []string{b.alias}, Body: strings.NewReader(body)}, &out); err != nil {
			t.Fatal(err)
		}
		n := out.Hits.Total.Value
		if n == 0 {
			t.Logf("burst of %d seat changes (written in %v): all visible %v after the first write", len(burst), wrote, time.Since(start))
			if lag := time.Since(start) - wrote; lag > budget+margin {
				t.Errorf("last burst change visible after %v", lag)
			}
			break
		}
		if time.Since(start) > wrote+budget+margin {
			var onReplica int
			_ = b.replica.GetContext(ctx, &onReplica, "SELECT COUNT(*) FROM courses WHERE enrolled < capacity AND id BETWEEN ? AND ?", burst[0], burst[len(burst)-1])
			t.Fatalf("%d of %d burst changes not visible %v after the last write (replica still misses %d; feed watermark %v)",
				n, len(burst), time.Since(start)-wrote, onReplica, b.indexer.Watermark())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A soft delete removes the section from search.
	i := 42
	if _, err := b.db.ExecContext(ctx, "UPDATE courses SET deleted_at = NOW(6) WHERE id = ?", b.ids[i]); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for {
		_, ok, err := hitByID(ctx, b, i)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Logf("soft-deleted section gone from search after %v", time.Since(start))
			break
		}
		if time.Since(start) > budget+margin {
			t.Fatal("soft-deleted section still found")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func joinIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = `"` + itoa(id) + `"`
	}
	return strings.Join(s, ",")
}

func itoa(id uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + id%10)
		id /= 10
		if id == 0 {
			return string(buf[i:])
		}
	}
}

func TestRebuildSwapsAliasWhileSearching(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	runIndexer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	want := int64(len(b.courses))

	first, _, err := b.client.aliasTargets(ctx, b.alias)
	if err != nil || len(first) != 1 {
		t.Fatalf("alias before rebuild: %v %v", first, err)
	}

	var (
		stop     atomic.Bool
		searches atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	for w := range 4 {
		wg.Go(func() {
			queries := []Query{{}, {Text: "데이터"}, {Text: "CSE4051"}, {Department: "수학과", Credits: 3}}
			for i := 0; !stop.Load(); i++ {
				q := queries[(i+w)%len(queries)]
				res, err := b.client.Search(ctx, q)
				searches.Add(1)
				msg := ""
				switch {
				case err != nil:
					msg = err.Error()
				case q.Text == "" && q.Department == "" && res.Total != want:
					msg = "match-all total " + itoa(uint64(res.Total))
				case q.Text != "" && res.Total == 0:
					msg = "no hits for " + q.Text
				}
				if msg != "" {
					mu.Lock()
					failures = append(failures, msg)
					mu.Unlock()
				}
			}
		})
	}

	var calls, lastDone, lastTotal int
	for range 2 {
		err := b.indexer.Rebuild(ctx, func(done, total int) { calls++; lastDone, lastTotal = done, total })
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("rebuild: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d of %d searches failed during rebuilds, e.g. %v", len(failures), searches.Load(), failures[:min(5, len(failures))])
	}
	t.Logf("%d searches during 2 rebuilds, none failed", searches.Load())
	if calls == 0 || lastDone != lastTotal || lastTotal != len(b.courses) {
		t.Errorf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	now, _, err := b.client.aliasTargets(ctx, b.alias)
	if err != nil || len(now) != 1 || slices.Contains(first, now[0]) || !strings.HasPrefix(now[0], b.alias+"_") {
		t.Fatalf("alias after rebuild points to %v (was %v): %v", now, first, err)
	}
	if _, err := b.client.do(ctx, esapi.IndicesExistsRequest{Index: first}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("old index %v still exists: %v", first, err)
	}

	// The incremental feed keeps writing into the rebuilt index.
	if _, err := b.db.ExecContext(ctx, "UPDATE courses SET enrolled = capacity WHERE id = ?", b.ids[10]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, ok, err := hitByID(ctx, b, 10)
		if err != nil {
			t.Fatal(err)
		}
		if ok && h.SeatsLeft == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("change after rebuild never reached the new index")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBootstrapAndResume(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noIndex: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Searching before the index exists fails with ErrNotFound.
	if _, err := b.client.Search(ctx, Query{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("search without index: %v", err)
	}
	if err := b.indexer.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.indexer.Bootstrap(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	n, err := b.indexer.Sync(ctx)
	if err != nil || n != len(b.courses) {
		t.Fatalf("first sync: %d ops, %v", n, err)
	}
	// Nothing changed: the next pass re-reads the overlap window but sends nothing.
	if n, err := b.indexer.Sync(ctx); err != nil || n != 0 {
		t.Fatalf("idle sync: %d ops, %v", n, err)
	}
	if err := b.client.refresh(ctx, b.alias); err != nil {
		t.Fatal(err)
	}
	// A new indexer (a restart) resumes from the index, not from scratch.
	ix2, err := NewIndexer(IndexerConfig{Client: b.client, Replica: b.replica, Overlap: time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	n, err = ix2.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n >= len(b.courses) {
		t.Errorf("restarted indexer re-sent %d of %d sections", n, len(b.courses))
	}
	if !ix2.Watermark().Equal(b.indexer.Watermark()) {
		t.Errorf("watermarks differ: %v vs %v", ix2.Watermark(), b.indexer.Watermark())
	}
	res, err := b.client.Search(ctx, Query{})
	if err != nil || res.Total != int64(len(b.courses)) {
		t.Fatalf("after sync: total %d, %v", res.Total, err)
	}

	// If the alias disappears, a write fails instead of auto-creating a
	// dynamically mapped index, and Run bootstraps it again.
	deleteIndexes(t, b.client, b.alias)
	if _, err := b.db.ExecContext(ctx, "UPDATE courses SET enrolled = 1 WHERE id = ?", b.ids[0]); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	for {
		_, err := b.indexer.Sync(ctx)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if waitCtx.Err() != nil {
			t.Fatal("write to a missing alias did not fail")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if targets, concrete, err := b.client.aliasTargets(ctx, b.alias); err != nil || concrete || len(targets) != 0 {
		t.Fatalf("after a write to the missing alias: targets %v concrete %v err %v", targets, concrete, err)
	}
	runIndexer(t, b)
	for {
		res, err := b.client.Search(ctx, Query{})
		if err == nil && res.Total == int64(len(b.courses)) {
			break
		}
		if waitCtx.Err() != nil {
			t.Fatalf("Run did not recreate the index: %v %d", err, res.Total)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
