package catalog

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/enrollq/enrollq/internal/dbtest"
)

const rosterHeader = "student_no,name,year,department,max_credits\n"

func stuRow(over map[string]string) string {
	vals := map[string]string{"student_no": "202300000", "name": "오유진", "year": "3", "department": "컴퓨터공학과", "max_credits": "21"}
	for k, v := range over {
		vals[k] = v
	}
	rec := make([]string, 0, len(vals))
	for _, c := range RosterHeader() {
		rec = append(rec, vals[c])
	}
	return csvLine(rec)
}

func TestParseRosterFixture(t *testing.T) {
	f, err := os.Open(dbtest.Fixture(t, "students.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	students, errs := ParseRoster(f)
	if len(errs) > 0 {
		t.Fatalf("fixture has %d errors, first: %v", len(errs), errs[0])
	}
	if len(students) != 2000 {
		t.Fatalf("fixture: %d students, want 2000", len(students))
	}
	want := Student{Row: 2, StudentNo: "202300000", Name: "오유진", Year: 3, Department: "컴퓨터공학과", MaxCredits: 21}
	if diff := cmp.Diff(want, students[0]); diff != "" {
		t.Errorf("row 2 (-want +got):\n%s", diff)
	}
	if errs := CheckStudents(students); len(errs) > 0 {
		t.Errorf("parsed fixture fails CheckStudents: %v", errs)
	}
}

func TestParseRosterAccepts(t *testing.T) {
	file := "\ufeffname,STUDENT_NO,department,year,max_credits\r\n" +
		"김하은,20240001,수학과,1,\r\n" +
		" 이지훈 ,  2022000001 ,경제학과,6,30\r\n" +
		"박서연,123456,심리학과,2,1\r\n"
	got, errs := ParseRoster(strings.NewReader(file))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", Errors(errs))
	}
	want := []Student{
		{Row: 2, StudentNo: "20240001", Name: "김하은", Year: 1, Department: "수학과", MaxCredits: DefaultMaxCredits},
		{Row: 3, StudentNo: "2022000001", Name: "이지훈", Year: 6, Department: "경제학과", MaxCredits: 30},
		{Row: 4, StudentNo: "123456", Name: "박서연", Year: 2, Department: "심리학과", MaxCredits: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRosterErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  string // row 3
		want []where
	}{
		{"required student_no", stuRow(map[string]string{"student_no": ""}), []where{{3, "student_no", CodeRequired}}},
		{"required name", stuRow(map[string]string{"student_no": "202300001", "name": ""}), []where{{3, "name", CodeRequired}}},
		{"required year", stuRow(map[string]string{"student_no": "202300001", "year": ""}), []where{{3, "year", CodeRequired}}},
		{"required department", stuRow(map[string]string{"student_no": "202300001", "department": ""}), []where{{3, "department", CodeRequired}}},
		{"student_no too short", stuRow(map[string]string{"student_no": "12345"}), []where{{3, "student_no", CodeBadStudentNo}}},
		{"student_no too long", stuRow(map[string]string{"student_no": strings.Repeat("1", 21)}), []where{{3, "student_no", CodeFieldTooLong}}},
		{"student_no letters", stuRow(map[string]string{"student_no": "2023A0001"}), []where{{3, "student_no", CodeBadStudentNo}}},
		{"student_no with dash", stuRow(map[string]string{"student_no": "2023-00001"}), []where{{3, "student_no", CodeBadStudentNo}}},
		{"student_no negative", stuRow(map[string]string{"student_no": "-202300001"}), []where{{3, "student_no", CodeFormulaInjection}}},
		{"student_no as float from a spreadsheet", stuRow(map[string]string{"student_no": "2.02300001E+08"}), []where{{3, "student_no", CodeBadStudentNo}}},
		{"duplicate student", stuRow(nil), []where{{3, "student_no", CodeDuplicateStudent}}},
		{"duplicate student with other problems", stuRow(map[string]string{"year": "0"}), []where{{3, "year", CodeYearOutOfRange}, {3, "student_no", CodeDuplicateStudent}}},
		{"year zero", stuRow(map[string]string{"student_no": "202300001", "year": "0"}), []where{{3, "year", CodeYearOutOfRange}}},
		{"year seven", stuRow(map[string]string{"student_no": "202300001", "year": "7"}), []where{{3, "year", CodeYearOutOfRange}}},
		{"year with unit", stuRow(map[string]string{"student_no": "202300001", "year": "3학년"}), []where{{3, "year", CodeBadNumber}}},
		{"max_credits zero", stuRow(map[string]string{"student_no": "202300001", "max_credits": "0"}), []where{{3, "max_credits", CodeMaxCreditsOutOfRange}}},
		{"max_credits 31", stuRow(map[string]string{"student_no": "202300001", "max_credits": "31"}), []where{{3, "max_credits", CodeMaxCreditsOutOfRange}}},
		{"max_credits decimal", stuRow(map[string]string{"student_no": "202300001", "max_credits": "18.5"}), []where{{3, "max_credits", CodeBadNumber}}},
		{"name formula", stuRow(map[string]string{"student_no": "202300001", "name": `=cmd|' /C calc'!A0`}), []where{{3, "name", CodeFormulaInjection}}},
		{"department formula", stuRow(map[string]string{"student_no": "202300001", "department": "@dept"}), []where{{3, "department", CodeFormulaInjection}}},
		{"year formula", stuRow(map[string]string{"student_no": "202300001", "year": "=3"}), []where{{3, "year", CodeFormulaInjection}}},
		{"name invalid UTF-8", stuRow(map[string]string{"student_no": "202300001", "name": "\xbf\xc0\xc0\xaf\xc1\xf8"}), []where{{3, "name", CodeInvalidUTF8}}},
		{"name control character", stuRow(map[string]string{"student_no": "202300001", "name": "오\x07유진"}), []where{{3, "name", CodeControlCharacter}}},
		{"name too long", stuRow(map[string]string{"student_no": "202300001", "name": strings.Repeat("가", 101)}), []where{{3, "name", CodeFieldTooLong}}},
		{"department too long", stuRow(map[string]string{"student_no": "202300001", "department": strings.Repeat("가", 101)}), []where{{3, "department", CodeFieldTooLong}}},
		{"wrong field count", "202300001,오유진,3\n", []where{{3, "", CodeWrongFieldCount}}},
		{"bad quote", `202300001,"오유진,3,컴퓨터공학과,18` + "\n", []where{{3, "", CodeBadCSV}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ParseRoster(strings.NewReader(rosterHeader + stuRow(nil) + tc.row))
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

func TestParseRosterHeader(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []where
	}{
		{"empty", "", []where{{1, "", CodeEmptyFile}}},
		{"missing max_credits", "student_no,name,year,department\n", []where{{1, "max_credits", CodeMissingColumn}}},
		{"catalog file given as roster", catalogHeader, []where{{1, "", CodeBadHeader}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := ParseRoster(strings.NewReader(tc.file))
			if diff := cmp.Diff(tc.want, positions(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRosterReportsEveryRow(t *testing.T) {
	file := rosterHeader +
		stuRow(map[string]string{"year": "9"}) + // 2
		stuRow(map[string]string{"student_no": "202300001"}) + // 3 ok
		stuRow(map[string]string{"student_no": "abc", "name": "", "max_credits": "99"}) + // 4
		stuRow(map[string]string{"student_no": "202300001"}) + // 5 duplicate of 3
		stuRow(map[string]string{"student_no": "202300002"}) // 6 ok
	got, errs := ParseRoster(strings.NewReader(file))
	want := []where{
		{2, "year", CodeYearOutOfRange},
		{4, "student_no", CodeBadStudentNo},
		{4, "name", CodeRequired},
		{4, "max_credits", CodeMaxCreditsOutOfRange},
		{5, "student_no", CodeDuplicateStudent},
	}
	if diff := cmp.Diff(want, positions(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(got) != 2 || got[0].Row != 3 || got[1].Row != 6 {
		t.Errorf("parsed %+v, want rows 3 and 6", got)
	}
}

func TestCheckStudents(t *testing.T) {
	ok := Student{StudentNo: "202300000", Name: "오유진", Year: 3, Department: "컴퓨터공학과", MaxCredits: 18}
	for _, tc := range []struct {
		name string
		f    func(*Student)
		code string
	}{
		{"student_no", func(s *Student) { s.StudentNo = "12" }, CodeBadStudentNo},
		{"name", func(s *Student) { s.Name = "" }, CodeRequired},
		{"department formula", func(s *Student) { s.Department = "+x" }, CodeFormulaInjection},
		{"year", func(s *Student) { s.Year = 0 }, CodeYearOutOfRange},
		{"max credits", func(s *Student) { s.MaxCredits = 0 }, CodeMaxCreditsOutOfRange},
	} {
		s := ok
		tc.f(&s)
		if errs := CheckStudents([]Student{s}); len(errs) != 1 || errs[0].Code != tc.code {
			t.Errorf("%s: CheckStudents = %v, want one %s", tc.name, errs, tc.code)
		}
	}
	if errs := CheckStudents([]Student{ok, ok}); len(errs) != 1 || errs[0].Code != CodeDuplicateStudent {
		t.Errorf("duplicate: %v", errs)
	}
}
