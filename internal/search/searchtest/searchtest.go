// Package searchtest seeds course catalogs for the search tests and the
// search benchmark (cmd/searchbench) with plain SQL, independent of the
// catalog importer: it parses the fixture CSV, can multiply it into a larger
// catalog, inserts courses and course_meetings, and waits until the replica
// has the rows.
package searchtest

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Course is one fixture row.
type Course struct {
	Code, Section, Title, TitleEn, Department, Professor string
	Credits, Capacity                                    int
	Meetings, Room, Category                             string
	Slots                                                []Slot
}

// Slot is one weekly meeting: day 0=MON..6=SUN, minutes after midnight.
type Slot struct{ Day, Start, End int }

var dayNames = map[string]int{"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}

// LoadCSV reads a catalog CSV
// (code,section,title,title_en,department,professor,credits,capacity,meetings,room,category).
func LoadCSV(path string) ([]Course, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 11
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("read catalog header: %w", err)
	}
	var out []Course
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read catalog line %d: %w", line, err)
		}
		c := Course{Code: rec[0], Section: rec[1], Title: rec[2], TitleEn: rec[3], Department: rec[4],
			Professor: rec[5], Meetings: rec[8], Room: rec[9], Category: rec[10]}
		if c.Credits, err = strconv.Atoi(rec[6]); err != nil {
			return nil, fmt.Errorf("catalog line %d: credits: %w", line, err)
		}
		if c.Capacity, err = strconv.Atoi(rec[7]); err != nil {
			return nil, fmt.Errorf("catalog line %d: capacity: %w", line, err)
		}
		if c.Slots, err = ParseMeetings(c.Meetings); err != nil {
			return nil, fmt.Errorf("catalog line %d: %w", line, err)
		}
		out = append(out, c)
	}
}

// ParseMeetings reads "MON 18:00-19:15;WED 18:00-19:15".
func ParseMeetings(s string) ([]Slot, error) {
	var out []Slot
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		day, span, ok := strings.Cut(part, " ")
		d, known := dayNames[day]
		a, b, ok2 := strings.Cut(span, "-")
		start, err1 := clock(a)
		end, err2 := clock(b)
		if !ok || !known || !ok2 || err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("bad meeting %q", part)
		}
		out = append(out, Slot{Day: d, Start: start, End: end})
	}
	return out, nil
}

func clock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

// Multiply returns n courses: the fixture rows, then copies of them with
// new codes (the numeric part of the code moved up by 10000*k, e.g.
// CSE4051 -> CSE14051), so code+section stays unique.
func Multiply(base []Course, n int) []Course {
	out := make([]Course, 0, n)
	for k := 0; len(out) < n; k++ {
		for _, c := range base {
			if len(out) == n {
				break
			}
			if k > 0 {
				i := strings.IndexFunc(c.Code, func(r rune) bool { return r >= '0' && r <= '9' })
				num, err := strconv.Atoi(c.Code[i:])
				if i < 0 || err != nil {
					c.Code = fmt.Sprintf("%sX%d", c.Code, k)
				} else {
					c.Code = fmt.Sprintf("%s%d", c.Code[:i], num+10000*k)
				}
			}
			out = append(out, c)
		}
	}
	return out
}

