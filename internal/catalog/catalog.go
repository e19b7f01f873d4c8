package catalog

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on catalog values. Lengths follow the courses table's VARCHAR sizes.
const (
	MinCredits  = 1
	MaxCredits  = 6
	MaxCapacity = 10000
)

// Section is one row of a catalog file: a section of a course, keyed by
// (Code, Section). Code and Section are upper-case; text fields are trimmed.
type Section struct {
	Row        int // spreadsheet row it came from (0 when built in code)
	Code       string
	Section    string
	Title      string
	TitleEN    string
	Department string
	Professor  string
	Credits    int
	Capacity   int
	Meetings   []Meeting // sorted; nil for a course without fixed meetings
	Room       string
	Category   string
}

// MeetingsText is the normalised meetings text stored in courses.meetings.
func (s Section) MeetingsText() string { return FormatMeetings(s.Meetings) }

// Key is the section's identity, "CODE/SECTION".
func (s Section) Key() string { return s.Code + "/" + s.Section }

var catalogColumns = []column{
	{name: "code", maxLen: 20, required: true},
	{name: "section", maxLen: 10, required: true},
	{name: "title", maxLen: 200, required: true},
	{name: "title_en", maxLen: 200},
	{name: "department", maxLen: 100, required: true},
	{name: "professor", maxLen: 100},
	{name: "credits", required: true},
	{name: "capacity", required: true},
	{name: "meetings", maxLen: 200},
	{name: "room", maxLen: 100},
	{name: "category", maxLen: 50},
}

// CatalogHeader is the header row of a catalog file in the canonical order.
// Files may order the columns differently.
func CatalogHeader() []string { return names(catalogColumns) }

