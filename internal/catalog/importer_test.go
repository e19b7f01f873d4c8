package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/dbtest"
)

// testHash is a cheap bcrypt hash of the default initial password.
var testHash = func() string {
	h, err := auth.HashPassword("enrollq-2026", 4)
	if err != nil {
		panic(err)
	}
	return h
}()

func fixtureSections(t testing.TB) []Section {
	t.Helper()
	f, err := os.Open(dbtest.Fixture(t, "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, errs := ParseCatalog(f)
	if len(errs) > 0 {
		t.Fatalf("fixture: %v", Errors(errs))
	}
	return s
}

func fixtureStudents(t testing.TB) []Student {
	t.Helper()
	f, err := os.Open(dbtest.Fixture(t, "students.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, errs := ParseRoster(f)
	if len(errs) > 0 {
		t.Fatalf("fixture: %v", Errors(errs))
	}
	return s
}

func generated(t testing.TB, n int) []Section {
	t.Helper()
	var b bytes.Buffer
	if err := GenerateCatalog(&b, n, 1); err != nil {
		t.Fatal(err)
	}
	s, errs := ParseCatalog(&b)
	if len(errs) > 0 {
		t.Fatalf("generated: %v", Errors(errs))
	}
	return s
}

// snapshot is the full content of the tables an import writes: counts plus
// CHECKSUM TABLE over every column (ids, enrolled, updated_at included).
func snapshot(t testing.TB, db *sqlx.DB) string {
	t.Helper()
	var rows []struct {
		Table    string `db:"Table"`
		Checksum *int64 `db:"Checksum"`
	}
	if err := db.Select(&rows, "CHECKSUM TABLE courses, course_meetings, students"); err != nil {
		t.Fatal(err)
	}
	var out string
	for _, r := range rows {
		var n int
		if err := db.Get(&n, "SELECT COUNT(*) FROM "+r.Table); err != nil {
			t.Fatal(err)
		}
		sum := int64(-1)
		if r.Checksum != nil {
			sum = *r.Checksum
		}
		out += fmt.Sprintf("%s: %d rows, checksum %d\n", r.Table, n, sum)
	}
	return out
}

func count(t testing.TB, db *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func mustImportCatalog(t testing.TB, db *sqlx.DB, s []Section) ImportResult {
	t.Helper()
	res, err := ImportCatalog(context.Background(), db, s, nil)
	if err != nil {
		t.Fatalf("ImportCatalog: %v", err)
	}
	return res
}

func totalMeetings(s []Section) int {
	n := 0
	for _, x := range s {
		n += len(x.Meetings)
	}
	return n
}

type dbMeeting struct {
	Day   int `db:"day"`
	Start int `db:"start_min"`
	End   int `db:"end_min"`
}

func meetingsOf(t testing.TB, db *sqlx.DB, code, section string) []dbMeeting {
	t.Helper()
	var ms []dbMeeting
	const q = `SELECT m.day, m.start_min, m.end_min FROM course_meetings m JOIN courses c ON c.id = m.course_id
		WHERE c.code = ? AND c.section = ? ORDER BY m.day, m.start_min`
	if err := db.Select(&ms, q, code, section); err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestImportFixture(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	sections := fixtureSections(t)
	var calls []int
	res, err := ImportCatalog(ctx, db.DB, sections, func(done, total int) {
		if total != len(sections) {
			t.Errorf("progress total %d, want %d", total, len(sections))
		}
		calls = append(calls, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ImportResult{Total: 2400, Inserted: 2400, Meetings: totalMeetings(sections)}
	res.Duration = 0
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{500, 1000, 1500, 2000, 2400}, calls); diff != "" {
		t.Errorf("progress calls (-want +got):\n%s", diff)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM courses"); n != 2400 {
		t.Errorf("courses: %d rows, want 2400", n)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM course_meetings"); n != want.Meetings {
		t.Errorf("course_meetings: %d rows, want %d", n, want.Meetings)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM courses WHERE enrolled <> 0 OR is_open <> 1 OR deleted_at IS NOT NULL"); n != 0 {
		t.Errorf("%d courses with unexpected enrolled/is_open/deleted_at", n)
	}

	var got courseRow
	const q = `SELECT id, code, section, title, title_en, department, professor, credits, capacity, enrolled,
		meetings, room, category, deleted_at IS NOT NULL AS deleted FROM courses WHERE code = ? AND section = ?`
	if err := db.Get(&got, q, "CSE4051", "01"); err != nil {
		t.Fatal(err)
	}
	got.ID = 0
	wantRow := courseRow{Code: "CSE4051", Section: "01", Title: "컴파일러", TitleEN: "Compilers", Department: "컴퓨터공학과",
		Professor: "권유진", Credits: 3, Capacity: 60, Meetings: "MON 18:00-19:15;WED 18:00-19:15", Room: "학생회관 613", Category: "전공선택"}
	if diff := cmp.Diff(wantRow, got); diff != "" {
		t.Errorf("CSE4051/01 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]dbMeeting{{0, 1080, 1155}, {2, 1080, 1155}}, meetingsOf(t, db.DB, "CSE4051", "01")); diff != "" {
		t.Errorf("CSE4051/01 meetings (-want +got):\n%s", diff)
	}
	// Every section's text and rows agree.
	if n := count(t, db.DB, `SELECT COUNT(*) FROM courses c WHERE c.meetings <> '' AND
		(LENGTH(c.meetings) - LENGTH(REPLACE(c.meetings, ';', '')) + 1) <> (SELECT COUNT(*) FROM course_meetings m WHERE m.course_id = c.id)`); n != 0 {
		t.Errorf("%d courses whose meetings text and rows disagree", n)
	}

	students := fixtureStudents(t)
	sres, err := ImportStudents(ctx, db.DB, students, testHash, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sres.Inserted != 2000 || sres.Total != 2000 {
		t.Errorf("students result %+v", sres)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM students WHERE password_hash = ?", testHash); n != 2000 {
		t.Errorf("%d students with the initial hash, want 2000", n)
	}
	var hash string
	if err := db.Get(&hash, "SELECT password_hash FROM students WHERE student_no = '202300000'"); err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(hash, "enrollq-2026") {
		t.Error("initial password does not log in")
	}

	// The same files again write nothing.
	before := snapshot(t, db.DB)
	res = mustImportCatalog(t, db.DB, sections)
	if res.Unchanged != 2400 || res.Inserted+res.Updated != 0 {
		t.Errorf("re-import: %+v", res)
	}
	sres, err = ImportStudents(ctx, db.DB, students, testHash, nil)
	if err != nil || sres.Unchanged != 2000 {
		t.Errorf("re-import students: %+v, %v", sres, err)
	}
	if after := snapshot(t, db.DB); after != before {
		t.Errorf("identical re-import changed the tables:\n%s\n%s", before, after)
	}
}

func TestReimportUpdatesInPlace(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	sections := fixtureSections(t)
	mustImportCatalog(t, db.DB, sections)

	var id uint64
	if err := db.Get(&id, "SELECT id FROM courses WHERE code = 'CSE4051' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE courses SET enrolled = 7, is_open = 0 WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE courses SET deleted_at = NOW(6) WHERE code = 'EE2001' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	untouched := snapshotExcept(t, db.DB, id)

	changed := append([]Section(nil), sections...)
	changed[3].Capacity = 7 // == enrolled is allowed
	changed[3].Title = "컴파일러 설계"
	changed[3].Meetings = []Meeting{{Fri, 540, 710}}
	// Only part of the catalog, plus one new section: the rest stays.
	subset := append(changed[:100:100], Section{Row: 999, Code: "CSE9999", Section: "01", Title: "캡스톤디자인", Department: "컴퓨터공학과", Credits: 3, Capacity: 30})
	res := mustImportCatalog(t, db.DB, subset)
	res.Duration = 0
	// EE2001/01 (row 3) was deleted and is revived; CSE4051/01 changed.
	want := ImportResult{Total: 101, Inserted: 1, Updated: 2, Unchanged: 98, Meetings: 1 + len(sections[1].Meetings)}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}

	var got courseRow
	if err := db.Get(&got, `SELECT id, title, capacity, enrolled, meetings, deleted_at IS NOT NULL AS deleted FROM courses WHERE code = 'CSE4051' AND section = '01'`); err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Title != "컴파일러 설계" || got.Capacity != 7 || got.Enrolled != 7 || got.Meetings != "FRI 09:00-11:50" {
		t.Errorf("CSE4051/01 after re-import: %+v (id was %d)", got, id)
	}
	if n := count(t, db.DB, "SELECT is_open FROM courses WHERE id = ?", id); n != 0 {
		t.Error("re-import reopened a closed section")
	}
	if diff := cmp.Diff([]dbMeeting{{4, 540, 710}}, meetingsOf(t, db.DB, "CSE4051", "01")); diff != "" {
		t.Errorf("meetings not replaced (-want +got):\n%s", diff)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM courses WHERE deleted_at IS NOT NULL"); n != 0 {
		t.Errorf("%d sections still deleted", n)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM courses"); n != 2401 {
		t.Errorf("courses: %d rows, want 2401 (absent sections kept)", n)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM course_meetings"); n != totalMeetings(sections)-2+1 {
		t.Errorf("course_meetings: %d rows, want %d", n, totalMeetings(sections)-1)
	}
	// Every other row, in the file or not, is exactly as it was.
	if after := snapshotExcept(t, db.DB, id); after != untouched {
		t.Errorf("rows other than the changed ones were written: %s -> %s", untouched, after)
	}
}

// snapshotExcept checksums the courses table without the given id, the
// revived EE2001/01 and the new CSE9999.
func snapshotExcept(t testing.TB, db *sqlx.DB, id uint64) string {
	t.Helper()
	var s string
	const q = `SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CRC32(CONCAT_WS('|', id, code, section, title, title_en,
		department, professor, credits, capacity, enrolled, meetings, room, category, is_open, updated_at))), 0))
		FROM courses WHERE id <> ? AND NOT (code = 'EE2001' AND section = '01') AND code <> 'CSE9999'`
	if err := db.Get(&s, q, id); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestImportCapacityBelowEnrolled(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	sections := fixtureSections(t)
	mustImportCatalog(t, db.DB, sections)
	for _, q := range []string{
		"UPDATE courses SET enrolled = 15 WHERE code = 'GEN2070' AND section = '01'", // row 2, capacity 20
		"UPDATE courses SET enrolled = 40 WHERE code = 'CSE4051' AND section = '01'", // row 5, capacity 60
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, db.DB)

	changed := append([]Section(nil), sections...)
	for i := range changed {
		changed[i].Title += " (개정)" // every row would change
	}
	changed[0].Capacity = 14 // below 15
	changed[3].Capacity = 39 // below 40
	changed[len(changed)-1].Capacity = 0
	_, err := ImportCatalog(context.Background(), db.DB, changed, nil)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("ImportCatalog = %v, want Errors", err)
	}
	want := []where{{2, "capacity", CodeCapacityBelowEnrolled}, {5, "capacity", CodeCapacityBelowEnrolled}}
	if diff := cmp.Diff(want, positions(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if errs[1].Message != "정원이 현재 신청 인원(40명)보다 적습니다" || errs[1].Value != "39" {
		t.Errorf("message %+v", errs[1])
	}
	if after := snapshot(t, db.DB); after != before {
		t.Errorf("refused import changed the tables:\n%s\n%s", before, after)
	}
}

// TestImportLastRowBad: a 500-row file that rewrites 499 sections and whose
// last row is refused by the database check writes nothing at all.
func TestImportLastRowBad(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	sections := fixtureSections(t)[:500]
	mustImportCatalog(t, db.DB, sections)
	last := sections[499]
	if _, err := db.Exec("UPDATE courses SET enrolled = capacity WHERE code = ? AND section = ?", last.Code, last.Section); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, db.DB)
	changed := append([]Section(nil), sections...)
	for i := range changed {
		changed[i].Capacity++
		changed[i].Meetings = nil
	}
	changed[499].Capacity = last.Capacity - 1
	_, err := ImportCatalog(context.Background(), db.DB, changed, nil)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Row != 501 || errs[0].Code != CodeCapacityBelowEnrolled {
		t.Fatalf("ImportCatalog = %v, want one capacity_below_enrolled on row 501", err)
	}
	if after := snapshot(t, db.DB); after != before {
		t.Errorf("tables changed:\n%s\n%s", before, after)
	}
}

// TestImportErrorsChangeNothing runs every way an import can fail against a
// loaded database and checks the tables are exactly as before.
func TestImportErrorsChangeNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	sections := fixtureSections(t)
	students := fixtureStudents(t)
	mustImportCatalog(t, db.DB, sections[:1200])
	if _, err := ImportStudents(context.Background(), db.DB, students[:1000], testHash, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE courses SET enrolled = 10 WHERE code = 'GEN2070' AND section = '01'"); err != nil {
		t.Fatal(err)
	}
	// Every case would also insert the second half and update the first.
	all := append([]Section(nil), sections...)
	for i := range all {
		all[i].Professor = "담당교수"
	}
	allStudents := append([]Student(nil), students...)
	for i := range allStudents {
		allStudents[i].MaxCredits = 20
	}
	withSection := func(i int, f func(*Section)) []Section {
		s := append([]Section(nil), all...)
		f(&s[i])
		return s
	}
	withStudent := func(i int, f func(*Student)) []Student {
		s := append([]Student(nil), allStudents...)
		f(&s[i])
		return s
	}
	cancelAfter := func(chunks int) (context.Context, func(int, int)) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		n := 0
		return ctx, func(int, int) {
			if n++; n == chunks {
				cancel()
			}
		}
	}

	for _, tc := range []struct {
		name      string
		run       func() error
		wantCodes []string // row error codes; nil for a non-row error
	}{
		{"capacity below enrolled", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(0, func(s *Section) { s.Capacity = 9 }), nil)
			return err
		}, []string{CodeCapacityBelowEnrolled}},
		{"bad code", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2399, func(s *Section) { s.Code = "bad" }), nil)
			return err
		}, []string{CodeBadCode}},
		{"duplicate section", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, append(all[:len(all):len(all)], all[1500]), nil)
			return err
		}, []string{CodeDuplicateSection}},
		{"credits out of range", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Credits = 7 }), nil)
			return err
		}, []string{CodeCreditsOutOfRange}},
		{"capacity negative", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Capacity = -1 }), nil)
			return err
		}, []string{CodeCapacityNegative}},
		{"capacity too large", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Capacity = MaxCapacity + 1 }), nil)
			return err
		}, []string{CodeCapacityTooLarge}},
		{"overlapping meetings", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Meetings = []Meeting{{Mon, 0, 100}, {Mon, 50, 150}} }), nil)
			return err
		}, []string{CodeMeetingsOverlap}},
		{"formula in title", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Title = "=1+1" }), nil)
			return err
		}, []string{CodeFormulaInjection}},
		{"title too long", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Title = strings.Repeat("가", 201) }), nil)
			return err
		}, []string{CodeFieldTooLong}},
		{"NUL in room", func() error {
			_, err := ImportCatalog(context.Background(), db.DB, withSection(2000, func(s *Section) { s.Room = "a\x00b" }), nil)
			return err
		}, []string{CodeControlCharacter}},
		{"catalog cancelled after the first written chunk", func() error {
			ctx, progress := cancelAfter(1)
			_, err := ImportCatalog(ctx, db.DB, all, progress)
			return err
		}, nil},
		{"catalog cancelled after four chunks", func() error {
			ctx, progress := cancelAfter(4)
			_, err := ImportCatalog(ctx, db.DB, all, progress)
			return err
		}, nil},
		{"students without a password hash", func() error {
			_, err := ImportStudents(context.Background(), db.DB, allStudents, "", nil)
			return err
		}, []string{CodeMissingPasswordHash}},
		{"bad student number", func() error {
			_, err := ImportStudents(context.Background(), db.DB, withStudent(1999, func(s *Student) { s.StudentNo = "12" }), testHash, nil)
			return err
		}, []string{CodeBadStudentNo}},
		{"duplicate student", func() error {
			_, err := ImportStudents(context.Background(), db.DB, append(allStudents[:2000:2000], allStudents[5]), testHash, nil)
			return err
		}, []string{CodeDuplicateStudent}},
		{"year out of range", func() error {
			_, err := ImportStudents(context.Background(), db.DB, withStudent(1999, func(s *Student) { s.Year = 0 }), testHash, nil)
			return err
		}, []string{CodeYearOutOfRange}},
		{"max credits out of range", func() error {
			_, err := ImportStudents(context.Background(), db.DB, withStudent(1999, func(s *Student) { s.MaxCredits = 31 }), testHash, nil)
			return err
		}, []string{CodeMaxCreditsOutOfRange}},
		{"students cancelled after two chunks", func() error {
			ctx, progress := cancelAfter(2)
			_, err := ImportStudents(ctx, db.DB, allStudents, testHash, progress)
			return err
		}, nil},
	} {
		// Not parallel: every case starts from, and must leave, the same state.
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, db.DB)
			err := tc.run()
			if err == nil {
				t.Fatal("import succeeded, want an error")
			}
			var errs Errors
			switch {
			case tc.wantCodes == nil && errors.As(err, &errs):
				t.Errorf("got row errors %v, want a plain failure", errs)
			case tc.wantCodes != nil && !errors.As(err, &errs):
				t.Errorf("got %v, want row errors %v", err, tc.wantCodes)
			case tc.wantCodes != nil:
				var codes []string
				for _, e := range errs {
					codes = append(codes, e.Code)
				}
				if diff := cmp.Diff(tc.wantCodes, codes); diff != "" {
					t.Errorf("codes (-want +got):\n%s", diff)
				}
			}
			if after := snapshot(t, db.DB); after != before {
				t.Errorf("failed import changed the tables:\n%s\n%s", before, after)
			}
		})
	}
}

