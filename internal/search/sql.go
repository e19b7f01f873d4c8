package search

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
)

// SQL answers searches from MariaDB with LIKE, for when the node is down.
// Give it the replica: it never writes and the primary is for deciding
// enrollments. It has no typo tolerance, no highlights and a coarser
// relevance order (exact code, code prefix, title prefix, title substring,
// professor, other), but the same filters, facet semantics, sort orders and
// keyset pagination as the node. It is safe for concurrent use.
type SQL struct {
	db *sqlx.DB
}

// NewSQL returns the fallback over db (the replica).
func NewSQL(db *sqlx.DB) *SQL { return &SQL{db: db} }

// clause is a SQL fragment and its arguments.
type clause struct {
	sql  string
	args []any
}

func and(cs ...clause) clause {
	var parts []string
	var args []any
	for _, c := range cs {
		if c.sql == "" {
			continue
		}
		parts = append(parts, "("+c.sql+")")
		args = append(args, c.args...)
	}
	if len(parts) == 0 {
		return clause{sql: "1=1"}
	}
	return clause{sql: strings.Join(parts, " AND "), args: args}
}

// likeEscape escapes the LIKE wildcards of s (backslash is the escape).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// baseFilter holds the conditions every count of q shares: not deleted,
// the text, the time range and open seats.
func baseFilter(q Query) clause {
	cs := []clause{{sql: "c.deleted_at IS NULL"}}
	for _, w := range strings.Fields(q.Text) {
		p := "%" + likeEscape(w) + "%"
		cs = append(cs, clause{
			sql:  "c.code LIKE ? OR c.title LIKE ? OR c.title_en LIKE ? OR c.professor LIKE ?",
			args: []any{p, p, p, p},
		})
	}
	if q.hasTimeRange() {
		cs = append(cs, clause{
			sql: "NOT EXISTS (SELECT 1 FROM course_meetings m WHERE m.course_id = c.id " +
				"AND (m.start_min < ? OR m.end_min > ?))",
			args: []any{q.From, q.upperBound()},
		})
	}
	if q.OpenOnly {
		cs = append(cs, clause{sql: "c.is_open = 1 AND c.capacity > c.enrolled"})
	}
	return and(cs...)
}

// sqlFacetFilters mirrors facetFilters.
func sqlFacetFilters(q Query, skip string) clause {
	var cs []clause
	if q.Department != "" && skip != FacetDepartment {
		cs = append(cs, clause{sql: "c.department = ?", args: []any{q.Department}})
	}
	if q.Category != "" && skip != FacetCategory {
		cs = append(cs, clause{sql: "c.category = ?", args: []any{q.Category}})
	}
	if q.Credits != 0 && skip != FacetCredits {
		cs = append(cs, clause{sql: "c.credits = ?", args: []any{q.Credits}})
	}
	if len(q.Days) > 0 && skip != FacetDays {
		args := make([]any, len(q.Days))
		for i, d := range q.Days {
			args[i] = dayIndex(d)
		}
		cs = append(cs, clause{
			sql: "EXISTS (SELECT 1 FROM course_meetings m WHERE m.course_id = c.id AND m.day IN (" +
				strings.TrimSuffix(strings.Repeat("?,", len(args)), ",") + "))",
			args: args,
		})
	}
	return and(cs...)
}

// rankExpr is the SQL relevance tier of a row for q.Text (lower is better).
func rankExpr(q Query) clause {
	t := q.Text
	prefix := likeEscape(t) + "%"
	infix := "%" + likeEscape(t) + "%"
	return clause{
		sql: "CASE WHEN c.code = ? THEN 0 WHEN c.code LIKE ? THEN 1 WHEN c.title LIKE ? THEN 2 " +
			"WHEN c.title LIKE ? THEN 3 WHEN c.professor = ? THEN 4 WHEN c.professor LIKE ? THEN 5 ELSE 6 END",
		args: []any{t, prefix, prefix, infix, t, infix},
	}
}

const sqlSeatsLeft = "(CAST(c.capacity AS SIGNED) - CAST(c.enrolled AS SIGNED))"

// sqlRow is one page row.
type sqlRow struct {
	ID         uint64  `db:"id"`
	Code       string  `db:"code"`
	Section    string  `db:"section"`
	Title      string  `db:"title"`
	TitleEn    string  `db:"title_en"`
	Professor  string  `db:"professor"`
	Department string  `db:"department"`
	Category   string  `db:"category"`
	Credits    int     `db:"credits"`
	Capacity   int     `db:"capacity"`
	Enrolled   int     `db:"enrolled"`
	SeatsLeft  int     `db:"seats_left"`
	IsOpen     bool    `db:"is_open"`
	Meetings   string  `db:"meetings"`
	Room       string  `db:"room"`
	Days       *string `db:"days"`
	Rank       int     `db:"rnk"`
}

