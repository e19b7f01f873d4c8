package search

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Both mean "the caller sent something wrong" (HTTP 400);
// neither trips the fallback.
var (
	// ErrInvalidQuery wraps every validation failure of a Query.
	ErrInvalidQuery = errors.New("invalid search query")
	// ErrBadCursor means After is not a cursor this backend issued for
	// this query and sort (malformed, from another query, or issued by the
	// other backend after a fallback switch): start the listing again.
	ErrBadCursor = errors.New("invalid or expired search cursor")
)

// Sort orders of a result list.
const (
	SortRelevance = "relevance" // best match first; with no Text it is SortCode
	SortCode      = "code"      // code, section ascending
	SortSeatsLeft = "seats_left"
	SortTitle     = "title"
)

// Sources of a Result.
const (
	SourceSearch = "search" // the OpenSearch / Elasticsearch node
	SourceSQL    = "sql"    // the LIKE fallback on the MariaDB replica
)

// Size limits of one page.
const (
	DefaultSize = 20
	MaxSize     = 100
	maxTextLen  = 100 // runes
)

// Days are the meeting-day keys, in week order (course_meetings.day 0..6).
var Days = []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

// Facet names in Result.Facets.
const (
	FacetDepartment = "department"
	FacetCategory   = "category"
	FacetCredits    = "credits"
	FacetDays       = "days"
)

var facetNames = []string{FacetDepartment, FacetCategory, FacetCredits, FacetDays}

// Query is one course search. The zero value lists every section by code.
type Query struct {
	Text       string   // free text: code, title (Korean or English), professor
	Department string   // exact department name
	Category   string   // exact category (전공필수, 전공선택, 교양, ...)
	Credits    int      // 0 = any
	Days       []string // meets on at least one of these days (MON..SUN)
	// From and To, in minutes after midnight, keep only sections whose
	// meetings all lie within [From, To]. To == 0 means no upper bound.
	From, To int
	OpenOnly bool   // open sections with seats left (is_open and seats_left > 0)
	Sort     string // relevance (default), code, seats_left, title
	Size     int    // page size: 0 = DefaultSize, at most MaxSize
	After    string // Result.Next of the previous page
}

// Hit is one course section.
type Hit struct {
	ID         uint64              `json:"id"`
	Code       string              `json:"code"`
	Section    string              `json:"section"`
	Title      string              `json:"title"`
	TitleEn    string              `json:"title_en"`
	Professor  string              `json:"professor"`
	Department string              `json:"department"`
	Category   string              `json:"category"`
	Credits    int                 `json:"credits"`
	Capacity   int                 `json:"capacity"`
	Enrolled   int                 `json:"enrolled"`
	SeatsLeft  int                 `json:"seats_left"`
	IsOpen     bool                `json:"is_open"`
	Meetings   string              `json:"meetings"` // "MON 18:00-19:15;WED 18:00-19:15"
	Days       []string            `json:"days"`
	Room       string              `json:"room"`
	Highlights map[string][]string `json:"highlights,omitempty"` // field -> HTML-escaped fragments with <em>
}

// Bucket is one facet value and the number of matching sections.
type Bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Result is one page of a search.
type Result struct {
	Hits  []Hit `json:"hits"`
	Total int64 `json:"total"` // every match, not only this page
	// Next is the cursor for the following page ("" on the last page).
	Next string `json:"next,omitempty"`
	// Facets are counted on the first page only (After == ""). The counts
	// of one facet ignore that facet's own filter and apply all others, so
	// a UI can show the alternatives to the current choice; choosing a
	// bucket gives exactly Count hits.
	Facets   map[string][]Bucket `json:"facets,omitempty"`
	Source   string              `json:"source"`   // SourceSearch or SourceSQL
	Degraded bool                `json:"degraded"` // true when answered by the fallback
}

