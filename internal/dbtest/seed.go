package dbtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// SeedCourse describes a section to insert.
type SeedCourse struct {
	Code     string
	Section  string
	Credits  int
	Capacity int
	// Meetings as (day, start_min, end_min) triples.
	Meetings [][3]int
}

// SeedCourses inserts sections (with their meetings) and returns their ids in
// order.
func SeedCourses(t testing.TB, db *sqlx.DB, cs []SeedCourse) []int64 {
	t.Helper()
	ctx := context.Background()
	ids := make([]int64, 0, len(cs))
	for start := 0; start < len(cs); start += 500 {
		chunk := cs[start:min(start+500, len(cs))]
		var sb strings.Builder
		args := []any{}
		for i, c := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?)")
			args = append(args, c.Code, c.Section, "과목 "+c.Code, "Course "+c.Code, "테스트학과", "교수", c.Credits, c.Capacity)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO courses (code, section, title, title_en, department, professor, credits, capacity) VALUES "+sb.String(), args...); err != nil {
			t.Fatalf("seed courses: %v", err)
		}
	}
	rows, err := db.QueryxContext(ctx, "SELECT id, code, section FROM courses")
	if err != nil {
		t.Fatalf("seed courses: read ids: %v", err)
	}
	byKey := map[string]int64{}
	for rows.Next() {
		var id int64
		var code, sec string
		if err := rows.Scan(&id, &code, &sec); err != nil {
			t.Fatal(err)
		}
		byKey[code+"/"+sec] = id
	}
	rows.Close()
	var margs []any
	var msb strings.Builder
	for _, c := range cs {
		id := byKey[c.Code+"/"+c.Section]
		ids = append(ids, id)
		for _, m := range c.Meetings {
			if len(margs) > 0 {
				msb.WriteByte(',')
			}
			msb.WriteString("(?,?,?,?)")
			margs = append(margs, id, m[0], m[1], m[2])
		}
	}
	for len(margs) > 0 {
		n := min(len(margs), 4000)
		q := "INSERT INTO course_meetings (course_id, day, start_min, end_min) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?,?,?),", n/4), ",")
		if _, err := db.ExecContext(ctx, q, margs[:n]...); err != nil {
			t.Fatalf("seed meetings: %v", err)
		}
		margs = margs[n:]
	}
	return ids
}

// SeedStudents inserts n students (year 1..4, max_credits) with the given
// password hash and returns their ids in order.
func SeedStudents(t testing.TB, db *sqlx.DB, n, maxCredits int, passwordHash string) []int64 {
	t.Helper()
	ctx := context.Background()
	var first int64
	for start := 0; start < n; start += 1000 {
		m := min(1000, n-start)
		var sb strings.Builder
		args := []any{}
		for i := 0; i < m; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			k := start + i
			sb.WriteString("(?,?,?,?,?,?)")
			args = append(args, fmt.Sprintf("2026%05d", k), fmt.Sprintf("학생%d", k), k%4+1, "테스트학과", maxCredits, passwordHash)
		}
		res, err := db.ExecContext(ctx, "INSERT INTO students (student_no, name, year, department, max_credits, password_hash) VALUES "+sb.String(), args...)
		if err != nil {
			t.Fatalf("seed students: %v", err)
		}
		if start == 0 {
			id, _ := res.LastInsertId()
			first = id
		}
	}
	var ids []int64
	if err := db.SelectContext(ctx, &ids, "SELECT id FROM students WHERE id >= ? ORDER BY id LIMIT ?", first, n); err != nil {
		t.Fatalf("seed students: read ids: %v", err)
	}
	return ids
}

// RandomCatalog returns n sections with tight capacities, 1–3 weekly meetings
// on a 30-minute grid (so some overlap), credits 1–4, and a few sections
// sharing a course code.
func RandomCatalog(rng *rand.Rand, n, maxCapacity int) []SeedCourse {
	cs := make([]SeedCourse, n)
	for i := range cs {
		code := fmt.Sprintf("TST%04d", i/2) // pairs of sections share a code
		c := SeedCourse{Code: code, Section: fmt.Sprintf("%02d", i%2+1), Credits: rng.IntN(4) + 1, Capacity: rng.IntN(maxCapacity + 1)}
		for m := 0; m < rng.IntN(3)+1; m++ {
			day := rng.IntN(5)
			start := 540 + 30*rng.IntN(16)
			dup := false
			for _, o := range c.Meetings {
				if o[0] == day && start < o[2] && o[1] < start+75 {
					dup = true
				}
			}
			if !dup {
				c.Meetings = append(c.Meetings, [3]int{day, start, start + 75})
			}
		}
		cs[i] = c
	}
	return cs
}
