package search

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/search/searchtest"
)

// catalogState seeds seat and status variety into a fixture database:
// every 7th section full, every 11th closed, every 13th soft-deleted.
func catalogState(t testing.TB, db *dbtest.DB, ids []uint64) {
	t.Helper()
	ctx := context.Background()
	for i, id := range ids {
		var q string
		switch {
		case i%13 == 0:
			q = "UPDATE courses SET deleted_at = NOW(6) WHERE id = ?"
		case i%11 == 0:
			q = "UPDATE courses SET is_open = 0 WHERE id = ?"
		case i%7 == 0:
			q = "UPDATE courses SET enrolled = capacity WHERE id = ?"
		case i%5 == 0:
			q = "UPDATE courses SET enrolled = capacity DIV 2 WHERE id = ?"
		default:
			continue
		}
		if _, err := db.ExecContext(ctx, q, id); err != nil {
			t.Fatalf("modify course %d: %v", id, err)
		}
	}
}

// oracle is an in-memory model of the seeded catalog: the expected total
// and facets of a filter-only query, computed without SQL or the node.
type oracle struct {
	courses []searchtest.Course
}

func (o oracle) state(i int) (deleted, open bool, seatsLeft int) {
	c := o.courses[i]
	switch {
	case i%13 == 0:
		return true, true, c.Capacity
	case i%11 == 0:
		return false, false, c.Capacity
	case i%7 == 0:
		return false, true, 0
	case i%5 == 0:
		return false, true, c.Capacity - c.Capacity/2
	}
	return false, true, c.Capacity
}