// sortKey returns the keyset values of a row for q's sort order.
func (r sqlRow) sortKey(sort string) []any {
	tail := []any{r.Code, r.Section, r.ID}
	switch sort {
	case SortRelevance:
		return append([]any{r.Rank}, tail...)
	case SortSeatsLeft:
		return append([]any{r.SeatsLeft}, tail...)
	case SortTitle:
		return append([]any{r.Title}, tail...)
	}
	return tail
}

// keyset returns ORDER BY and, for a cursor, the condition "after the key".
func keyset(q Query, rank clause, key []json.RawMessage) (order string, after clause, err error) {
	var (
		code, section string
		id            uint64
		first         json.RawMessage
	)
	want := 3
	if q.Sort != SortCode {
		want = 4
	}
	if key != nil {
		if len(key) != want {
			return "", clause{}, fmt.Errorf("%w: key has %d values, want %d", ErrBadCursor, len(key), want)
		}
		if q.Sort != SortCode {
			first, key = key[0], key[1:]
		}
		if json.Unmarshal(key[0], &code) != nil || json.Unmarshal(key[1], &section) != nil || json.Unmarshal(key[2], &id) != nil {
			return "", clause{}, fmt.Errorf("%w: bad key values", ErrBadCursor)
		}
	}
	tailArgs := []any{code, section, id}
	switch q.Sort {
	case SortRelevance:
		order = "rnk, c.code, c.section, c.id"
		if key != nil {
			var r int
			if json.Unmarshal(first, &r) != nil {
				return "", clause{}, fmt.Errorf("%w: bad rank", ErrBadCursor)
			}
			after = clause{sql: "(" + rank.sql + ", c.code, c.section, c.id) > (?, ?, ?, ?)",
				args: append(append(append([]any{}, rank.args...), r), tailArgs...)}
		}
	case SortSeatsLeft:
		order = "seats_left DESC, c.code, c.section, c.id"
		if key != nil {
			var s int
			if json.Unmarshal(first, &s) != nil {
				return "", clause{}, fmt.Errorf("%w: bad seats_left", ErrBadCursor)
			}
			after = clause{sql: sqlSeatsLeft + " < ? OR (" + sqlSeatsLeft + " = ? AND (c.code, c.section, c.id) > (?, ?, ?))",
				args: append([]any{s, s}, tailArgs...)}
		}
	case SortTitle:
		order = "c.title, c.code, c.section, c.id"
		if key != nil {
			var t string
			if json.Unmarshal(first, &t) != nil {
				return "", clause{}, fmt.Errorf("%w: bad title", ErrBadCursor)
			}
			after = clause{sql: "(c.title, c.code, c.section, c.id) > (?, ?, ?, ?)", args: append([]any{t}, tailArgs...)}
		}
	default:
		order = "c.code, c.section, c.id"
		if key != nil {
			after = clause{sql: "(c.code, c.section, c.id) > (?, ?, ?)", args: tailArgs}
		}
	}
	return order, after, nil
}

