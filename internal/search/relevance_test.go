package search

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRelevance(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// sections in the fixture matching pred: the size of a "tier".
	count := func(pred func(title, code, prof string) bool) int {
		n := 0
		for _, c := range b.courses {
			if pred(c.Title, c.Code, c.Professor) {
				n++
			}
		}
		return n
	}

	tests := []struct {
		name string
		text string
		// top is how many leading hits must satisfy want (0: just the first).
		top  int
		want func(h Hit) bool
		// also, if set, must hold for at least one of the leading hits.
		also func(h Hit) bool
	}{
		{
			name: "title prefix 자료 finds 자료구조 first",
			text: "자료",
			top:  count(func(title, _, _ string) bool { return title == "자료구조" }),
			want: func(h Hit) bool { return h.Title == "자료구조" },
		},
		{
			name: "데이터 finds 데이터베이스 and 데이터리터러시",
			text: "데이터",
			top:  count(func(title, _, _ string) bool { return strings.HasPrefix(title, "데이터") }),
			want: func(h Hit) bool { return h.Title == "데이터베이스" || h.Title == "데이터리터러시" },
			also: func(h Hit) bool { return h.Title == "데이터리터러시" },
		},
		{
			name: "English typo Algoritms finds 알고리즘",
			text: "Algoritms",
			top:  count(func(title, _, _ string) bool { return title == "알고리즘" }),
			want: func(h Hit) bool { return h.Title == "알고리즘" && h.TitleEn == "Algorithms" },
		},
		{
			name: "exact course code first",
			text: "CSE4051",
			top:  count(func(_, code, _ string) bool { return code == "CSE4051" }),
			want: func(h Hit) bool { return h.Code == "CSE4051" },
		},
		{
			name: "lower-case code",
			text: "cse4051",
			want: func(h Hit) bool { return h.Code == "CSE4051" },
		},
		{
			name: "code prefix as you type",
			text: "CSE40",
			top:  count(func(_, code, _ string) bool { return strings.HasPrefix(code, "CSE40") }),
			want: func(h Hit) bool { return strings.HasPrefix(h.Code, "CSE40") },
		},
		{
			name: "professor name",
			text: "김지훈",
			top:  count(func(_, _, prof string) bool { return prof == "김지훈" }),
			want: func(h Hit) bool { return h.Professor == "김지훈" },
		},
		{
			name: "inner bigram 구조",
			text: "구조",
			want: func(h Hit) bool { return h.Title == "자료구조" },
		},
		{
			name: "English prefix Data Struct",
			text: "Data Struct",
			want: func(h Hit) bool { return h.TitleEn == "Data Structures" },
		},
		{
			name: "title and professor across fields",
			text: "알고리즘 최하린",
			want: func(h Hit) bool { return h.Title == "알고리즘" && h.Professor == "최하린" },
		},
		{
			name: "full-width code",
			text: "ＣＳＥ４０５１",
			want: func(h Hit) bool { return h.Code == "CSE4051" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top := max(tc.top, 1)
			res, err := b.client.Search(ctx, Query{Text: tc.text, Size: min(top, MaxSize)})
			if err != nil {
				t.Fatalf("search %q: %v", tc.text, err)
			}
			if len(res.Hits) < min(top, MaxSize) {
				t.Fatalf("search %q: %d hits, want at least %d", tc.text, len(res.Hits), top)
			}
			sawAlso := tc.also == nil
			for i, h := range res.Hits[:min(top, MaxSize)] {
				if !tc.want(h) {
					t.Errorf("search %q: hit %d is %s-%s %s (%s) by %s, not what should rank there",
						tc.text, i+1, h.Code, h.Section, h.Title, h.TitleEn, h.Professor)
				}
				if tc.also != nil && tc.also(h) {
					sawAlso = true
				}
			}
			if !sawAlso {
				t.Errorf("search %q: expected hit missing from the top %d", tc.text, top)
			}
			if res.Source != SourceSearch || res.Degraded {
				t.Errorf("source %q degraded %v", res.Source, res.Degraded)
			}
			if len(res.Hits[0].Highlights) == 0 {
				t.Errorf("search %q: first hit has no highlights", tc.text)
			}
			t.Logf("%q: total %d, first %s-%s %s %v", tc.text, res.Total, res.Hits[0].Code, res.Hits[0].Section, res.Hits[0].Title, res.Hits[0].Highlights)
		})
	}
}