func names(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func catalogCol(name string) column {
	for _, c := range catalogColumns {
		if c.name == name {
			return c
		}
	}
	panic("catalog: no column " + name)
}

var (
	codePattern    = regexp.MustCompile(`^[A-Z]{2,10}[0-9]{2,6}[A-Z]?$`)
	sectionPattern = regexp.MustCompile(`^[A-Z0-9]{1,10}$`)
)

// ParseCatalog reads a catalog CSV file (see docs/IMPORT.md): a header row
// naming every column of CatalogHeader in any order, then one section per
// row. A UTF-8 byte order mark is ignored. It checks every row and returns
// every problem found, in file order; sections holds only the rows without
// problems, and a caller must import nothing when errs is not empty.
//
// Course codes and sections are upper-cased (the database compares them
// case-insensitively). meetings may be empty: a course with no fixed
// meeting times, such as an online course.
func ParseCatalog(r io.Reader) (sections []Section, errs []RowError) {
	t := newTable(r, catalogColumns)
	first := map[string]int{} // key -> first row
	for t.next() {
		nerr := len(t.errs)
		s := Section{Row: t.row}
		var ok bool
		keyOK := true
		if s.Code, ok = t.text(catalogCol("code")); ok {
			s.Code = strings.ToUpper(s.Code)
			if !codePattern.MatchString(s.Code) {
				t.fail("code", CodeBadCode, s.Code)
				keyOK = false
			}
		} else {
			keyOK = false
		}
		if s.Section, ok = t.text(catalogCol("section")); ok {
			s.Section = strings.ToUpper(s.Section)
			if !sectionPattern.MatchString(s.Section) {
				t.fail("section", CodeBadSection, s.Section)
				keyOK = false
			}
		} else {
			keyOK = false
		}
		s.Title, _ = t.text(catalogCol("title"))
		s.TitleEN, _ = t.text(catalogCol("title_en"))
		s.Department, _ = t.text(catalogCol("department"))
		s.Professor, _ = t.text(catalogCol("professor"))
		if s.Credits, ok = t.number(catalogCol("credits"), 0, false); ok {
			if s.Credits < MinCredits || s.Credits > MaxCredits {
				t.fail("credits", CodeCreditsOutOfRange, t.raw("credits"), MinCredits, MaxCredits)
			}
		}
		if s.Capacity, ok = t.number(catalogCol("capacity"), 0, false); ok {
			switch {
			case s.Capacity < 0:
				t.fail("capacity", CodeCapacityNegative, t.raw("capacity"))
			case s.Capacity > MaxCapacity:
				t.fail("capacity", CodeCapacityTooLarge, t.raw("capacity"), MaxCapacity)
			}
		}
		if text, ok := t.text(catalogCol("meetings")); ok {
			ms, err := ParseMeetings(text)
			var re RowError
			switch {
			case errors.As(err, &re):
				re.Row = t.row
				t.errs = append(t.errs, re)
			case err != nil:
				t.fail("meetings", CodeBadMeetingFormat, text)
			case utf8.RuneCountInString(FormatMeetings(ms)) > catalogCol("meetings").maxLen:
				n := utf8.RuneCountInString(FormatMeetings(ms))
				t.fail("meetings", CodeFieldTooLong, text, catalogCol("meetings").maxLen, n)
			default:
				s.Meetings = ms
			}
		}
		s.Room, _ = t.text(catalogCol("room"))
		s.Category, _ = t.text(catalogCol("category"))

		// A readable key is checked for duplicates even when the row has
		// other problems, so every problem is reported in one pass.
		if keyOK {
			if row, seen := first[s.Key()]; seen {
				t.fail("section", CodeDuplicateSection, s.Key(), row)
			} else {
				first[s.Key()] = t.row
			}
		}
		if len(t.errs) == nerr {
			sections = append(sections, s)
		}
	}
	return sections, t.errs
}

// CheckSections verifies the invariants ParseCatalog guarantees for sections
// that did not come from ParseCatalog (ImportCatalog calls it before writing):
// code and section patterns, text lengths, credits 1–6, capacity 0–10000,
// valid sorted non-overlapping meetings, and unique (code, section).
func CheckSections(sections []Section) Errors {
	var errs Errors
	first := map[string]int{}
	for i, s := range sections {
		fail := func(col, code, value string, args ...any) {
			errs = append(errs, newError(s.Row, col, code, value, args...))
		}
		if !codePattern.MatchString(s.Code) {
			fail("code", CodeBadCode, s.Code)
		}
		if !sectionPattern.MatchString(s.Section) {
			fail("section", CodeBadSection, s.Section)
		}
		for _, f := range []struct {
			col string
			v   string
		}{{"title", s.Title}, {"title_en", s.TitleEN}, {"department", s.Department}, {"professor", s.Professor}, {"room", s.Room}, {"category", s.Category}} {
			c := catalogCol(f.col)
			v, code := cleanText(f.v)
			switch {
			case code != "":
				fail(f.col, code, f.v)
			case isFormula(f.v, v):
				fail(f.col, CodeFormulaInjection, f.v)
			case v == "" && c.required:
				fail(f.col, CodeRequired, "")
			case utf8.RuneCountInString(v) > c.maxLen:
				fail(f.col, CodeFieldTooLong, v, c.maxLen, utf8.RuneCountInString(v))
			}
		}
		if s.Credits < MinCredits || s.Credits > MaxCredits {
			fail("credits", CodeCreditsOutOfRange, strconv.Itoa(s.Credits), MinCredits, MaxCredits)
		}
		if s.Capacity < 0 {
			fail("capacity", CodeCapacityNegative, strconv.Itoa(s.Capacity))
		} else if s.Capacity > MaxCapacity {
			fail("capacity", CodeCapacityTooLarge, strconv.Itoa(s.Capacity), MaxCapacity)
		}
		if err := checkMeetings(s.Meetings); err != nil {
			var re RowError
			if errors.As(err, &re) {
				re.Row = s.Row
				errs = append(errs, re)
			}
		}
		if j, seen := first[s.Key()]; seen {
			fail("section", CodeDuplicateSection, s.Key(), sections[j].Row)
		} else {
			first[s.Key()] = i
		}
	}
	return errs
}

// checkMeetings verifies that ms is exactly what ParseMeetings would return
// for its own FormatMeetings text.
func checkMeetings(ms []Meeting) error {
	for _, m := range ms {
		switch {
		case m.Day < Mon || m.Day > Sun:
			return newError(0, "meetings", CodeBadDay, m.String())
		case m.Start < 0 || m.End > MinutesPerDay:
			return newError(0, "meetings", CodeTimeOutOfRange, m.String())
		case m.End <= m.Start:
			return newError(0, "meetings", CodeEndBeforeStart, m.String())
		}
	}
	text := FormatMeetings(ms)
	if n := utf8.RuneCountInString(text); n > catalogCol("meetings").maxLen {
		return newError(0, "meetings", CodeFieldTooLong, text, catalogCol("meetings").maxLen, n)
	}
	back, err := ParseMeetings(text)
	if err != nil {
		return err
	}
	if len(back) != len(ms) {
		return newError(0, "meetings", CodeBadMeetingFormat, text)
	}
	for i := range ms {
		if back[i] != ms[i] {
			return newError(0, "meetings", CodeBadMeetingFormat, text) // not sorted
		}
	}
	return nil
}
