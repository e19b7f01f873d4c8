// Package students prepares the students of a load run: it makes sure the
// roster holds enough of them (importing generated "load" students through
// the same all-or-nothing import path as `enrollctl import-students`) and
// issues their access tokens ahead of time.
//
// Issuing tokens directly with the configured secret is the documented
// equivalent of every student having logged in before registration opens:
// on registration day students sit on the page with a valid session, and
// 100,000 bcrypt logins inside the burst would measure bcrypt, not the queue.
// The tokens are the same signed student tokens POST /api/v1/auth/login
// returns (auth.Signer, kind "student").
//
// Both cmd/loadgen and `enrollctl issue-tokens` use this package.
package students

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/catalog"
)

// Token is one prepared student: who they are and a valid access token.
type Token struct {
	StudentID int64
	StudentNo string
	Year      int
	Token     string
}

// CSVHeader is the header row of a tokens file.
var CSVHeader = []string{"student_id", "student_no", "year", "token"}

// Issue signs access tokens for the first n students of the roster (by id;
// n <= 0 means all of them), valid for ttl.
func Issue(ctx context.Context, db *sqlx.DB, signer *auth.Signer, n int, ttl time.Duration) ([]Token, error) {
	// The token carries the student's token_version (a revoke still ends
	// these sessions). Like any holder of the secret, issue-tokens signs
	// sessions directly: as if the student had logged in and changed the
	// initial password (no must-change flag).
	const qAll = `SELECT id, student_no, year, token_version FROM students ORDER BY id`
	const qFirst = qAll + ` LIMIT ?`
	var rows []struct {
		ID        int64  `db:"id"`
		StudentNo string `db:"student_no"`
		Year      int    `db:"year"`
		Version   int64  `db:"token_version"`
	}
	var err error
	if n > 0 {
		err = db.SelectContext(ctx, &rows, qFirst, n)
	} else {
		err = db.SelectContext(ctx, &rows, qAll)
	}
	if err != nil {
		return nil, fmt.Errorf("issue tokens: read students: %w", err)
	}
	if n > 0 && len(rows) < n {
		return nil, fmt.Errorf("issue tokens: the roster has %d students, %d asked for", len(rows), n)
	}
	out := make([]Token, len(rows))
	for i, r := range rows {
		c := auth.Claims{Kind: auth.KindStudent, Subject: r.ID, StudentNo: r.StudentNo, Year: r.Year, Version: r.Version}
		out[i] = Token{StudentID: r.ID, StudentNo: r.StudentNo, Year: r.Year, Token: signer.Issue(c, ttl)}
	}
	return out, nil
}

// WriteCSV writes tokens as CSV with CSVHeader.
func WriteCSV(w io.Writer, ts []Token) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	rec := make([]string, 4)
	for _, t := range ts {
		rec[0], rec[1], rec[2], rec[3] = strconv.FormatInt(t.StudentID, 10), t.StudentNo, strconv.Itoa(t.Year), t.Token
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write tokens: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	return nil
}

// ReadCSV reads a tokens file written by WriteCSV.
func ReadCSV(r io.Reader) ([]Token, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(CSVHeader)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read tokens: header: %w", err)
	}
	for i, h := range CSVHeader {
		if head[i] != h {
			return nil, fmt.Errorf("read tokens: header column %d is %q, want %q", i+1, head[i], h)
		}
	}
	var out []Token
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read tokens: %w", err)
		}
		id, err1 := strconv.ParseInt(rec[0], 10, 64)
		year, err2 := strconv.Atoi(rec[2])
		if err := errors.Join(err1, err2); err != nil || id <= 0 || rec[3] == "" {
			return nil, fmt.Errorf("read tokens: line %d: bad row %q", line, rec)
		}
		out = append(out, Token{StudentID: id, StudentNo: rec[1], Year: year, Token: rec[3]})
	}
}

// LoadPrefix starts the student number of every generated load student, so
// they never collide with a real roster (which uses entrance years).
const LoadPrefix = "77"

// LoadStudentNo is the student number of the i-th generated load student.
func LoadStudentNo(i int) string { return fmt.Sprintf("%s%08d", LoadPrefix, i) }

// GenerateLoadRoster returns n load students: the fixture-like names, years,
// departments and credit limits of catalog.GenerateRoster, renumbered with
// LoadStudentNo. The result depends only on n and seed.
func GenerateLoadRoster(n int, seed uint64) ([]catalog.Student, error) {
	if n < 0 || n > 99_999_999 {
		return nil, fmt.Errorf("generate load roster: %d students: want 0..99999999", n)
	}
	var buf bytes.Buffer
	if err := catalog.GenerateRoster(&buf, n, seed); err != nil {
		return nil, err
	}
	ss, errs := catalog.ParseRoster(&buf)
	if len(errs) > 0 {
		return nil, fmt.Errorf("generate load roster: %w", catalog.Errors(errs))
	}
	for i := range ss {
		ss[i].StudentNo = LoadStudentNo(i)
		ss[i].Row = 0
	}
	return ss, nil
}

// EnsureResult says what Ensure did.
type EnsureResult struct {
	Before   int // students in the roster before
	Imported int // load students inserted
	After    int
}

// Ensure makes the roster hold at least n students by importing generated
// load students (catalog.ImportStudents: one transaction, one shared bcrypt
// hash of password at cost). Load students already present are kept.
func Ensure(ctx context.Context, db *sqlx.DB, n int, password string, cost int, progress func(done, total int)) (EnsureResult, error) {
	var res EnsureResult
	if err := db.GetContext(ctx, &res.Before, `SELECT COUNT(*) FROM students`); err != nil {
		return res, fmt.Errorf("ensure students: count: %w", err)
	}
	res.After = res.Before
	if res.Before >= n {
		return res, nil
	}
	var load int
	const qLoad = `SELECT COUNT(*) FROM students WHERE student_no LIKE '` + LoadPrefix + `%' AND CHAR_LENGTH(student_no) = 10`
	if err := db.GetContext(ctx, &load, qLoad); err != nil {
		return res, fmt.Errorf("ensure students: count load students: %w", err)
	}
	ss, err := GenerateLoadRoster(load+n-res.Before, 2026)
	if err != nil {
		return res, err
	}
	hash, err := auth.HashPassword(password, cost)
	if err != nil {
		return res, fmt.Errorf("ensure students: %w", err)
	}
	ir, err := catalog.ImportStudents(ctx, db, ss, hash, progress)
	if err != nil {
		return res, fmt.Errorf("ensure students: %w", err)
	}
	res.Imported = ir.Inserted
	if err := db.GetContext(ctx, &res.After, `SELECT COUNT(*) FROM students`); err != nil {
		return res, fmt.Errorf("ensure students: count: %w", err)
	}
	if res.After < n {
		return res, fmt.Errorf("ensure students: %d students after import, want %d", res.After, n)
	}
	return res, nil
}
