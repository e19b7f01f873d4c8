package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

type obj = map[string]any

// Search runs q against the node (the alias). It is the primary backend of
// Service; call it directly only when no fallback is wanted.
func (c *Client) Search(ctx context.Context, q Query) (Result, error) {
	q, err := q.normalize()
	if err != nil {
		return Result{}, err
	}
	after, err := decodeCursor(SourceSearch, q)
	if err != nil {
		return Result{}, err
	}
	body, err := json.Marshal(searchBody(q, after))
	if err != nil {
		return Result{}, fmt.Errorf("encode search: %w", err)
	}
	var out searchResponse
	req := esapi.SearchRequest{Index: []string{c.alias}, Body: bytes.NewReader(body), FilterPath: searchFilterPath}
	if _, err := c.do(ctx, req, &out); err != nil {
		return Result{}, fmt.Errorf("search %s: %w", c.alias, err)
	}
	return out.result(q)
}

// searchBody builds the request body of q. The main query holds the text
// and the non-facet filters (time range, open seats); the facet filters go
// to post_filter, and each facet aggregation applies every facet filter
// but its own.
func searchBody(q Query, after []json.RawMessage) obj {
	body := obj{
		"size":             q.Size + 1, // one more tells whether a next page exists
		"track_total_hits": true,
		"sort":             sortClause(q),
		"query":            mainQuery(q),
		"_source":          obj{"excludes": []string{"slots", "first_start", "last_end", "updated_at"}},
	}
	facetFilters := facetFilters(q)
	if f := andOf(facetFilters, ""); f != nil {
		body["post_filter"] = f
	}
	if after != nil {
		body["search_after"] = after
	}
	if q.After == "" {
		aggs := obj{}
		for _, name := range facetNames {
			terms := obj{"field": name, "size": 200}
			if name == FacetDays {
				terms["size"] = 7
			}
			f := andOf(facetFilters, name)
			if f == nil {
				f = obj{"match_all": obj{}}
			}
			aggs[name] = obj{"filter": f, "aggs": obj{"v": obj{"terms": terms}}}
		}
		body["aggs"] = aggs
	}
	return body
}

// mainQuery scores text matches in tiers (a constant per tier, so a better
// kind of match always wins) plus a small BM25 term that orders matches
// within a tier:
//
//	100 exact code           "CSE4051"
//	 40 code prefix          "CSE40"
//	 20 title prefix         "자료" -> 자료구조 (edge n-grams)
//	 10 title bigrams        "구조" -> 자료구조
//	  8 exact professor      "김지훈"
//	  5 professor bigrams    "지훈"
//	  4 all words across title/professor/department ("알고리즘 최하린")
//	  3 English title        "data structures", "Algo" (prefix)
//	  2 English fuzzy        "Algoritms" -> Algorithms
//	  1 department           "컴퓨터공학과"
func mainQuery(q Query) obj {
	var filters []any
	if q.hasTimeRange() {
		// All meetings within [From, To]: earliest start >= From and
		// latest end <= To. Sections without meetings pass (vacuous truth).
		filters = append(filters, obj{"bool": obj{"must_not": []any{
			obj{"range": obj{"first_start": obj{"lt": q.From}}},
			obj{"range": obj{"last_end": obj{"gt": q.upperBound()}}},
		}}})
	}
	if q.OpenOnly {
		filters = append(filters,
			obj{"term": obj{"is_open": true}},
			obj{"range": obj{"seats_left": obj{"gt": 0}}})
	}
	b := obj{}
	if len(filters) > 0 {
		b["filter"] = filters
	}
	if q.Text != "" {
		t := q.Text
		tier := func(boost float64, query obj) obj {
			return obj{"constant_score": obj{"filter": query, "boost": boost}}
		}
		and := func(field string, extra obj) obj {
			m := obj{"query": t, "operator": "and"}
			for k, v := range extra {
				m[k] = v
			}
			return obj{"match": obj{field: m}}
		}
		b["should"] = []any{
			tier(100, obj{"term": obj{"code": t}}),
			tier(40, and("code.prefix", nil)),
			tier(20, and("title.prefix", nil)),
			tier(10, and("title", nil)),
			tier(8, obj{"term": obj{"professor": t}}),
			tier(5, and("professor.text", nil)),
			tier(4, obj{"multi_match": obj{"query": t, "type": "cross_fields", "operator": "and",
				"fields": []string{"title", "professor.text", "department.text"}}}),
			tier(3, and("title_en.prefix", nil)),
			tier(2, and("title_en", obj{"fuzziness": "AUTO", "prefix_length": 1, "max_expansions": 20})),
			tier(1, and("department.text", nil)),
			and("title", obj{"boost": 0.01}),
		}
		b["minimum_should_match"] = 1
	}
	if len(b) == 0 {
		return obj{"match_all": obj{}}
	}
	return obj{"bool": b}
}