func TestImportStudentsKeepsPasswords(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	students := fixtureStudents(t)[:10]
	if _, err := ImportStudents(ctx, db.DB, students, testHash, nil); err != nil {
		t.Fatal(err)
	}
	own, err := auth.HashPassword("my-own-password", 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE students SET password_hash = ? WHERE student_no = ?", own, students[0].StudentNo); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE students SET password_hash = '' WHERE student_no = ?", students[1].StudentNo); err != nil {
		t.Fatal(err)
	}
	var id0 uint64
	if err := db.Get(&id0, "SELECT id FROM students WHERE student_no = ?", students[0].StudentNo); err != nil {
		t.Fatal(err)
	}
	next := append([]Student(nil), students...)
	next[0].Name, next[0].Year, next[0].MaxCredits = "오유진B", 4, 24
	next = append(next, Student{Row: 12, StudentNo: "202600001", Name: "새학생", Year: 1, Department: "수학과", MaxCredits: 18})
	newHash, err := auth.HashPassword("another-initial", 4)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ImportStudents(ctx, db.DB, next, newHash, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Duration = 0
	if diff := cmp.Diff(ImportResult{Total: 11, Inserted: 1, Updated: 2, Unchanged: 8}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	var got []struct {
		ID         uint64 `db:"id"`
		StudentNo  string `db:"student_no"`
		Name       string `db:"name"`
		Year       int    `db:"year"`
		MaxCredits int    `db:"max_credits"`
		Hash       string `db:"password_hash"`
	}
	if err := db.Select(&got, "SELECT id, student_no, name, year, max_credits, password_hash FROM students ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 {
		t.Fatalf("%d students, want 11", len(got))
	}
	byNo := map[string]int{}
	for i, g := range got {
		byNo[g.StudentNo] = i
	}
	s0 := got[byNo[students[0].StudentNo]]
	if s0.ID != id0 || s0.Name != "오유진B" || s0.Year != 4 || s0.MaxCredits != 24 || s0.Hash != own {
		t.Errorf("updated student: %+v", s0)
	}
	if h := got[byNo[students[1].StudentNo]].Hash; h != newHash {
		t.Errorf("student without a password got %q, want the initial hash", h)
	}
	if h := got[byNo[students[2].StudentNo]].Hash; h != testHash {
		t.Errorf("existing student's password replaced")
	}
	if h := got[byNo["202600001"]].Hash; !auth.CheckPassword(h, "another-initial") {
		t.Errorf("new student's password does not log in")
	}
}

func TestImportGenerated12000(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	sections := generated(t, 12000)
	start := time.Now()
	res := mustImportCatalog(t, db.DB, sections)
	t.Logf("imported 12,000 sections (%d meetings) in %v", res.Meetings, time.Since(start))
	if res.Inserted != 12000 {
		t.Errorf("result %+v", res)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM courses"); n != 12000 {
		t.Errorf("courses: %d", n)
	}
	if n := count(t, db.DB, "SELECT COUNT(*) FROM course_meetings"); n != res.Meetings || n != totalMeetings(sections) {
		t.Errorf("course_meetings: %d, want %d", n, totalMeetings(sections))
	}
	// A second run with every capacity changed updates in place.
	for i := range sections {
		sections[i].Capacity++
	}
	start = time.Now()
	res = mustImportCatalog(t, db.DB, sections)
	t.Logf("re-imported 12,000 changed sections in %v", time.Since(start))
	if res.Updated != 12000 || count(t, db.DB, "SELECT COUNT(*) FROM courses") != 12000 {
		t.Errorf("re-import result %+v", res)
	}
}

func BenchmarkImportCatalog12000(b *testing.B) {
	db := dbtest.New(b)
	sections := generated(b, 12000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ImportCatalog(ctx, db.DB, sections, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := db.ExecContext(ctx, "DELETE FROM course_meetings"); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "DELETE FROM courses"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// TestReimportReportsRaises: a re-import says which sections' capacities
// it raised (the app logs them for law 7's check); cuts are not raises.
func TestReimportReportsRaises(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	sections := fixtureSections(t)
	mustImportCatalog(t, db.DB, sections)
	changed := append([]Section(nil), sections[:3]...)
	changed[0].Capacity += 5
	changed[1].Capacity = max(changed[1].Capacity-1, 0)
	var id uint64
	if err := db.Get(&id, "SELECT id FROM courses WHERE code = ? AND section = ?", changed[0].Code, changed[0].Section); err != nil {
		t.Fatal(err)
	}
	res := mustImportCatalog(t, db.DB, changed)
	want := []CapacityRaise{{CourseID: id, Old: sections[0].Capacity, New: sections[0].Capacity + 5}}
	if diff := cmp.Diff(want, res.Raised); diff != "" {
		t.Errorf("raised (-want +got):\n%s", diff)
	}
}
