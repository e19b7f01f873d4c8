package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/catalog"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/dbtest"
)

// harness runs command lines against one test database.
type harness struct {
	t      *testing.T
	db     *dbtest.DB
	env    map[string]string
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func setup(t *testing.T) *harness {
	t.Helper()
	return &harness{t: t, db: dbtest.New(t), env: map[string]string{}}
}

// run executes enrollctl with args and returns its exit status; stdout and
// stderr hold what this run printed.
func (h *harness) run(args ...string) int {
	h.stdout.Reset()
	h.stderr.Reset()
	cfg := config.FromEnv()
	// Tests run in development mode, explicitly (issue #16).
	cfg.BcryptCost, cfg.Dev, cfg.TokenSecret = 4, true, config.DevTokenSecret
	if h.db != nil {
		cfg.DBDSN = h.db.DSN
	}
	a := &app{cfg: cfg, stdout: &h.stdout, stderr: &h.stderr, getenv: func(k string) string { return h.env[k] }}
	code := run(context.Background(), a, args)
	h.t.Logf("enrollctl %s -> %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, h.stdout.String(), truncate(h.stderr.String()))
	return code
}

func truncate(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot is every row of the tables imports write, as checksums and counts.
func snapshot(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var rows []struct {
		Table    string `db:"Table"`
		Checksum *int64 `db:"Checksum"`
	}
	if err := db.Select(&rows, "CHECKSUM TABLE courses, course_meetings, students"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		var n int
		if err := db.Get(&n, "SELECT COUNT(*) FROM "+r.Table); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %v;", r.Table, n, *r.Checksum)
	}
	return b.String()
}

func count(t *testing.T, db *sqlx.DB, q string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportFixtures(t *testing.T) {
	t.Parallel()
	h := setup(t)
	if code := h.run("migrate"); code != 0 {
		t.Fatalf("migrate: exit %d", code)
	}
	if code := h.run("import-catalog", dbtest.Fixture(t, "catalog.csv")); code != 0 {
		t.Fatalf("import-catalog: exit %d", code)
	}
	if !strings.Contains(h.stdout.String(), "2400 sections (2400 inserted, 0 updated, 0 unchanged)") {
		t.Errorf("summary: %q", h.stdout.String())
	}
	if !strings.Contains(h.stderr.String(), "importing sections: 2400/2400 (100%)") {
		t.Errorf("no progress line: %q", h.stderr.String())
	}
	if n := count(t, h.db.DB, "SELECT COUNT(*) FROM courses"); n != 2400 {
		t.Errorf("courses: %d", n)
	}

	// The flag after the file, as scripts/run.sh writes it.
	if code := h.run("import-students", dbtest.Fixture(t, "students.csv"), "--initial-password", "s3cret-start"); code != 0 {
		t.Fatalf("import-students: exit %d", code)
	}
	if !strings.Contains(h.stdout.String(), "2000 students (2000 inserted") || strings.Contains(h.stdout.String(), "s3cret-start") {
		t.Errorf("summary: %q", h.stdout.String())
	}
	var hash string
	if err := h.db.Get(&hash, "SELECT password_hash FROM students WHERE student_no = '202300000'"); err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(hash, "s3cret-start") {
		t.Error("--initial-password not used")
	}
	if n := count(t, h.db.DB, "SELECT COUNT(DISTINCT password_hash) FROM students"); n != 1 {
		t.Errorf("%d distinct hashes, want one shared hash", n)
	}

	// Again: nothing changes, and it says so.
	before := snapshot(t, h.db.DB)
	if code := h.run("import-catalog", dbtest.Fixture(t, "catalog.csv")); code != 0 || !strings.Contains(h.stdout.String(), "2400 unchanged") {
		t.Errorf("re-import: exit %d, %q", code, h.stdout.String())
	}
	if after := snapshot(t, h.db.DB); after != before {
		t.Errorf("identical re-import changed tables")
	}
}

func TestImportStudentsPasswordDefaults(t *testing.T) {
	t.Parallel()
	h := setup(t)
	roster := writeFile(t, "r.csv", "student_no,name,year,department,max_credits\n202600001,가나다,1,수학과,\n")
	if code := h.run("import-students", roster); code != 0 {
		t.Fatalf("exit %d", code)
	}
	h.env["ENROLLQ_INITIAL_PASSWORD"] = "from-env"
	roster2 := writeFile(t, "r2.csv", "student_no,name,year,department,max_credits\n202600002,라마바,1,수학과,20\n")
	if code := h.run("import-students", roster2); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got []struct {
		No   string `db:"student_no"`
		Hash string `db:"password_hash"`
		Max  int    `db:"max_credits"`
	}
	if err := h.db.Select(&got, "SELECT student_no, password_hash, max_credits FROM students ORDER BY student_no"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !auth.CheckPassword(got[0].Hash, DefaultInitialPassword) || !auth.CheckPassword(got[1].Hash, "from-env") || got[0].Max != 18 || got[1].Max != 20 {
		t.Errorf("students: %+v", got)
	}
}

// TestImportBadFileListsEveryRow: a 500-row catalog whose problems include
// its last row imports nothing, exits non-zero and lists every bad row.
func TestImportBadFileListsEveryRow(t *testing.T) {
	t.Parallel()
	h := setup(t)
	// Start from a loaded database so "nothing changed" means something.
	if code := h.run("import-catalog", dbtest.Fixture(t, "catalog.csv")); code != 0 {
		t.Fatalf("import fixture: exit %d", code)
	}
	data, err := os.ReadFile(dbtest.Fixture(t, "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")[:501] // header + 500 rows
	for i := 1; i < len(lines); i++ {
		lines[i] = strings.Replace(lines[i], ",01,", ",1A,", 1) // would add or change every row
	}
	set := func(row int, col int, v string) { // row as a spreadsheet counts it
		f := strings.Split(lines[row-1], ",")
		f[col] = v
		lines[row-1] = strings.Join(f, ",")
	}
	set(7, 6, "7")                // credits
	set(50, 8, "MON 09:00-08:00") // meetings
	set(120, 2, "=SUM(A1:A9)")    // title
	set(300, 7, "-10")            // capacity
	row2 := strings.Split(lines[1], ",")
	set(301, 0, row2[0]) // same code and section as row 2
	set(301, 1, row2[1])
	set(501, 8, "MOM 09:00-10:00") // the last row
	file := writeFile(t, "bad.csv", strings.Join(lines, "\n")+"\n")
	before := snapshot(t, h.db.DB)

	code := h.run("import-catalog", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	stderr := h.stderr.String()
	for _, want := range []string{
		"row 7, column credits: [credits_out_of_range] 학점은 1–6 사이여야 합니다 / credits must be between 1 and 6",
		"row 50, column meetings: [end_before_start] ",
		"row 120, column title: [formula_injection] ",
		"row 300, column capacity: [capacity_negative] 정원은 0 이상이어야 합니다 / capacity must not be negative",
		"row 501, column meetings: [bad_day] 요일은 MON TUE WED THU FRI SAT SUN 중 하나여야 합니다 / the day must be one of MON TUE WED THU FRI SAT SUN",
		"6 problem(s) in 6 row(s); nothing was imported",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if !strings.Contains(stderr, "row 301, column section: [duplicate_section]") {
		t.Errorf("duplicate of row 2 not reported")
	}
	if after := snapshot(t, h.db.DB); after != before {
		t.Errorf("bad file changed the tables:\n%s\n%s", before, after)
	}
	if h.stdout.Len() != 0 {
		t.Errorf("stdout on failure: %q", h.stdout.String())
	}
}

func TestImportCapacityBelowEnrolledCommand(t *testing.T) {
	t.Parallel()
	h := setup(t)
	file := writeFile(t, "c.csv", "code,section,title,title_en,department,professor,credits,capacity,meetings,room,category\n"+
		"CSE1000,01,자료구조,,컴퓨터공학과,,3,30,MON 09:00-10:15,,\n"+
		"CSE1000,02,자료구조,,컴퓨터공학과,,3,30,MON 09:00-10:15,,\n")
	if code := h.run("import-catalog", file); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := h.db.Exec("UPDATE courses SET enrolled = 25 WHERE section = '02'"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, h.db.DB)
	file2 := writeFile(t, "c2.csv", "code,section,title,title_en,department,professor,credits,capacity,meetings,room,category\n"+
		"CSE1000,01,자료구조,,컴퓨터공학과,,3,10,MON 09:00-10:15,,\n"+
		"CSE1000,02,자료구조,,컴퓨터공학과,,3,20,MON 09:00-10:15,,\n")
	if code := h.run("import-catalog", file2); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := "row 3, column capacity: [capacity_below_enrolled] 정원이 현재 신청 인원(25명)보다 적습니다 / capacity is below the 25 students already enrolled (value \"20\")"
	if !strings.Contains(h.stderr.String(), want) {
		t.Errorf("stderr lacks %q", want)
	}
	if after := snapshot(t, h.db.DB); after != before {
		t.Error("tables changed")
	}
}

func TestBadRosterListsEveryRow(t *testing.T) {
	t.Parallel()
	h := setup(t)
	file := writeFile(t, "r.csv", "student_no,name,year,department,max_credits\n"+
		"202300000,오유진,3,컴퓨터공학과,21\n"+
		"12,이수아,2,전자공학과,18\n"+
		"202200002,윤건우,9,기계공학과,18\n"+
		"202300000,김예준,2,영어영문학과,99\n")
	before := snapshot(t, h.db.DB)
	if code := h.run("import-students", file, "--initial-password", "x"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"row 3, column student_no: [bad_student_no]",
		"row 4, column year: [year_out_of_range]",
		"row 5, column max_credits: [max_credits_out_of_range]",
		"row 5, column student_no: [duplicate_student] 같은 학번이 2행에 이미 있습니다 / the same student number already appears on row 2",
		"4 problem(s) in 3 row(s); nothing was imported",
	} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if after := snapshot(t, h.db.DB); after != before {
		t.Error("tables changed")
	}
}

func TestUsageAndGenerators(t *testing.T) {
	t.Parallel()
	h := &harness{t: t, env: map[string]string{}}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"help"}, 0},
		{[]string{"frobnicate"}, 2},
		{[]string{"import-catalog"}, 2},
		{[]string{"import-catalog", "a.csv", "b.csv"}, 2},
		{[]string{"import-catalog", "--nope", "a.csv"}, 2},
		{[]string{"import-catalog", "-h"}, 0},
		{[]string{"import-catalog", filepath.Join(t.TempDir(), "missing.csv")}, 1},
		{[]string{"gen-catalog", "--sections", "0"}, 2},
		{[]string{"migrate", "extra"}, 2},
	} {
		if code := h.run(tc.args...); code != tc.code {
			t.Errorf("enrollctl %v: exit %d, want %d", tc.args, code, tc.code)
		}
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "cat.csv")
	if code := h.run("gen-catalog", "--sections", "1500", "--out", out); code != 0 {
		t.Fatalf("gen-catalog: exit %d", code)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s, errs := catalog.ParseCatalog(f); len(s) != 1500 || len(errs) != 0 {
		t.Errorf("generated catalog: %d sections, %v", len(s), errs)
	}
	if code := h.run("gen-students", "--students", "10", "--seed", "3"); code != 0 || strings.Count(h.stdout.String(), "\n") != 11 {
		t.Errorf("gen-students to stdout: exit %d, %q", code, h.stdout.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantPos []string
		wantPW  string
	}{
		{[]string{"f.csv"}, []string{"f.csv"}, ""},
		{[]string{"f.csv", "--initial-password", "pw"}, []string{"f.csv"}, "pw"},
		{[]string{"--initial-password=pw", "f.csv"}, []string{"f.csv"}, "pw"},
		{[]string{"a", "-initial-password", "pw", "b"}, []string{"a", "b"}, "pw"},
		{[]string{"--", "--initial-password"}, []string{"--initial-password"}, ""},
	} {
		h := &harness{t: t}
		a := &app{stderr: &h.stderr}
		fs := a.newFlags("x")
		pw := fs.String("initial-password", "", "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || strings.Join(pos, "|") != strings.Join(tc.wantPos, "|") || *pw != tc.wantPW {
			t.Errorf("parseArgs(%q) = %q, pw %q, %v", tc.args, pos, *pw, err)
		}
	}
}