// facetFilters returns the filter of each facet that q sets.
func facetFilters(q Query) map[string]any {
	f := map[string]any{}
	if q.Department != "" {
		f[FacetDepartment] = obj{"term": obj{"department": q.Department}}
	}
	if q.Category != "" {
		f[FacetCategory] = obj{"term": obj{"category": q.Category}}
	}
	if q.Credits != 0 {
		f[FacetCredits] = obj{"term": obj{"credits": q.Credits}}
	}
	if len(q.Days) > 0 {
		f[FacetDays] = obj{"terms": obj{"days": q.Days}}
	}
	return f
}

// andOf combines the filters except the one named skip (nil when none).
func andOf(filters map[string]any, skip string) any {
	var all []any
	for _, name := range facetNames {
		if f, ok := filters[name]; ok && name != skip {
			all = append(all, f)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return obj{"bool": obj{"filter": all}}
}

// sortClause returns the sort of q; every order ends in unique keys so
// search_after never skips or repeats a hit.
func sortClause(q Query) []any {
	tail := []any{obj{"code": "asc"}, obj{"section": "asc"}, obj{"id": "asc"}}
	switch q.Sort {
	case SortRelevance:
		return append([]any{obj{"_score": "desc"}}, tail...)
	case SortSeatsLeft:
		return append([]any{obj{"seats_left": "desc"}}, tail...)
	case SortTitle:
		return append([]any{obj{"title.keyword": "asc"}}, tail...)
	default:
		return tail
	}
}

// searchFilterPath trims the answer to what result reads.
var searchFilterPath = []string{
	"hits.total.value", "hits.hits._source", "hits.hits.sort",
	"aggregations.*.v.buckets.key", "aggregations.*.v.buckets.doc_count",
}

type searchResponse struct {
	Hits struct {
		Total struct {
			Value int64 `json:"value"`
		} `json:"total"`
		Hits []struct {
			Source document          `json:"_source"`
			Sort   []json.RawMessage `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]struct {
		V struct {
			Buckets []struct {
				Key      json.RawMessage `json:"key"`
				DocCount int64           `json:"doc_count"`
			} `json:"buckets"`
		} `json:"v"`
	} `json:"aggregations"`
}

func (r *searchResponse) result(q Query) (Result, error) {
	res := Result{Total: r.Hits.Total.Value, Source: SourceSearch, Hits: make([]Hit, 0, q.Size)}
	hits := r.Hits.Hits
	if len(hits) > q.Size {
		hits = hits[:q.Size]
		res.Next = encodeCursor(SourceSearch, q, hits[len(hits)-1].Sort)
	}
	for _, h := range hits {
		hit := h.Source.hit()
		if q.Text != "" {
			highlight(&hit, q.Text)
		}
		res.Hits = append(res.Hits, hit)
	}
	if r.Aggregations != nil {
		res.Facets = map[string][]Bucket{}
		for _, name := range facetNames {
			buckets := []Bucket{}
			for _, b := range r.Aggregations[name].V.Buckets {
				key := string(b.Key)
				if s, err := strconv.Unquote(key); err == nil {
					key = s
				}
				buckets = append(buckets, Bucket{Key: key, Count: b.DocCount})
			}
			res.Facets[name] = sortBuckets(name, buckets)
		}
	}
	return res, nil
}

// sortBuckets puts facet buckets in the order both backends return:
// department and category by count (then name), credits by value, days in
// week order.
func sortBuckets(name string, b []Bucket) []Bucket {
	switch name {
	case FacetCredits:
		slices.SortFunc(b, func(x, y Bucket) int {
			xi, _ := strconv.Atoi(x.Key)
			yi, _ := strconv.Atoi(y.Key)
			return xi - yi
		})
	case FacetDays:
		slices.SortFunc(b, func(x, y Bucket) int { return dayIndex(x.Key) - dayIndex(y.Key) })
	default:
		slices.SortFunc(b, func(x, y Bucket) int {
			if x.Count != y.Count {
				if x.Count > y.Count {
					return -1
				}
				return 1
			}
			switch {
			case x.Key < y.Key:
				return -1
			case x.Key > y.Key:
				return 1
			}
			return 0
		})
	}
	return b
}
