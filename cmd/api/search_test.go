package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/search"
)

// TestCoursesFromSearchNode wires GET /api/v1/courses to the real search
// node with the indexer feeding it, and checks that a section filled through
// the API drops out of "open seats only" results.
func TestCoursesFromSearchNode(t *testing.T) {
	e := newTestEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config.FromEnv()
	cfg.SearchIndex = strings.ToLower(dbtest.UniqueName("apicourses"))
	d := &deps{db: e.db.DB, replica: e.db.DB, rdb: e.rdb}
	// The indexer and the breaker log into logs, shown if the test fails:
	// a wait that runs out then says whether the node was slow (breaker
	// open, answers from SQL) or the indexer's passes were failing.
	logs := &lockedBuffer{}
	svc, err := startSearch(ctx, cfg, d, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil)), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("search service and indexer log:\n%s", logs.String())
		}
		c, err := search.NewClient(search.ClientConfig{Addresses: []string{cfg.SearchURL}, Alias: cfg.SearchIndex})
		if err != nil {
			return
		}
		idx, _ := c.AliasTargets(context.Background())
		for _, i := range idx {
			_ = c.DeleteIndex(context.Background(), i)
		}
	})
	e.srv.search = svc
	h := e.srv.routes()
	e.h = h

	type page struct {
		Hits []struct {
			ID        int64  `json:"id"`
			Code      string `json:"code"`
			SeatsLeft int    `json:"seats_left"`
		} `json:"hits"`
		Total  int64  `json:"total"`
		Source string `json:"source"`
	}
	get := func(q string) page {
		t.Helper()
		r := e.do("GET", "/api/v1/courses?"+q, "", nil)
		e.mustStatus(r, 200)
		var p page
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// waitFor bounds a wait, it does not time anything: a node that has
	// just started answers its first searches slower than the service's
	// 300 ms node timeout, and each miss keeps the breaker open for 5 s
	// (answers come from SQL meanwhile), so the bound leaves room for
	// several probes on a loaded machine.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		deadline := start.Add(90 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", time.Since(start).Round(time.Millisecond), what)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	waitFor("the indexer to load the catalog", func() bool {
		p := get("q=PHY1001")
		return p.Source == "search" && len(p.Hits) > 0 && p.Hits[0].Code == "PHY1001"
	})
	if p := get("q=PHY1001&open=true"); p.Total != 1 {
		t.Fatalf("open PHY1001 sections = %d, want 1", p.Total)
	}
	// Fill PHY1001 (capacity 1) through the API.
	r := e.do("POST", "/api/v1/enrollments", e.token(0), map[string]any{"course_id": e.courses[2]})
	e.mustStatus(r, 202)
	e.drain()
	waitFor("the full section to leave open-only results after the decision", func() bool {
		return get("q=PHY1001&open=true").Total == 0
	})
	if r := e.do("GET", "/api/v1/courses?credits=9", "", nil); r.Code != 400 {
		t.Fatalf("credits=9: status %d, want 400", r.Code)
	}
}

// lockedBuffer is an io.Writer safe for the indexer's goroutine and the
// test's cleanup to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