// Seed inserts courses and their meetings into db (the primary) in batches
// and returns the new course ids in input order.
func Seed(ctx context.Context, db *sqlx.DB, courses []Course) ([]uint64, error) {
	ids := make([]uint64, 0, len(courses))
	const batch = 500
	for i := 0; i < len(courses); i += batch {
		part := courses[i:min(i+batch, len(courses))]
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("seed: begin: %w", err)
		}
		var q strings.Builder
		q.WriteString("INSERT INTO courses (code, section, title, title_en, department, professor, credits, capacity, meetings, room, category) VALUES ")
		args := make([]any, 0, len(part)*11)
		for j, c := range part {
			if j > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
			args = append(args, c.Code, c.Section, c.Title, c.TitleEn, c.Department, c.Professor, c.Credits, c.Capacity, c.Meetings, c.Room, c.Category)
		}
		res, err := tx.ExecContext(ctx, q.String(), args...)
		if err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("seed: insert courses: %w", err)
		}
		first, err := res.LastInsertId() // first id of a multi-row insert
		if err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("seed: insert id: %w", err)
		}
		q.Reset()
		args = args[:0]
		q.WriteString("INSERT INTO course_meetings (course_id, day, start_min, end_min) VALUES ")
		n := 0
		for j, c := range part {
			id := uint64(first) + uint64(j)
			ids = append(ids, id)
			for _, s := range c.Slots {
				if n > 0 {
					q.WriteString(",")
				}
				q.WriteString("(?,?,?,?)")
				args = append(args, id, s.Day, s.Start, s.End)
				n++
			}
		}
		if n > 0 {
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				tx.Rollback()
				return nil, fmt.Errorf("seed: insert meetings: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("seed: commit: %w", err)
		}
	}
	return ids, nil
}

// SyncProbe is a query whose answer changes with every write to courses or
// course_meetings; WaitReplica compares it between primary and replica.
const SyncProbe = "SELECT CONCAT(COUNT(*), '/', COALESCE(MAX(updated_at), ''), '/', " +
	"(SELECT COUNT(*) FROM course_meetings)) FROM courses"

// WaitReplica waits until the replica answers SyncProbe like the primary
// does, polling every 20ms until ctx ends.
func WaitReplica(ctx context.Context, primary, replica *sqlx.DB) error {
	var want, got string
	if err := sqlx.GetContext(ctx, primary, &want, SyncProbe); err != nil {
		return fmt.Errorf("probe primary: %w", err)
	}
	for {
		err := sqlx.GetContext(ctx, replica, &got, SyncProbe)
		if err == nil && got == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica at %q, primary at %q (last error %v): %w", got, want, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// QuerySpec is one search of a benchmark mix (the fields of search.Query;
// this package cannot import search, whose tests import it).
type QuerySpec struct {
	Text, Department, Category string
	Credits                    int
	Days                       []string
	From, To                   int
	OpenOnly                   bool
}

// QueryMix returns n searches drawn from courses, shaped like what students
// type during registration: title prefixes as they type (40%), whole titles
// (15%), course codes (10%), professors (10%), English titles with a typo
// (5%) and filter-only browsing (20%, by department, category, credits,
// day, time window and open seats). The same seed gives the same mix.
func QueryMix(courses []Course, n int, seed uint64) []QuerySpec {
	x := seed | 1
	rnd := func(k int) int { // xorshift: deterministic without math/rand state
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(k))
	}
	days := []string{"MON", "TUE", "WED", "THU", "FRI"}
	out := make([]QuerySpec, 0, n)
	for len(out) < n {
		c := courses[rnd(len(courses))]
		var q QuerySpec
		switch p := rnd(100); {
		case p < 40:
			r := []rune(c.Title)
			q.Text = string(r[:min(len(r), 1+rnd(3))])
		case p < 55:
			q.Text = c.Title
		case p < 65:
			q.Text = c.Code
		case p < 75:
			q.Text = c.Professor
		case p < 80:
			w := strings.Fields(c.TitleEn)
			if len(w) == 0 {
				continue
			}
			word := []rune(w[0])
			if len(word) > 4 {
				i := 1 + rnd(len(word)-2)
				word = append(word[:i:i], word[i+1:]...) // drop one letter
			}
			q.Text = string(word)
		default:
			switch rnd(5) {
			case 0:
				q.Department = c.Department
			case 1:
				q.Category, q.OpenOnly = c.Category, true
			case 2:
				q.Credits = c.Credits
				q.Days = []string{days[rnd(len(days))]}
			case 3:
				q.From, q.To = 9*60, 15*60
				q.Department = c.Department
			default:
				q.Days = []string{days[rnd(len(days))], days[rnd(len(days))]}
				q.OpenOnly = true
			}
		}
		out = append(out, q)
	}
	return out
}