// Search runs q on the database. The Result has Source "sql" and
// Degraded true.
func (s *SQL) Search(ctx context.Context, q Query) (Result, error) {
	q, err := q.normalize()
	if err != nil {
		return Result{}, err
	}
	key, err := decodeCursor(SourceSQL, q)
	if err != nil {
		return Result{}, err
	}
	base := baseFilter(q)
	rank := clause{sql: "0"}
	if q.Sort == SortRelevance {
		rank = rankExpr(q)
	}
	order, after, err := keyset(q, rank, key)
	if err != nil {
		return Result{}, err
	}

	res := Result{Source: SourceSQL, Degraded: true, Hits: make([]Hit, 0, q.Size)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// Page, total and facets are independent reads: run them side by side.
	wg.Go(func() {
		where := and(base, sqlFacetFilters(q, ""), after)
		query := "SELECT c.id, c.code, c.section, c.title, c.title_en, c.professor, c.department, c.category, " +
			"c.credits, c.capacity, c.enrolled, " + sqlSeatsLeft + " AS seats_left, c.is_open, c.meetings, c.room, " +
			"(SELECT GROUP_CONCAT(DISTINCT m.day ORDER BY m.day) FROM course_meetings m WHERE m.course_id = c.id) AS days, " +
			rank.sql + " AS rnk FROM courses c WHERE " + where.sql + " ORDER BY " + order + " LIMIT ?"
		args := append(append(append([]any{}, rank.args...), where.args...), q.Size+1)
		var rows []sqlRow
		if err := sqlx.SelectContext(ctx, s.db, &rows, query, args...); err != nil {
			fail(fmt.Errorf("sql search page: %w", err))
			return
		}
		if len(rows) > q.Size {
			rows = rows[:q.Size]
			var k []json.RawMessage
			for _, v := range rows[len(rows)-1].sortKey(q.Sort) {
				b, _ := json.Marshal(v)
				k = append(k, b)
			}
			res.Next = encodeCursor(SourceSQL, q, k)
		}
		for _, r := range rows {
			h := Hit{ID: r.ID, Code: r.Code, Section: r.Section, Title: r.Title, TitleEn: r.TitleEn,
				Professor: r.Professor, Department: r.Department, Category: r.Category, Credits: r.Credits,
				Capacity: r.Capacity, Enrolled: r.Enrolled, SeatsLeft: r.SeatsLeft, IsOpen: r.IsOpen,
				Meetings: r.Meetings, Room: r.Room, Days: []string{}}
			if r.Days != nil && *r.Days != "" {
				for _, d := range strings.Split(*r.Days, ",") {
					if i, err := strconv.Atoi(d); err == nil && i >= 0 && i < len(Days) {
						h.Days = append(h.Days, Days[i])
					}
				}
			}
			if q.Text != "" {
				highlight(&h, q.Text)
			}
			res.Hits = append(res.Hits, h)
		}
	})
	// Total and all facets come from one scan: the matches of the base
	// filter grouped by every facet value (days as a bit mask), from which
	// each count applies the facet filters but its own.
	wg.Go(func() {
		query := "SELECT c.department AS dept, c.category AS cat, c.credits AS cr, " +
			"COALESCE((SELECT BIT_OR(1 << m.day) FROM course_meetings m WHERE m.course_id = c.id), 0) AS dm, " +
			"COUNT(*) AS n FROM courses c WHERE " + base.sql + " GROUP BY dept, cat, cr, dm"
		var groups []facetGroup
		if err := sqlx.SelectContext(ctx, s.db, &groups, query, base.args...); err != nil {
			fail(fmt.Errorf("sql search total and facets: %w", err))
			return
		}
		total, facets := countGroups(q, groups)
		res.Total = total
		if q.After == "" {
			res.Facets = facets
		}
	})
	wg.Wait()
	if len(errs) > 0 {
		return Result{}, errs[0]
	}
	return res, nil
}

// facetGroup is one group of the facet scan.
type facetGroup struct {
	Dept    string `db:"dept"`
	Cat     string `db:"cat"`
	Credits int    `db:"cr"`
	DayMask uint64 `db:"dm"`
	N       int64  `db:"n"`
}

// countGroups returns the total and facets of q from the facet scan.
func countGroups(q Query, groups []facetGroup) (int64, map[string][]Bucket) {
	var wantDays uint64
	for _, d := range q.Days {
		wantDays |= 1 << dayIndex(d)
	}
	match := func(g facetGroup, skip string) bool {
		return (skip == FacetDepartment || q.Department == "" || g.Dept == q.Department) &&
			(skip == FacetCategory || q.Category == "" || g.Cat == q.Category) &&
			(skip == FacetCredits || q.Credits == 0 || g.Credits == q.Credits) &&
			(skip == FacetDays || wantDays == 0 || g.DayMask&wantDays != 0)
	}
	var total int64
	counts := map[string]map[string]int64{}
	for _, f := range facetNames {
		counts[f] = map[string]int64{}
	}
	for _, g := range groups {
		if match(g, "") {
			total += g.N
		}
		if match(g, FacetDepartment) {
			counts[FacetDepartment][g.Dept] += g.N
		}
		if match(g, FacetCategory) {
			counts[FacetCategory][g.Cat] += g.N
		}
		if match(g, FacetCredits) {
			counts[FacetCredits][strconv.Itoa(g.Credits)] += g.N
		}
		if match(g, FacetDays) {
			for i, d := range Days {
				if g.DayMask&(1<<i) != 0 {
					counts[FacetDays][d] += g.N
				}
			}
		}
	}
	facets := make(map[string][]Bucket, len(facetNames))
	for _, f := range facetNames {
		b := make([]Bucket, 0, len(counts[f]))
		for k, n := range counts[f] {
			b = append(b, Bucket{Key: k, Count: n})
		}
		facets[f] = sortBuckets(f, b)
	}
	return total, facets
}
