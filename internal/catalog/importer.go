package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/store"
)

// ImportResult summarises one import.
type ImportResult struct {
	Total     int           // rows in the file
	Inserted  int           // new rows
	Updated   int           // existing rows whose values changed
	Unchanged int           // existing rows already equal to the file (not written)
	Meetings  int           // course_meetings rows written (catalog only)
	Duration  time.Duration // whole import, including retries
	// Raised are the existing sections whose capacity the import raised
	// (catalog only): seats it freed, which the caller logs in
	// capacity_changes once the seat hints know of them (law 7).
	Raised []CapacityRaise
}

// CapacityRaise is one section whose capacity an import raised.
type CapacityRaise struct {
	CourseID uint64
	Old, New int
}

// chunkSize is how many rows go into one multi-row statement. 500 rows of
// 11 columns keeps each statement far below max_allowed_packet while making
// round trips negligible.
const chunkSize = 500

// importAttempts bounds retries when InnoDB picks the import as a deadlock
// victim (it competes with enrollment transactions for course rows).
const importAttempts = 3

// ImportCatalog writes sections to the courses and course_meetings tables in
// one transaction: all of them or, on any error, none.
//
// Sections are matched by (code, section). A new one is inserted; an existing
// one has its title, title_en, department, professor, credits, capacity,
// meetings, room and category replaced in place, keeps its id, enrolled
// count and is_open flag, and is undeleted (deleted_at cleared). Rows already
// equal to the file are not written. The meetings of every written section
// are replaced in course_meetings, and courses.meetings holds their
// normalised text. Sections in the database but not in the file are left as
// they are: an import never deletes.
//
// A capacity below a section's current enrolled count is refused as a
// RowError with code capacity_below_enrolled; every such row is reported and
// nothing changes. Invalid sections (see CheckSections) are refused the same
// way. Row errors come back as an Errors value in the chain (errors.As).
//
// The existing rows are read with FOR UPDATE, so enrollments in the imported
// sections wait until the import commits. progress, if not nil, is called
// after each chunk with the number of sections done so far.
func ImportCatalog(ctx context.Context, db *sqlx.DB, sections []Section, progress func(done, total int)) (ImportResult, error) {
	start := time.Now()
	if errs := CheckSections(sections); len(errs) > 0 {
		return ImportResult{}, fmt.Errorf("import catalog: %w", errs)
	}
	var res ImportResult
	err := retryTx(ctx, db, func(tx *sqlx.Tx) error {
		var err error
		res, err = importCatalogTx(ctx, tx, sections, progress)
		return err
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import catalog: %w", err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// courseRow is the part of a courses row an import compares and writes.
type courseRow struct {
	ID         uint64 `db:"id"`
	Code       string `db:"code"`
	Section    string `db:"section"`
	Title      string `db:"title"`
	TitleEN    string `db:"title_en"`
	Department string `db:"department"`
	Professor  string `db:"professor"`
	Credits    int    `db:"credits"`
	Capacity   int    `db:"capacity"`
	Enrolled   int    `db:"enrolled"`
	Meetings   string `db:"meetings"`
	Room       string `db:"room"`
	Category   string `db:"category"`
	Deleted    bool   `db:"deleted"`
}

func (c courseRow) key() string {
	return strings.ToUpper(c.Code) + "/" + strings.ToUpper(c.Section)
}

// same reports whether the row already holds everything s would write.
func (c courseRow) same(s Section) bool {
	return !c.Deleted && c.Title == s.Title && c.TitleEN == s.TitleEN && c.Department == s.Department &&
		c.Professor == s.Professor && c.Credits == s.Credits && c.Capacity == s.Capacity &&
		c.Meetings == s.MeetingsText() && c.Room == s.Room && c.Category == s.Category
}

func importCatalogTx(ctx context.Context, tx *sqlx.Tx, sections []Section, progress func(done, total int)) (ImportResult, error) {
	res := ImportResult{Total: len(sections)}

	// Phase 1: lock and read every existing section the file names, and
	// check capacities against enrolled before writing anything.
	codes := make([]string, 0, len(sections))
	seen := map[string]bool{}
	for _, s := range sections {
		if !seen[s.Code] {
			seen[s.Code] = true
			codes = append(codes, s.Code)
		}
	}
	existing, err := lockCourses(ctx, tx, codes)
	if err != nil {
		return res, err
	}
	var errs Errors
	for _, s := range sections {
		if c, ok := existing[s.Key()]; ok && s.Capacity < c.Enrolled {
			errs = append(errs, newError(s.Row, "capacity", CodeCapacityBelowEnrolled, fmt.Sprint(s.Capacity), c.Enrolled))
		}
	}
	if len(errs) > 0 {
		return res, errs
	}

	// Phase 2: write the chunks.
	for lo := 0; lo < len(sections); lo += chunkSize {
		hi := min(lo+chunkSize, len(sections))
		var write []Section
		var old []uint64 // ids of existing sections being rewritten
		var fresh []string
		for _, s := range sections[lo:hi] {
			c, ok := existing[s.Key()]
			switch {
			case !ok:
				res.Inserted++
				write = append(write, s)
				fresh = append(fresh, s.Code)
			case c.same(s):
				res.Unchanged++
			default:
				res.Updated++
				write = append(write, s)
				old = append(old, c.ID)
				if s.Capacity > c.Capacity {
					res.Raised = append(res.Raised, CapacityRaise{CourseID: c.ID, Old: c.Capacity, New: s.Capacity})
				}
			}
		}
		if len(write) > 0 {
			if err := upsertCourses(ctx, tx, write); err != nil {
				return res, err
			}
			ids := map[string]uint64{}
			for _, s := range write {
				if c, ok := existing[s.Key()]; ok {
					ids[s.Key()] = c.ID
				}
			}
			if len(fresh) > 0 {
				if err := courseIDs(ctx, tx, fresh, ids); err != nil {
					return res, err
				}
			}
			n, err := replaceMeetings(ctx, tx, write, old, ids)
			if err != nil {
				return res, err
			}
			res.Meetings += n
		}
		if progress != nil {
			progress(hi, len(sections))
		}
	}
	return res, nil
}

// lockCourses reads and locks every course row with one of codes, keyed by
// "CODE/SECTION".
func lockCourses(ctx context.Context, tx *sqlx.Tx, codes []string) (map[string]courseRow, error) {
	const q = `SELECT id, code, section, title, title_en, department, professor, credits, capacity,
		enrolled, meetings, room, category, deleted_at IS NOT NULL AS deleted
	FROM courses WHERE code IN (?) FOR UPDATE`
	out := make(map[string]courseRow, len(codes))
	for lo := 0; lo < len(codes); lo += chunkSize {
		query, args, err := sqlx.In(q, codes[lo:min(lo+chunkSize, len(codes))])
		if err != nil {
			return nil, fmt.Errorf("lock courses: %w", err)
		}
		var rows []courseRow
		if err := tx.SelectContext(ctx, &rows, query, args...); err != nil {
			return nil, fmt.Errorf("lock courses: %w", store.Interpret(err))
		}
		for _, r := range rows {
			out[r.key()] = r
		}
	}
	return out, nil
}

// upsertCourses inserts or updates sections (at most chunkSize) in one
// statement. enrolled and is_open are never written.
func upsertCourses(ctx context.Context, tx *sqlx.Tx, sections []Section) error {
	const q = `INSERT INTO courses
		(code, section, title, title_en, department, professor, credits, capacity, meetings, room, category)
	VALUES %s
	ON DUPLICATE KEY UPDATE
		title = VALUES(title), title_en = VALUES(title_en), department = VALUES(department),
		professor = VALUES(professor), credits = VALUES(credits), capacity = VALUES(capacity),
		meetings = VALUES(meetings), room = VALUES(room), category = VALUES(category), deleted_at = NULL`
	args := make([]any, 0, len(sections)*11)
	for _, s := range sections {
		args = append(args, s.Code, s.Section, s.Title, s.TitleEN, s.Department, s.Professor,
			s.Credits, s.Capacity, s.MeetingsText(), s.Room, s.Category)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(q, placeholders(len(sections), 11)), args...); err != nil {
		return fmt.Errorf("upsert courses: %w", store.Interpret(err))
	}
	return nil
}

// courseIDs adds the ids of the sections of codes to ids ("CODE/SECTION").
func courseIDs(ctx context.Context, tx *sqlx.Tx, codes []string, ids map[string]uint64) error {
	const q = `SELECT id, code, section FROM courses WHERE code IN (?)`
	query, args, err := sqlx.In(q, codes)
	if err != nil {
		return fmt.Errorf("course ids: %w", err)
	}
	var rows []courseRow
	if err := tx.SelectContext(ctx, &rows, query, args...); err != nil {
		return fmt.Errorf("course ids: %w", store.Interpret(err))
	}
	for _, r := range rows {
		ids[r.key()] = r.ID
	}
	return nil
}

// replaceMeetings deletes the meetings of the old course ids and inserts the
// meetings of sections. It returns the number of rows inserted.
func replaceMeetings(ctx context.Context, tx *sqlx.Tx, sections []Section, old []uint64, ids map[string]uint64) (int, error) {
	const qDelete = `DELETE FROM course_meetings WHERE course_id IN (?)`
	const qInsert = `INSERT INTO course_meetings (course_id, day, start_min, end_min) VALUES %s`
	if len(old) > 0 {
		query, args, err := sqlx.In(qDelete, old)
		if err != nil {
			return 0, fmt.Errorf("delete meetings: %w", err)
		}
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return 0, fmt.Errorf("delete meetings: %w", store.Interpret(err))
		}
	}
	var args []any
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(qInsert, placeholders(n, 4)), args...); err != nil {
			return fmt.Errorf("insert meetings: %w", store.Interpret(err))
		}
		args, n = args[:0], 0
		return nil
	}
	total := 0
	for _, s := range sections {
		id, ok := ids[s.Key()]
		if !ok {
			return 0, fmt.Errorf("insert meetings: no id for %s after upsert", s.Key())
		}
		for _, m := range s.Meetings {
			args = append(args, id, int(m.Day), m.Start, m.End)
			n++
			total++
			if n == 2*chunkSize {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return total, nil
}

// ImportStudents writes students to the students table in one transaction:
// all of them or, on any error, none. Students are matched by student_no:
// new ones are inserted with initialPasswordHash, existing ones get name,
// year, department and max_credits replaced and keep their password (a
// student whose password_hash is empty gets the initial one). Students in the
// database but not in the file are left as they are.
//
// The caller hashes the initial password once (auth.HashPassword) and every
// new student shares that hash; see docs/IMPORT.md for why that is fine.
func ImportStudents(ctx context.Context, db *sqlx.DB, students []Student, initialPasswordHash string, progress func(done, total int)) (ImportResult, error) {
	start := time.Now()
	if initialPasswordHash == "" {
		return ImportResult{}, fmt.Errorf("import students: %w", Errors{newError(0, "", CodeMissingPasswordHash, "")})
	}
	if errs := CheckStudents(students); len(errs) > 0 {
		return ImportResult{}, fmt.Errorf("import students: %w", errs)
	}
	var res ImportResult
	err := retryTx(ctx, db, func(tx *sqlx.Tx) error {
		var err error
		res, err = importStudentsTx(ctx, tx, students, initialPasswordHash, progress)
		return err
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import students: %w", err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

type studentRow struct {
	ID         uint64 `db:"id"`
	StudentNo  string `db:"student_no"`
	Name       string `db:"name"`
	Year       int    `db:"year"`
	Department string `db:"department"`
	MaxCredits int    `db:"max_credits"`
	NoPassword bool   `db:"no_password"`
}

func (r studentRow) same(s Student) bool {
	return !r.NoPassword && r.Name == s.Name && r.Year == s.Year && r.Department == s.Department && r.MaxCredits == s.MaxCredits
}

func importStudentsTx(ctx context.Context, tx *sqlx.Tx, students []Student, hash string, progress func(done, total int)) (ImportResult, error) {
	const qLock = `SELECT id, student_no, name, year, department, max_credits, password_hash = '' AS no_password
	FROM students WHERE student_no IN (?) FOR UPDATE`
	// A student given the initial password must change it at first login
	// (must_change_password; checked before password_hash is assigned, as
	// MariaDB applies the assignments left to right).
	const qUpsert = `INSERT INTO students (student_no, name, year, department, max_credits, password_hash, must_change_password)
	VALUES %s
	ON DUPLICATE KEY UPDATE
		name = VALUES(name), year = VALUES(year), department = VALUES(department),
		max_credits = VALUES(max_credits),
		must_change_password = IF(password_hash = '', 1, must_change_password),
		password_hash = IF(password_hash = '', VALUES(password_hash), password_hash)`
	res := ImportResult{Total: len(students)}
	for lo := 0; lo < len(students); lo += chunkSize {
		chunk := students[lo:min(lo+chunkSize, len(students))]
		nos := make([]string, len(chunk))
		for i, s := range chunk {
			nos[i] = s.StudentNo
		}
		query, args, err := sqlx.In(qLock, nos)
		if err != nil {
			return res, fmt.Errorf("lock students: %w", err)
		}
		var rows []studentRow
		if err := tx.SelectContext(ctx, &rows, query, args...); err != nil {
			return res, fmt.Errorf("lock students: %w", store.Interpret(err))
		}
		existing := make(map[string]studentRow, len(rows))
		for _, r := range rows {
			existing[r.StudentNo] = r
		}
		args = args[:0]
		n := 0
		for _, s := range chunk {
			r, ok := existing[s.StudentNo]
			switch {
			case !ok:
				res.Inserted++
			case r.same(s):
				res.Unchanged++
				continue
			default:
				res.Updated++
			}
			args = append(args, s.StudentNo, s.Name, s.Year, s.Department, s.MaxCredits, hash, 1)
			n++
		}
		if n > 0 {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(qUpsert, placeholders(n, 7)), args...); err != nil {
				return res, fmt.Errorf("upsert students: %w", store.Interpret(err))
			}
		}
		if progress != nil {
			progress(lo+len(chunk), len(students))
		}
	}
	return res, nil
}

// placeholders returns "(?,?,?),(?,?,?)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(one) + 1))
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}

// retryTx runs fn in a transaction and commits it, retrying the whole
// transaction when InnoDB reports a deadlock or lock wait timeout. Any other
// error, or a row error (Errors), rolls back and is returned as is.
func retryTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= importAttempts; attempt++ {
		err = inTx(ctx, db, fn)
		if err == nil || !errors.Is(err, store.ErrDeadlock) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func inTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", store.Interpret(err))
	}
	// After a commit this is a no-op returning sql.ErrTxDone; after a failure
	// it undoes everything fn wrote.
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", store.Interpret(err))
	}
	return nil
}
