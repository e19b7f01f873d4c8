package search

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// fallbackCount reads enrollq_search_fallback_total from reg.
func fallbackCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "enrollq_search_fallback_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("enrollq_search_fallback_total not registered")
	return 0
}

func TestServiceFallsBackToSQLAndReturns(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q := Query{Text: "자료구조"}

	t.Run("dead node", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		svc, err := NewService(newTestClient(t, b.alias, "http://127.0.0.1:1"), NewSQL(b.replica),
			ServiceConfig{Registerer: reg, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if res.Source != SourceSQL || !res.Degraded || res.Total == 0 || res.Hits[0].Title != "자료구조" {
			t.Fatalf("dead node: source %s degraded %v total %d", res.Source, res.Degraded, res.Total)
		}
		if got := fallbackCount(t, reg); got != 1 {
			t.Errorf("fallback counter %v, want 1", got)
		}
		if !svc.Degraded() {
			t.Error("breaker not open after a failure")
		}
		// Invalid queries are the caller's fault: no fallback, no count.
		if _, err := svc.Search(ctx, Query{Sort: "nope"}); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("bad sort: %v", err)
		}
		if got := fallbackCount(t, reg); got != 1 {
			t.Errorf("fallback counter %v after an invalid query, want 1", got)
		}
	})

	t.Run("node goes away and comes back", func(t *testing.T) {
		proxy := newTCPProxy(t, "127.0.0.1:"+portOf(t, searchURL()))
		reg := prometheus.NewRegistry()
		svc, err := NewService(newTestClient(t, b.alias, proxy.URL()), NewSQL(b.replica),
			ServiceConfig{Registerer: reg, ProbeAfter: 300 * time.Millisecond, NodeTimeout: 300 * time.Millisecond, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		mustSource := func(want string) Result {
			t.Helper()
			res, err := svc.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != want || res.Degraded != (want == SourceSQL) {
				t.Fatalf("source %s degraded %v, want %s", res.Source, res.Degraded, want)
			}
			return res
		}
		fromNode := mustSource(SourceSearch)

		proxy.Close()
		start := time.Now()
		fromSQL := mustSource(SourceSQL)
		t.Logf("first degraded answer after %v", time.Since(start))
		// Both backends agree on the matching set for a plain title.
		if fromSQL.Total != fromNode.Total || fromSQL.Hits[0].Title != fromNode.Hits[0].Title {
			t.Errorf("SQL total %d first %s; node total %d first %s", fromSQL.Total, fromSQL.Hits[0].Title, fromNode.Total, fromNode.Hits[0].Title)
		}
		// While the breaker is open, requests skip the node entirely.
		start = time.Now()
		mustSource(SourceSQL)
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("open breaker still waited %v", d)
		}
		if got := fallbackCount(t, reg); got != 2 {
			t.Errorf("fallback counter %v, want 2", got)
		}

		// A page begun on SQL continues on SQL even after the node is back.
		page1, err := svc.Search(ctx, Query{Sort: SortCode, Size: 10})
		if err != nil || page1.Source != SourceSQL || page1.Next == "" {
			t.Fatalf("degraded page 1: %v %+v", err, page1.Source)
		}

		proxy.Open(t)
		deadline := time.Now().Add(5 * time.Second)
		for {
			res, err := svc.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source == SourceSearch {
				t.Logf("back on the node after %v", time.Since(start))
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("service never returned to the node")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if svc.Degraded() {
			t.Error("breaker still open")
		}
		page2, err := svc.Search(ctx, Query{Sort: SortCode, Size: 10, After: page1.Next})
		if err != nil || page2.Source != SourceSQL || len(page2.Hits) != 10 || page2.Hits[0].ID == page1.Hits[0].ID {
			t.Fatalf("SQL page 2 after recovery: %v %s", err, page2.Source)
		}
		mustSource(SourceSearch)

		// A slow node counts as down: the SQL answer comes within the timeout.
		proxy.SetDelay(2 * time.Second)
		proxy.Close()
		proxy.Open(t)
		start = time.Now()
		mustSource(SourceSQL)
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("slow node: answer after %v", d)
		}
	})
}

func portOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// The product check of go-elasticsearch/v8 must not reject a node that
// sends no X-Elastic-Product header (OpenSearch), and the v8 compatibility
// media type must not reach it.
func TestOpenSearchCompatibility(t *testing.T) {
	t.Setenv("ELASTIC_CLIENT_APIVERSIONING", "true")
	var gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAccept = r.Header.Get("Accept")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"version":{"distribution":"opensearch","number":"2.19.1"}}`))
	}))
	defer srv.Close()
	c := newTestClient(t, "x", srv.URL)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping a node without the product header: %v", err)
	}
	if gotAccept != "application/json" {
		t.Errorf("Accept %q reached the node", gotAccept)
	}
}

func TestQueryFromValues(t *testing.T) {
	v := url.Values{
		"q": {"  자료   구조 "}, "department": {"컴퓨터공학과"}, "credits": {"3"},
		"days": {"wed,MON", "MON"}, "from": {"09:00"}, "to": {"1080"}, "open": {"1"},
		"sort": {"seats_left"}, "size": {"500"},
	}
	got, err := QueryFromValues(v)
	if err != nil {
		t.Fatal(err)
	}
	want := Query{Text: "자료 구조", Department: "컴퓨터공학과", Credits: 3, Days: []string{"MON", "WED"},
		From: 540, To: 1080, OpenOnly: true, Sort: SortSeatsLeft, Size: MaxSize}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if q, _ := QueryFromValues(url.Values{}); q.Sort != SortCode || q.Size != DefaultSize {
		t.Errorf("defaults: %+v", q)
	}
	for _, bad := range []url.Values{
		{"credits": {"x"}}, {"credits": {"9"}}, {"days": {"FUN"}}, {"from": {"25:00"}},
		{"from": {"18:00"}, "to": {"09:00"}}, {"sort": {"price"}}, {"size": {"-1"}}, {"open": {"maybe"}},
	} {
		if _, err := QueryFromValues(bad); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// fakeSearcher answers with fn.
type fakeSearcher func(ctx context.Context, q Query) (Result, error)

func (f fakeSearcher) Search(ctx context.Context, q Query) (Result, error) { return f(ctx, q) }

func TestServiceBreakerAndSaturation(t *testing.T) {
	var nodeCalls atomic.Int64
	nodeDown := atomic.Bool{}
	nodeDown.Store(true)
	node := fakeSearcher(func(ctx context.Context, q Query) (Result, error) {
		nodeCalls.Add(1)
		if nodeDown.Load() {
			return Result{}, errors.New("connection refused")
		}
		return Result{Source: SourceSearch}, nil
	})
	release := make(chan struct{})
	fallback := fakeSearcher(func(ctx context.Context, q Query) (Result, error) {
		if q.Text == "block" {
			<-release
		}
		return Result{Source: SourceSQL}, nil
	})
	svc, err := NewService(node, fallback, ServiceConfig{ProbeAfter: 200 * time.Millisecond, NodeTimeout: 50 * time.Millisecond,
		MaxFallback: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 5 {
		if res, err := svc.Search(ctx, Query{}); err != nil || res.Source != SourceSQL || !res.Degraded {
			t.Fatalf("%+v %v", res, err)
		}
	}
	if n := nodeCalls.Load(); n != 1 {
		t.Errorf("node called %d times while the breaker was open, want 1", n)
	}

	// One slow fallback search holds the only slot: the next one gives up.
	done := make(chan error)
	go func() { _, err := svc.Search(ctx, Query{Text: "block"}); done <- err }()
	time.Sleep(20 * time.Millisecond)
	if _, err := svc.Search(ctx, Query{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("saturated fallback: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	nodeDown.Store(false)
	time.Sleep(250 * time.Millisecond)
	if res, err := svc.Search(ctx, Query{}); err != nil || res.Source != SourceSearch {
		t.Fatalf("after ProbeAfter: %+v %v", res, err)
	}
	if svc.Degraded() {
		t.Error("breaker still open after a good probe")
	}
}
