package catalog

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/enrollq/enrollq/internal/dbtest"
)

const catalogHeader = "code,section,title,title_en,department,professor,credits,capacity,meetings,room,category\n"

// catRow returns one CSV line of a valid section with some fields replaced.
func catRow(over map[string]string) string {
	vals := map[string]string{
		"code": "CSE4051", "section": "01", "title": "컴파일러", "title_en": "Compilers",
		"department": "컴퓨터공학과", "professor": "권유진", "credits": "3", "capacity": "60",
		"meetings": "MON 18:00-19:15;WED 18:00-19:15", "room": "학생회관 613", "category": "전공선택",
	}
	for k, v := range over {
		vals[k] = v
	}
	rec := make([]string, 0, len(vals))
	for _, c := range CatalogHeader() {
		rec = append(rec, vals[c])
	}
	return csvLine(rec)
}

// hourly returns n one-minute Monday meetings written tersely: "mon 1:00-1:01;mon 2:00-2:01;...".
func hourly(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("mon %d:00-%d:01", i+1, i+1)
	}
	return strings.Join(parts, ";")
}

func csvLine(rec []string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(rec)
	w.Flush()
	return b.String()
}

// where is the position and code of one expected error.
type where struct {
	Row    int
	Column string
	Code   string
}

func positions(errs []RowError) []where {
	out := make([]where, len(errs))
	for i, e := range errs {
		out[i] = where{e.Row, e.Column, e.Code}
	}
	return out
}

