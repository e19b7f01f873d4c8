package search

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/search/searchtest"
)

// BenchmarkSearch compares the node with the SQL fallback on a 12,000-section
// catalog (the fixture multiplied with new codes) under parallel load, with
// the query mix of searchtest.QueryMix. Besides ns/op it reports qps and
// p50/p99 latency in ms. For an open-loop run at a fixed rate use
// cmd/searchbench (docs/SEARCH.md).
//
//	go test ./internal/search -run '^$' -bench BenchmarkSearch -benchtime 5s -cpu 8
func BenchmarkSearch(b *testing.B) {
	base := fixture(b)
	tb := setup(b, setupOpts{courses: searchtest.Multiply(base, 12000), noIndex: true})
	ctx := context.Background()
	if err := tb.indexer.Rebuild(ctx, nil); err != nil {
		b.Fatal(err)
	}
	specs := searchtest.QueryMix(base, 5000, 42)
	queries := make([]Query, len(specs))
	for i, s := range specs {
		queries[i] = Query{Text: s.Text, Department: s.Department, Category: s.Category, Credits: s.Credits,
			Days: s.Days, From: s.From, To: s.To, OpenOnly: s.OpenOnly}
	}
	for _, bc := range []struct {
		name string
		s    Searcher
	}{{"node", tb.client}, {"sql", NewSQL(tb.replica)}} {
		b.Run(bc.name, func(b *testing.B) {
			var (
				next atomic.Int64
				mu   sync.Mutex
				lat  []time.Duration
			)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					q := queries[int(next.Add(1))%len(queries)]
					t := time.Now()
					if _, err := bc.s.Search(ctx, q); err != nil {
						b.Errorf("search %+v: %v", q, err)
						return
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "qps")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99_ms")
			}
		})
	}
}