// normalize validates q and fills in defaults. It returns the effective
// query both backends execute.
func (q Query) normalize() (Query, error) {
	q.Text = strings.Join(strings.Fields(q.Text), " ")
	if !utf8.ValidString(q.Text) {
		return q, fmt.Errorf("%w: text is not valid UTF-8", ErrInvalidQuery)
	}
	if utf8.RuneCountInString(q.Text) > maxTextLen {
		return q, fmt.Errorf("%w: text longer than %d characters", ErrInvalidQuery, maxTextLen)
	}
	q.Department = strings.TrimSpace(q.Department)
	q.Category = strings.TrimSpace(q.Category)
	if q.Credits < 0 || q.Credits > 6 {
		return q, fmt.Errorf("%w: credits must be 1..6", ErrInvalidQuery)
	}
	days := make([]string, 0, len(q.Days))
	for _, d := range q.Days {
		d = strings.ToUpper(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if !slices.Contains(Days, d) {
			return q, fmt.Errorf("%w: day %q is not one of MON..SUN", ErrInvalidQuery, d)
		}
		if !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	slices.SortFunc(days, func(a, b string) int { return dayIndex(a) - dayIndex(b) })
	q.Days = days
	if q.From < 0 || q.From > 1440 || q.To < 0 || q.To > 1440 {
		return q, fmt.Errorf("%w: from/to must be minutes 0..1440", ErrInvalidQuery)
	}
	if q.To != 0 && q.To < q.From {
		return q, fmt.Errorf("%w: to before from", ErrInvalidQuery)
	}
	if q.To == 1440 && q.From == 0 {
		q.To = 0
	}
	switch q.Sort {
	case "":
		q.Sort = SortRelevance
	case SortRelevance, SortCode, SortSeatsLeft, SortTitle:
	default:
		return q, fmt.Errorf("%w: sort must be relevance, code, seats_left or title", ErrInvalidQuery)
	}
	if q.Sort == SortRelevance && q.Text == "" {
		q.Sort = SortCode
	}
	switch {
	case q.Size == 0:
		q.Size = DefaultSize
	case q.Size < 0:
		return q, fmt.Errorf("%w: size must be positive", ErrInvalidQuery)
	case q.Size > MaxSize:
		q.Size = MaxSize
	}
	return q, nil
}

// hasTimeRange reports whether the meeting-time filter is active.
func (q Query) hasTimeRange() bool { return q.From > 0 || q.To > 0 }

// upperBound is To, or the end of the day when To is unset.
func (q Query) upperBound() int {
	if q.To == 0 {
		return 1440
	}
	return q.To
}

func dayIndex(d string) int { return slices.Index(Days, d) }

// QueryFromValues builds a Query from URL query parameters, the contract of
// GET /api/v1/courses:
//
//	q           free text
//	department  exact department
//	category    exact category
//	credits     1..6
//	days        MON,WED (or repeated days=MON&days=WED)
//	from, to    HH:MM or minutes after midnight
//	open        true/1: open sections with seats left only
//	sort        relevance | code | seats_left | title
//	size        1..100 (default 20)
//	after       cursor from the previous page's "next"
func QueryFromValues(v url.Values) (Query, error) {
	q := Query{
		Text:       v.Get("q"),
		Department: v.Get("department"),
		Category:   v.Get("category"),
		Sort:       v.Get("sort"),
		After:      v.Get("after"),
	}
	var err error
	if s := v.Get("credits"); s != "" {
		if q.Credits, err = strconv.Atoi(s); err != nil {
			return q, fmt.Errorf("%w: credits %q is not a number", ErrInvalidQuery, s)
		}
	}
	for _, d := range v["days"] {
		q.Days = append(q.Days, strings.Split(d, ",")...)
	}
	if q.From, err = parseClock(v.Get("from")); err != nil {
		return q, fmt.Errorf("%w: from: %v", ErrInvalidQuery, err)
	}
	if q.To, err = parseClock(v.Get("to")); err != nil {
		return q, fmt.Errorf("%w: to: %v", ErrInvalidQuery, err)
	}
	if s := v.Get("open"); s != "" {
		if q.OpenOnly, err = strconv.ParseBool(s); err != nil {
			return q, fmt.Errorf("%w: open %q is not a boolean", ErrInvalidQuery, s)
		}
	}
	if s := v.Get("size"); s != "" {
		if q.Size, err = strconv.Atoi(s); err != nil || q.Size < 1 {
			return q, fmt.Errorf("%w: size %q is not a positive number", ErrInvalidQuery, s)
		}
	}
	return q.normalize()
}

// parseClock reads "HH:MM" or a plain number of minutes; "" is 0.
func parseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if h, m, ok := strings.Cut(s, ":"); ok {
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh*60+mm > 1440 {
			return 0, fmt.Errorf("%q is not a time HH:MM", s)
		}
		return hh*60 + mm, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1440 {
		return 0, fmt.Errorf("%q is not a time HH:MM or minutes 0..1440", s)
	}
	return n, nil
}

// cursor is the decoded form of Query.After / Result.Next. It is bound to
// the backend that issued it, the sort order and the query, so a cursor
// replayed against anything else is refused instead of skipping or
// repeating hits.
type cursor struct {
	Backend string            `json:"b"`
	Sort    string            `json:"s"`
	Hash    uint32            `json:"h"`
	Key     []json.RawMessage `json:"k"`
}

// fingerprint identifies the result list of q (everything but After and Size).
func (q Query) fingerprint() uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s\x00%d\x00%d\x00%t\x00%s",
		q.Text, q.Department, q.Category, q.Credits, strings.Join(q.Days, ","), q.From, q.To, q.OpenOnly, q.Sort)
	return h.Sum32()
}

func encodeCursor(backend string, q Query, key []json.RawMessage) string {
	b, _ := json.Marshal(cursor{Backend: backend, Sort: q.Sort, Hash: q.fingerprint(), Key: key})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the sort key after which the page starts, or nil
// for the first page.
func decodeCursor(backend string, q Query) ([]json.RawMessage, error) {
	if q.After == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(q.After)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadCursor)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	switch {
	case c.Backend != backend:
		return nil, fmt.Errorf("%w: issued by the %s backend, this page comes from %s", ErrBadCursor, c.Backend, backend)
	case c.Sort != q.Sort || c.Hash != q.fingerprint():
		return nil, fmt.Errorf("%w: issued for another query or sort", ErrBadCursor)
	case len(c.Key) == 0:
		return nil, fmt.Errorf("%w: empty key", ErrBadCursor)
	}
	return c.Key, nil
}