func TestParseCatalogFixture(t *testing.T) {
	f, err := os.Open(dbtest.Fixture(t, "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections, errs := ParseCatalog(f)
	if len(errs) > 0 {
		t.Fatalf("fixture has %d errors, first: %v", len(errs), errs[0])
	}
	if len(sections) != 2400 {
		t.Fatalf("fixture: %d sections, want 2400", len(sections))
	}
	for i, s := range sections {
		if s.Row != i+2 {
			t.Fatalf("section %d has row %d, want %d", i, s.Row, i+2)
		}
	}
	if errs := CheckSections(sections); len(errs) > 0 {
		t.Fatalf("parsed fixture fails CheckSections: %v", errs)
	}
	want := Section{
		Row: 5, Code: "CSE4051", Section: "01", Title: "컴파일러", TitleEN: "Compilers",
		Department: "컴퓨터공학과", Professor: "권유진", Credits: 3, Capacity: 60,
		Meetings: []Meeting{{Mon, 18 * 60, 19*60 + 15}, {Wed, 18 * 60, 19*60 + 15}},
		Room:     "학생회관 613", Category: "전공선택",
	}
	if diff := cmp.Diff(want, sections[3]); diff != "" {
		t.Errorf("row 5 (-want +got):\n%s", diff)
	}
}

func TestParseCatalogAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		want []Section
	}{
		{
			name: "header only",
			file: catalogHeader,
		},
		{
			name: "BOM, CRLF, columns in another order and upper-case header",
			file: "\ufeffSECTION, Code ,title,title_en,department,professor,credits,capacity,meetings,room,category\r\n" +
				"02,cse4051,컴파일러,,컴퓨터공학과,,3,0,,,\r\n",
			want: []Section{{Row: 2, Code: "CSE4051", Section: "02", Title: "컴파일러", Department: "컴퓨터공학과", Credits: 3}},
		},
		{
			name: "spaces trimmed, online course, limits",
			file: catalogHeader + catRow(map[string]string{"code": " mat1001 ", "title": "  미적분학 ", "credits": "6", "capacity": "10000", "meetings": " "}) +
				catRow(map[string]string{"code": "MAT1001", "section": "2", "credits": "1", "capacity": "+5", "meetings": "tue 9:00-10:15;mon 9:00-10:15"}),
			want: []Section{
				{Row: 2, Code: "MAT1001", Section: "01", Title: "미적분학", TitleEN: "Compilers", Department: "컴퓨터공학과", Professor: "권유진", Credits: 6, Capacity: 10000, Room: "학생회관 613", Category: "전공선택"},
				{Row: 3, Code: "MAT1001", Section: "2", Title: "컴파일러", TitleEN: "Compilers", Department: "컴퓨터공학과", Professor: "권유진", Credits: 1, Capacity: 5,
					Meetings: []Meeting{{Mon, 540, 615}, {Tue, 540, 615}}, Room: "학생회관 613", Category: "전공선택"},
			},
		},
		{
			name: "blank lines and all-empty rows are skipped, rows still counted like a spreadsheet",
			file: catalogHeader + "\n" + ",,,,,,,,,,\n" + catRow(map[string]string{"section": "09"}),
			want: []Section{{Row: 4, Code: "CSE4051", Section: "09", Title: "컴파일러", TitleEN: "Compilers", Department: "컴퓨터공학과", Professor: "권유진", Credits: 3, Capacity: 60,
				Meetings: []Meeting{{Mon, 1080, 1155}, {Wed, 1080, 1155}}, Room: "학생회관 613", Category: "전공선택"}},
		},
		{
			name: "quoted commas are data",
			file: catalogHeader + catRow(map[string]string{"title_en": "Compilers, Part 1", "meetings": ""}),
			want: []Section{{Row: 2, Code: "CSE4051", Section: "01", Title: "컴파일러", TitleEN: "Compilers, Part 1", Department: "컴퓨터공학과", Professor: "권유진", Credits: 3, Capacity: 60,
				Room: "학생회관 613", Category: "전공선택"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ParseCatalog(strings.NewReader(tc.file))
			if len(errs) > 0 {
				t.Fatalf("errors: %v", Errors(errs))
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseCatalogErrors has one case per problem. Each file holds a valid
// row 2 (MAT1001/01) and the bad row 3; the valid row must still parse and
// exactly the listed errors must be reported.
func TestParseCatalogErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("가", n) }
	for _, tc := range []struct {
		name string
		row  string // row 3
		want []where
	}{
		{"required code", catRow(map[string]string{"code": ""}), []where{{3, "code", CodeRequired}}},
		{"required section", catRow(map[string]string{"section": " "}), []where{{3, "section", CodeRequired}}},
		{"required title", catRow(map[string]string{"title": ""}), []where{{3, "title", CodeRequired}}},
		{"required department", catRow(map[string]string{"department": ""}), []where{{3, "department", CodeRequired}}},
		{"required credits", catRow(map[string]string{"credits": ""}), []where{{3, "credits", CodeRequired}}},
		{"required capacity", catRow(map[string]string{"capacity": ""}), []where{{3, "capacity", CodeRequired}}},
		{"bad code with dash", catRow(map[string]string{"code": "CSE-4051"}), []where{{3, "code", CodeBadCode}}},
		{"bad code digits first", catRow(map[string]string{"code": "4051CSE"}), []where{{3, "code", CodeBadCode}}},
		{"bad code one letter", catRow(map[string]string{"code": "C4051"}), []where{{3, "code", CodeBadCode}}},
		{"bad code hangul", catRow(map[string]string{"code": "컴공4051"}), []where{{3, "code", CodeBadCode}}},
		{"bad section space", catRow(map[string]string{"section": "0 1"}), []where{{3, "section", CodeBadSection}}},
		{"bad section hangul", catRow(map[string]string{"section": "가"}), []where{{3, "section", CodeBadSection}}},
		{"credits zero", catRow(map[string]string{"credits": "0"}), []where{{3, "credits", CodeCreditsOutOfRange}}},
		{"credits seven", catRow(map[string]string{"credits": "7"}), []where{{3, "credits", CodeCreditsOutOfRange}}},
		{"credits negative", catRow(map[string]string{"credits": "-3"}), []where{{3, "credits", CodeCreditsOutOfRange}}},
		{"credits decimal", catRow(map[string]string{"credits": "3.0"}), []where{{3, "credits", CodeBadNumber}}},
		{"credits word", catRow(map[string]string{"credits": "three"}), []where{{3, "credits", CodeBadNumber}}},
		{"credits full-width digit", catRow(map[string]string{"credits": "３"}), []where{{3, "credits", CodeBadNumber}}},
		{"credits double sign", catRow(map[string]string{"credits": "--3"}), []where{{3, "credits", CodeFormulaInjection}}},
		{"capacity negative", catRow(map[string]string{"capacity": "-1"}), []where{{3, "capacity", CodeCapacityNegative}}},
		{"capacity too large", catRow(map[string]string{"capacity": "10001"}), []where{{3, "capacity", CodeCapacityTooLarge}}},
		{"capacity overflows int", catRow(map[string]string{"capacity": "99999999999999999999999"}), []where{{3, "capacity", CodeCapacityTooLarge}}},
		{"capacity exponent", catRow(map[string]string{"capacity": "1e3"}), []where{{3, "capacity", CodeBadNumber}}},
		{"capacity thousands separator", catRow(map[string]string{"capacity": "1,000"}), []where{{3, "capacity", CodeBadNumber}}},
		{"code too long", catRow(map[string]string{"code": "ABCDEFGHIJ1234567890X"}), []where{{3, "code", CodeFieldTooLong}}},
		{"section too long", catRow(map[string]string{"section": "01234567890"}), []where{{3, "section", CodeFieldTooLong}}},
		{"title too long", catRow(map[string]string{"title": long(201)}), []where{{3, "title", CodeFieldTooLong}}},
		{"title_en too long", catRow(map[string]string{"title_en": strings.Repeat("x", 201)}), []where{{3, "title_en", CodeFieldTooLong}}},
		{"department too long", catRow(map[string]string{"department": long(101)}), []where{{3, "department", CodeFieldTooLong}}},
		{"professor too long", catRow(map[string]string{"professor": long(101)}), []where{{3, "professor", CodeFieldTooLong}}},
		{"room too long", catRow(map[string]string{"room": long(101)}), []where{{3, "room", CodeFieldTooLong}}},
		{"category too long", catRow(map[string]string{"category": long(51)}), []where{{3, "category", CodeFieldTooLong}}},
		{"meetings too long", catRow(map[string]string{"meetings": strings.Repeat("MON 09:00-09:01;", 12) + "MON 10:00-10:01 "}), []where{{3, "meetings", CodeFieldTooLong}}},
		// 13 entries: 189 characters as typed, 207 once written "MON 01:00-01:01".
		{"meetings too long once normalised", catRow(map[string]string{"meetings": hourly(13)}), []where{{3, "meetings", CodeFieldTooLong}}},
		{"title invalid UTF-8 (EUC-KR)", catRow(map[string]string{"title": "\xc4\xc4\xc6\xc4\xc0\xcf\xb7\xaf"}), []where{{3, "title", CodeInvalidUTF8}}},
		{"title NUL", catRow(map[string]string{"title": "컴파\x00일러"}), []where{{3, "title", CodeControlCharacter}}},
		{"title line break", catRow(map[string]string{"title": "컴파\n일러"}), []where{{3, "title", CodeControlCharacter}}},
		{"title starts with =", catRow(map[string]string{"title": `=HYPERLINK("http://x","y")`}), []where{{3, "title", CodeFormulaInjection}}},
		{"title starts with space then =", catRow(map[string]string{"title": ` =1+1`}), []where{{3, "title", CodeFormulaInjection}}},
		{"professor starts with +", catRow(map[string]string{"professor": "+82 10"}), []where{{3, "professor", CodeFormulaInjection}}},
		{"room starts with @", catRow(map[string]string{"room": "@SUM(A1)"}), []where{{3, "room", CodeFormulaInjection}}},
		{"category starts with -", catRow(map[string]string{"category": "-2+3"}), []where{{3, "category", CodeFormulaInjection}}},
		{"title_en starts with tab", catRow(map[string]string{"title_en": "\tCompilers"}), []where{{3, "title_en", CodeFormulaInjection}}},
		{"title_en starts with CR", catRow(map[string]string{"title_en": "\rCompilers"}), []where{{3, "title_en", CodeFormulaInjection}}},
		{"credits formula", catRow(map[string]string{"credits": "=1+2"}), []where{{3, "credits", CodeFormulaInjection}}},
		{"capacity formula", catRow(map[string]string{"capacity": "@A1"}), []where{{3, "capacity", CodeFormulaInjection}}},
		{"meetings formula", catRow(map[string]string{"meetings": "=MON 09:00-10:00"}), []where{{3, "meetings", CodeFormulaInjection}}},
		{"code formula", catRow(map[string]string{"code": "=CSE4051"}), []where{{3, "code", CodeFormulaInjection}}},
		{"meetings bad format", catRow(map[string]string{"meetings": "MON"}), []where{{3, "meetings", CodeBadMeetingFormat}}},
		{"meetings bad day", catRow(map[string]string{"meetings": "MOM 09:00-10:00"}), []where{{3, "meetings", CodeBadDay}}},
		{"meetings bad time", catRow(map[string]string{"meetings": "MON 9-10"}), []where{{3, "meetings", CodeBadTimeFormat}}},
		{"meetings time out of range", catRow(map[string]string{"meetings": "MON 23:00-24:30"}), []where{{3, "meetings", CodeTimeOutOfRange}}},
		{"meetings end before start", catRow(map[string]string{"meetings": "MON 10:00-09:00"}), []where{{3, "meetings", CodeEndBeforeStart}}},
		{"meetings overlap", catRow(map[string]string{"meetings": "MON 09:00-10:30;MON 10:00-11:00"}), []where{{3, "meetings", CodeMeetingsOverlap}}},
		{"duplicate section", catRow(map[string]string{"code": "MAT1001"}), []where{{3, "section", CodeDuplicateSection}}},
		{"duplicate section in other case", catRow(map[string]string{"code": "mat1001"}), []where{{3, "section", CodeDuplicateSection}}},
		{"duplicate section with other problems", catRow(map[string]string{"code": "MAT1001", "credits": "0"}),
			[]where{{3, "credits", CodeCreditsOutOfRange}, {3, "section", CodeDuplicateSection}}},
		{"too few fields", "CSE4051,02,컴파일러\n", []where{{3, "", CodeWrongFieldCount}}},
		{"too many fields", strings.TrimSuffix(catRow(map[string]string{"section": "02"}), "\n") + ",extra\n", []where{{3, "", CodeWrongFieldCount}}},
		{"bare quote", `CSE4051,02,컴"파일러,Compilers,컴퓨터공학과,권유진,3,60,,,` + "\n", []where{{3, "", CodeBadCSV}}},
		{"unterminated quote", `CSE4051,02,"컴파일러,Compilers,컴퓨터공학과,권유진,3,60,,,` + "\n", []where{{3, "", CodeBadCSV}}},
		{"several problems in one row", catRow(map[string]string{"section": "", "credits": "9", "capacity": "-5", "meetings": "XYZ 1"}),
			[]where{{3, "section", CodeRequired}, {3, "credits", CodeCreditsOutOfRange}, {3, "capacity", CodeCapacityNegative}, {3, "meetings", CodeBadDay}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := catalogHeader + catRow(map[string]string{"code": "MAT1001"}) + tc.row
			got, errs := ParseCatalog(strings.NewReader(file))
			if diff := cmp.Diff(tc.want, positions(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nall: %v", diff, Errors(errs))
			}
			if len(got) != 1 || got[0].Row != 2 {
				t.Errorf("want the valid row 2 parsed, got %+v", got)
			}
			checkErrorText(t, errs)
		})
	}
}

// checkErrorText checks that every error carries both messages and a known code.
func checkErrorText(t *testing.T, errs []RowError) {
	t.Helper()
	for _, e := range errs {
		if _, ok := messages[e.Code]; !ok {
			t.Errorf("unknown code %q", e.Code)
		}
		if e.Message == "" || e.MessageEN == "" || strings.Contains(e.Message+e.MessageEN, "%!") {
			t.Errorf("bad messages in %+v", e)
		}
		if e.Row < 1 {
			t.Errorf("row %d < 1 in %+v", e.Row, e)
		}
	}
}

// TestParseCatalogBadHeaderNamesExpected: a first row that is not the
// header gives one error naming the expected header.
func TestParseCatalogBadHeaderNamesExpected(t *testing.T) {
	_, errs := ParseCatalog(strings.NewReader("과목코드,분반,과목명\n" + catRow(nil)))
	if len(errs) != 1 || errs[0].Code != CodeBadHeader {
		t.Fatalf("errors: %v, want one %s", Errors(errs), CodeBadHeader)
	}
	want := strings.Join(CatalogHeader(), ",")
	if !strings.Contains(errs[0].Message, want) || !strings.Contains(errs[0].MessageEN, want) {
		t.Errorf("message does not name the header %q: %q / %q", want, errs[0].Message, errs[0].MessageEN)
	}
}

func TestParseCatalogHeader(t *testing.T) {
	full := strings.TrimSuffix(catalogHeader, "\n")
	for _, tc := range []struct {
		name, file string
		want       []where
	}{
		{"empty file", "", []where{{1, "", CodeEmptyFile}}},
		{"only a BOM", "\ufeff", []where{{1, "", CodeEmptyFile}}},
		{"blank header", ",,,\n" + catRow(nil), []where{{1, "", CodeEmptyFile}}},
		{"missing column", strings.TrimSuffix(full, ",category") + "\n", []where{{1, "category", CodeMissingColumn}}},
		{"missing two columns", "code,section,title,title_en,department,professor,credits,capacity,meetings\n",
			[]where{{1, "room", CodeMissingColumn}, {1, "category", CodeMissingColumn}}},
		{"unknown column", full + ",teacher\n" + strings.TrimSuffix(catRow(nil), "\n") + ",x\n", []where{{1, "teacher", CodeUnknownColumn}}},
		{"empty extra column", full + ",\n", []where{{1, "", CodeUnknownColumn}}},
		{"duplicate column", full + ",title\n", []where{{1, "title", CodeDuplicateColumn}}},
		{"header invalid UTF-8", full + ",\xff\n", []where{{1, "", CodeInvalidUTF8}}},
		{"header bad quote", `code,"section` + "\n", []where{{1, "", CodeBadCSV}}},
		{"data file without header", catRow(nil), []where{{1, "", CodeBadHeader}}},
		{"Korean header", "과목코드,분반,과목명,영문명,학과,교수,학점,정원,시간,강의실,이수구분\n" + catRow(nil), []where{{1, "", CodeBadHeader}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ParseCatalog(strings.NewReader(tc.file))
			if diff := cmp.Diff(tc.want, positions(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nall: %v", diff, Errors(errs))
			}
			if len(got) != 0 {
				t.Errorf("rows parsed despite a bad header: %v", got)
			}
			checkErrorText(t, errs)
		})
	}
}

// TestParseCatalogReportsEveryRow: problems on many rows, all reported in
// file order with spreadsheet row numbers, and the clean rows still parsed.
func TestParseCatalogReportsEveryRow(t *testing.T) {
	file := catalogHeader +
		catRow(map[string]string{"credits": "0"}) + // row 2
		catRow(map[string]string{"section": "02"}) + // row 3 ok
		catRow(map[string]string{"section": "03", "title": "여러\n줄", "capacity": "x"}) + // row 4 (two lines)
		"\n" + // row 5 blank
		catRow(map[string]string{"section": "02", "meetings": "MON 10:00-09:00"}) + // row 6: bad meetings, and a duplicate of row 3
		catRow(map[string]string{"section": "06"}) + // row 7 ok
		"A,B\n" + // row 8
		catRow(map[string]string{"section": "01"}) // row 9: duplicate of row 2 (which had an error)
	got, errs := ParseCatalog(strings.NewReader(file))
	want := []where{
		{2, "credits", CodeCreditsOutOfRange},
		{4, "title", CodeControlCharacter},
		{4, "capacity", CodeBadNumber},
		{6, "meetings", CodeEndBeforeStart},
		{6, "section", CodeDuplicateSection},
		{8, "", CodeWrongFieldCount},
		{9, "section", CodeDuplicateSection},
	}
	if diff := cmp.Diff(want, positions(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nall: %v", diff, Errors(errs))
	}
	var rows []int
	for _, s := range got {
		rows = append(rows, s.Row)
	}
	if diff := cmp.Diff([]int{3, 7}, rows); diff != "" {
		t.Errorf("parsed rows (-want +got):\n%s", diff)
	}
	if errs[6].Message != "같은 과목코드·분반이 2행에 이미 있습니다" || errs[6].MessageEN != "the same code and section already appear on row 2" {
		t.Errorf("duplicate message = %q / %q", errs[6].Message, errs[6].MessageEN)
	}
	if diff := cmp.Diff([]int{2, 4, 6, 8, 9}, Errors(errs).Rows()); diff != "" {
		t.Errorf("Rows() (-want +got):\n%s", diff)
	}
}

func TestRowErrorText(t *testing.T) {
	e := newError(7, "credits", CodeCreditsOutOfRange, "9", MinCredits, MaxCredits)
	want := `row 7, column credits: [credits_out_of_range] 학점은 1–6 사이여야 합니다 / credits must be between 1 and 6 (value "9")`
	if e.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", e.Error(), want)
	}
	e2 := newError(3, "", CodeWrongFieldCount, "", 11, 3)
	errs := Errors{e, e2}
	text := errs.Error()
	for _, line := range []string{"2 invalid value(s):", want, "row 3: [wrong_field_count] 열 개수가 헤더와 다릅니다(헤더 11개, 이 행 3개) / wrong number of fields (header has 11, this row has 3)"} {
		if !strings.Contains(text, line) {
			t.Errorf("Errors text lacks %q:\n%s", line, text)
		}
	}
	if got := newError(2, "title", CodeFieldTooLong, strings.Repeat("가", 300), 200, 300).Value; len([]rune(got)) != 81 {
		t.Errorf("long value not shortened: %d runes", len([]rune(got)))
	}
}

// TestEveryCodeDocumented: each code has both messages and appears in
// docs/IMPORT.md.
func TestEveryCodeDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/IMPORT.md")
	if err != nil {
		t.Fatal(err)
	}
	for code, m := range messages {
		if m.ko == "" || m.en == "" {
			t.Errorf("%s: missing a message", code)
		}
		if !bytes.Contains(doc, []byte("`"+code+"`")) {
			t.Errorf("docs/IMPORT.md does not document `%s`", code)
		}
	}
}

func TestCheckSections(t *testing.T) {
	ok := Section{Code: "CSE4051", Section: "01", Title: "컴파일러", Department: "컴퓨터공학과", Credits: 3, Capacity: 60,
		Meetings: []Meeting{{Mon, 540, 615}, {Wed, 540, 615}}}
	with := func(f func(*Section)) Section {
		s := ok
		s.Row = 2
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		s    Section
		code string
	}{
		{"lower-case code", with(func(s *Section) { s.Code = "cse4051" }), CodeBadCode},
		{"empty section", with(func(s *Section) { s.Section = "" }), CodeBadSection},
		{"empty title", with(func(s *Section) { s.Title = "" }), CodeRequired},
		{"formula", with(func(s *Section) { s.Professor = "=1" }), CodeFormulaInjection},
		{"too long", with(func(s *Section) { s.Category = strings.Repeat("x", 51) }), CodeFieldTooLong},
		{"bad UTF-8", with(func(s *Section) { s.Room = "\xff" }), CodeInvalidUTF8},
		{"credits", with(func(s *Section) { s.Credits = 0 }), CodeCreditsOutOfRange},
		{"capacity negative", with(func(s *Section) { s.Capacity = -1 }), CodeCapacityNegative},
		{"capacity too large", with(func(s *Section) { s.Capacity = 10001 }), CodeCapacityTooLarge},
		{"bad day", with(func(s *Section) { s.Meetings = []Meeting{{7, 0, 10}} }), CodeBadDay},
		{"end before start", with(func(s *Section) { s.Meetings = []Meeting{{Mon, 10, 10}} }), CodeEndBeforeStart},
		{"past midnight", with(func(s *Section) { s.Meetings = []Meeting{{Mon, 10, 1441}} }), CodeTimeOutOfRange},
		{"unsorted", with(func(s *Section) { s.Meetings = []Meeting{{Wed, 540, 615}, {Mon, 540, 615}} }), CodeBadMeetingFormat},
		{"overlap", with(func(s *Section) { s.Meetings = []Meeting{{Mon, 540, 615}, {Mon, 600, 700}} }), CodeMeetingsOverlap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckSections([]Section{tc.s})
			if len(errs) != 1 || errs[0].Code != tc.code || errs[0].Row != 2 {
				t.Errorf("CheckSections = %v, want one %s on row 2", errs, tc.code)
			}
		})
	}
	if errs := CheckSections([]Section{ok}); len(errs) != 0 {
		t.Errorf("valid section refused: %v", errs)
	}
	dup := ok
	dup.Row = 9
	if errs := CheckSections([]Section{ok, dup}); len(errs) != 1 || errs[0].Code != CodeDuplicateSection || errs[0].Row != 9 {
		t.Errorf("duplicate: %v", errs)
	}
}
