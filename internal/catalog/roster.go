package catalog

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// Limits on roster values. Lengths follow the students table.
const (
	MinStudentNoLen   = 6
	MaxStudentNoLen   = 20
	MinYear           = 1
	MaxYear           = 6
	MinMaxCredits     = 1
	MaxMaxCredits     = 30
	DefaultMaxCredits = 18
)

// Student is one row of a roster file, keyed by StudentNo.
type Student struct {
	Row        int // spreadsheet row it came from (0 when built in code)
	StudentNo  string
	Name       string
	Year       int
	Department string
	MaxCredits int
}

var rosterColumns = []column{
	{name: "student_no", maxLen: MaxStudentNoLen, required: true},
	{name: "name", maxLen: 100, required: true},
	{name: "year", required: true},
	{name: "department", maxLen: 100, required: true},
	{name: "max_credits"},
}

// RosterHeader is the header row of a roster file in the canonical order.
func RosterHeader() []string { return names(rosterColumns) }

func rosterCol(name string) column {
	for _, c := range rosterColumns {
		if c.name == name {
			return c
		}
	}
	panic("catalog: no roster column " + name)
}

// ParseRoster reads a student roster CSV file (see docs/IMPORT.md): a header
// naming student_no, name, year, department and max_credits in any order,
// then one student per row. student_no is 6–20 digits and unique in the
// file, year is 1–6, max_credits is 1–30 and defaults to 18 when empty. Like
// ParseCatalog it reports every problem and returns only the clean rows; a
// caller must import nothing when errs is not empty.
func ParseRoster(r io.Reader) (students []Student, errs []RowError) {
	t := newTable(r, rosterColumns)
	first := map[string]int{}
	for t.next() {
		nerr := len(t.errs)
		s := Student{Row: t.row}
		var ok bool
		s.StudentNo, ok = t.text(rosterCol("student_no"))
		noOK := ok && validStudentNo(s.StudentNo)
		if ok && !noOK {
			t.fail("student_no", CodeBadStudentNo, s.StudentNo, MinStudentNoLen, MaxStudentNoLen)
		}
		s.Name, _ = t.text(rosterCol("name"))
		if s.Year, ok = t.number(rosterCol("year"), 0, false); ok && (s.Year < MinYear || s.Year > MaxYear) {
			t.fail("year", CodeYearOutOfRange, t.raw("year"), MinYear, MaxYear)
		}
		s.Department, _ = t.text(rosterCol("department"))
		if s.MaxCredits, ok = t.number(rosterCol("max_credits"), DefaultMaxCredits, true); ok &&
			(s.MaxCredits < MinMaxCredits || s.MaxCredits > MaxMaxCredits) {
			t.fail("max_credits", CodeMaxCreditsOutOfRange, t.raw("max_credits"), MinMaxCredits, MaxMaxCredits)
		}
		if noOK {
			if row, seen := first[s.StudentNo]; seen {
				t.fail("student_no", CodeDuplicateStudent, s.StudentNo, row)
			} else {
				first[s.StudentNo] = t.row
			}
		}
		if len(t.errs) == nerr {
			students = append(students, s)
		}
	}
	return students, t.errs
}

func validStudentNo(s string) bool {
	return len(s) >= MinStudentNoLen && len(s) <= MaxStudentNoLen && allDigits(s)
}

// CheckStudents verifies the invariants ParseRoster guarantees, for students
// that did not come from ParseRoster (ImportStudents calls it first).
func CheckStudents(students []Student) Errors {
	var errs Errors
	first := map[string]int{}
	for i, s := range students {
		fail := func(col, code, value string, args ...any) {
			errs = append(errs, newError(s.Row, col, code, value, args...))
		}
		if !validStudentNo(s.StudentNo) {
			fail("student_no", CodeBadStudentNo, s.StudentNo, MinStudentNoLen, MaxStudentNoLen)
		}
		for _, f := range []struct{ col, v string }{{"name", s.Name}, {"department", s.Department}} {
			c := rosterCol(f.col)
			v, code := cleanText(f.v)
			switch {
			case code != "":
				fail(f.col, code, f.v)
			case isFormula(f.v, v):
				fail(f.col, CodeFormulaInjection, f.v)
			case v == "":
				fail(f.col, CodeRequired, "")
			case utf8.RuneCountInString(v) > c.maxLen:
				fail(f.col, CodeFieldTooLong, v, c.maxLen, utf8.RuneCountInString(v))
			}
		}
		if s.Year < MinYear || s.Year > MaxYear {
			fail("year", CodeYearOutOfRange, strconv.Itoa(s.Year), MinYear, MaxYear)
		}
		if s.MaxCredits < MinMaxCredits || s.MaxCredits > MaxMaxCredits {
			fail("max_credits", CodeMaxCreditsOutOfRange, strconv.Itoa(s.MaxCredits), MinMaxCredits, MaxMaxCredits)
		}
		if j, seen := first[s.StudentNo]; seen {
			fail("student_no", CodeDuplicateStudent, s.StudentNo, students[j].Row)
		} else {
			first[s.StudentNo] = i
		}
	}
	return errs
}
