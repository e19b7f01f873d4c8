package catalog

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// fixtureLines returns the fixture catalog's lines (header first).
func fixtureLines(f *testing.F) []string {
	data, err := os.ReadFile(dbtest.Fixture(f, "catalog.csv"))
	if err != nil {
		f.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func FuzzParseMeetings(f *testing.F) {
	seen := map[string]bool{}
	for _, line := range fixtureLines(f)[1:] {
		fields := strings.Split(line, ",")
		if m := fields[8]; !seen[m] {
			seen[m] = true
			f.Add(m)
		}
	}
	for _, s := range []string{"", "MON 09:00-10:00;MON 10:00-11:00", "sun 0:00-24:00", "MON 09:00-10:30;MON 10:00-11:00",
		"MON 10:00-09:00", "MOM 09:00-10:00", "MON 24:00-24:01", "MON 9~10", "TUE 09:00 - 10:15 ; thu 9:00~10:15", ";", "MON 09:00-10:00;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMeetings(s)
		if err != nil {
			var re RowError
			if !errors.As(err, &re) {
				t.Fatalf("ParseMeetings(%q): error %v is not a RowError", s, err)
			}
			if _, ok := messages[re.Code]; !ok || re.Column != "meetings" {
				t.Fatalf("ParseMeetings(%q): bad error %+v", s, re)
			}
			if ms != nil {
				t.Fatalf("ParseMeetings(%q): meetings with an error", s)
			}
			return
		}
		if err := checkMeetings(ms); err != nil {
			t.Fatalf("ParseMeetings(%q) = %v violates invariants: %v", s, ms, err)
		}
		for i, m := range ms {
			if !m.Valid() {
				t.Fatalf("ParseMeetings(%q): invalid meeting %+v", s, m)
			}
			for _, o := range ms[i+1:] {
				if Overlaps(m, o) {
					t.Fatalf("ParseMeetings(%q): %v overlaps %v", s, m, o)
				}
			}
			back, err := ParseMeetings(m.String())
			if err != nil || len(back) != 1 || back[0] != m {
				t.Fatalf("%v does not round-trip through %q: %v, %v", m, m.String(), back, err)
			}
		}
		text := FormatMeetings(ms)
		back, err := ParseMeetings(text)
		if err != nil || FormatMeetings(back) != text || len(back) != len(ms) {
			t.Fatalf("ParseMeetings(%q): %q does not round-trip: %v, %v", s, text, back, err)
		}
	})
}

func FuzzParseCatalog(f *testing.F) {
	lines := fixtureLines(f)
	header := lines[0] + "\n"
	f.Add([]byte(strings.Join(lines[:20], "\n") + "\n"))
	for _, l := range lines[1:40] {
		f.Add([]byte(header + l + "\n"))
	}
	for _, s := range []string{
		"",
		"\ufeff" + header + lines[1] + "\r\n",
		header + lines[1] + "\n" + lines[1] + "\n",
		header + `CSE4051,"01",컴파일러,"a,b",컴퓨터공학과,,3,60,,,` + "\n",
		header + `CSE4051,01,"x` + "\n",
		header + "CSE4051,01,=1+1,,컴퓨터공학과,,3,60,,,\n",
		header + "CSE4051,01,\xff,,컴퓨터공학과,,-3,99999999999,MON 9:00-8:00,,\n",
		"section,code,title,title_en,department,professor,credits,capacity,meetings,room,category\n01,cse1,가,,나,,1,0,,,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sections, errs := ParseCatalog(bytes.NewReader(data))
		bad := map[int]bool{}
		for _, e := range errs {
			if _, ok := messages[e.Code]; !ok {
				t.Fatalf("unknown code in %+v", e)
			}
			if e.Row < 1 || e.Message == "" || e.MessageEN == "" || !utf8.ValidString(e.Value) || !utf8.ValidString(e.Error()) {
				t.Fatalf("malformed error %+v", e)
			}
			bad[e.Row] = true
		}
		// Everything accepted satisfies the importer's invariants, so
		// ImportCatalog would take it as is.
		if cerrs := CheckSections(sections); len(cerrs) > 0 {
			t.Fatalf("accepted sections fail CheckSections: %v", cerrs)
		}
		last := 1
		for _, s := range sections {
			if s.Row <= last {
				t.Fatalf("rows out of order: %d after %d", s.Row, last)
			}
			last = s.Row
			if bad[s.Row] {
				t.Fatalf("row %d both accepted and reported: %v", s.Row, Errors(errs))
			}
			if s.Code != strings.ToUpper(s.Code) || s.Section != strings.ToUpper(s.Section) {
				t.Fatalf("key not upper-case: %s", s.Key())
			}
			ms, err := ParseMeetings(s.MeetingsText())
			if err != nil || FormatMeetings(ms) != s.MeetingsText() {
				t.Fatalf("meetings of row %d do not round-trip: %q", s.Row, s.MeetingsText())
			}
		}
	})
}