func (o oracle) match(i int, q Query, skip string) bool {
	c := o.courses[i]
	deleted, open, left := o.state(i)
	if deleted {
		return false
	}
	if q.OpenOnly && (!open || left <= 0) {
		return false
	}
	if q.From > 0 || q.To > 0 {
		to := q.To
		if to == 0 {
			to = 1440
		}
		for _, s := range c.Slots {
			if s.Start < q.From || s.End > to {
				return false
			}
		}
	}
	if skip != FacetDepartment && q.Department != "" && c.Department != q.Department {
		return false
	}
	if skip != FacetCategory && q.Category != "" && c.Category != q.Category {
		return false
	}
	if skip != FacetCredits && q.Credits != 0 && c.Credits != q.Credits {
		return false
	}
	if skip != FacetDays && len(q.Days) > 0 {
		hit := false
		for _, s := range c.Slots {
			if slices.Contains(q.Days, Days[s.Day]) {
				hit = true
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (o oracle) expect(q Query) (int64, map[string][]Bucket) {
	var total int64
	counts := map[string]map[string]int64{}
	for _, f := range facetNames {
		counts[f] = map[string]int64{}
	}
	for i, c := range o.courses {
		if o.match(i, q, "") {
			total++
		}
		if o.match(i, q, FacetDepartment) {
			counts[FacetDepartment][c.Department]++
		}
		if o.match(i, q, FacetCategory) {
			counts[FacetCategory][c.Category]++
		}
		if o.match(i, q, FacetCredits) {
			counts[FacetCredits][strconv.Itoa(c.Credits)]++
		}
		if o.match(i, q, FacetDays) {
			var days [7]bool
			for _, s := range c.Slots {
				days[s.Day] = true
			}
			for d, ok := range days {
				if ok {
					counts[FacetDays][Days[d]]++
				}
			}
		}
	}
	facets := map[string][]Bucket{}
	for f, m := range counts {
		b := []Bucket{}
		for k, n := range m {
			b = append(b, Bucket{Key: k, Count: n})
		}
		facets[f] = sortBuckets(f, b)
	}
	return total, facets
}

func TestFiltersAndFacetsAgreeWithSQL(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{modify: catalogState})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fallback := NewSQL(b.replica)
	o := oracle{courses: b.courses}

	// The fixture's own raw GROUP BY counts, as a sanity anchor for the oracle.
	var raw []struct {
		K string `db:"k"`
		N int64  `db:"n"`
	}
	if err := b.replica.SelectContext(ctx, &raw, "SELECT department AS k, COUNT(*) AS n FROM courses WHERE deleted_at IS NULL GROUP BY department"); err != nil {
		t.Fatal(err)
	}
	_, all := o.expect(Query{})
	for _, r := range raw {
		if i := slices.IndexFunc(all[FacetDepartment], func(x Bucket) bool { return x.Key == r.K }); i < 0 || all[FacetDepartment][i].Count != r.N {
			t.Fatalf("oracle disagrees with SQL on department %s: SQL %d, oracle %v", r.K, r.N, all[FacetDepartment])
		}
	}

	cases := []Query{
		{},
		{Department: "컴퓨터공학과"},
		{Category: "교양"},
		{Credits: 3},
		{Days: []string{"MON"}},
		{Days: []string{"SAT", "SUN"}},
		{Days: []string{"TUE", "THU"}, Credits: 3},
		{OpenOnly: true},
		{From: 9 * 60, To: 12 * 60},
		{From: 18 * 60},
		{To: 12 * 60},
		{Department: "경영학과", Category: "전공필수", OpenOnly: true, From: 10 * 60, To: 17 * 60},
		{Department: "수학과", Credits: 2, Days: []string{"WED"}},
	}
	for _, q := range cases {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			wantTotal, wantFacets := o.expect(q)
			for _, s := range []Searcher{b.client, fallback} {
				res, err := s.Search(ctx, q)
				if err != nil {
					t.Fatalf("%T: %v", s, err)
				}
				if res.Total != wantTotal {
					t.Errorf("%s: total %d, want %d", res.Source, res.Total, wantTotal)
				}
				if d := cmp.Diff(wantFacets, res.Facets); d != "" {
					t.Errorf("%s: facets (-want +got):\n%s", res.Source, d)
				}
				for _, h := range res.Hits {
					if q.OpenOnly && (h.SeatsLeft <= 0 || !h.IsOpen) {
						t.Errorf("%s: open-only hit %s-%s has %d seats, open %v", res.Source, h.Code, h.Section, h.SeatsLeft, h.IsOpen)
					}
				}
			}
		})
	}

	// Choosing a facet bucket gives exactly its count, text included.
	t.Run("bucket counts", func(t *testing.T) {
		for _, s := range []Searcher{b.client, fallback} {
			base := Query{Text: "데이터", OpenOnly: true}
			res, err := s.Search(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range facetNames {
				for _, bk := range res.Facets[f] {
					q := base
					switch f {
					case FacetDepartment:
						q.Department = bk.Key
					case FacetCategory:
						q.Category = bk.Key
					case FacetCredits:
						q.Credits, _ = strconv.Atoi(bk.Key)
					case FacetDays:
						q.Days = []string{bk.Key}
					}
					got, err := s.Search(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if got.Total != bk.Count {
						t.Errorf("%s: %s=%s: total %d, bucket said %d", res.Source, f, bk.Key, got.Total, bk.Count)
					}
				}
			}
		}
	})
}

// walk pages through q and returns every hit id in order.
func walk(t *testing.T, ctx context.Context, s Searcher, q Query) ([]uint64, int64) {
	t.Helper()
	var ids []uint64
	var total int64 = -1
	for page := 0; ; page++ {
		res, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if total < 0 {
			total = res.Total
		}
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
		}
		if res.Next == "" {
			return ids, total
		}
		if page > 1000 {
			t.Fatal("pagination does not end")
		}
		q.After = res.Next
	}
}

func TestPaginationWalksAllHits(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{modify: catalogState})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fallback := NewSQL(b.replica)

	cases := []Query{
		{Sort: SortCode, Size: 100},
		{Sort: SortSeatsLeft, Size: 97},
		{Sort: SortTitle, Size: 100, Department: "컴퓨터공학과"},
		{Text: "학", Size: 33},
		{Text: "데이터", Size: 7, Sort: SortRelevance},
		{Text: "론", Size: 50, Sort: SortSeatsLeft, OpenOnly: true},
	}
	for _, q := range cases {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			for _, s := range []Searcher{b.client, fallback} {
				ids, total := walk(t, ctx, s, q)
				seen := map[uint64]bool{}
				for _, id := range ids {
					if seen[id] {
						t.Fatalf("%T: id %d twice", s, id)
					}
					seen[id] = true
				}
				if int64(len(ids)) != total {
					t.Errorf("%T: walked %d hits, total %d", s, len(ids), total)
				}
				if total == 0 {
					t.Errorf("%T: no hits", s)
				}
				t.Logf("%T: %d hits", s, total)
			}
		})
	}

	// A cursor is tied to its query and backend.
	res, err := b.client.Search(ctx, Query{Sort: SortCode, Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{
		{Sort: SortTitle, Size: 5, After: res.Next},
		{Sort: SortCode, Size: 5, After: res.Next, Credits: 3},
		{Sort: SortCode, After: "garbage!"},
	} {
		if _, err := b.client.Search(ctx, q); !isBadCursor(err) {
			t.Errorf("node accepted a foreign cursor: %+v: %v", q, err)
		}
	}
	if _, err := fallback.Search(ctx, Query{Sort: SortCode, Size: 5, After: res.Next}); !isBadCursor(err) {
		t.Errorf("SQL accepted a node cursor: %v", err)
	}
}
