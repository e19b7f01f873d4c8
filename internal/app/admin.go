package app

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/revocation"
	"github.com/enrollq/enrollq/internal/store"
)

// Admin errors.
var (
	ErrAdminExists = errors.New("an admin with this user name exists")
	ErrBadWindow   = errors.New("a window must close after it opens and name a class year 1..6 or none")
	ErrUnknownUser = errors.New("no such student")
)

// AdminLogin checks registrar credentials against the admins table and
// returns an admin token (the canonical user name of the row, its token
// version). An unknown user name costs the same bcrypt check as a known one.
func (s *Service) AdminLogin(ctx context.Context, username, password string) (string, error) {
	var row struct {
		ID       int64  `db:"id"`
		Username string `db:"username"`
		Hash     string `db:"password_hash"`
		Version  int64  `db:"token_version"`
	}
	err := s.DB.GetContext(ctx, &row, `SELECT id, username, password_hash, token_version FROM admins WHERE username = ?`, username)
	if errors.Is(err, sql.ErrNoRows) {
		s.checkPassword(s.dummyHash(), password)
		return "", ErrBadCredentials
	}
	if err != nil {
		return "", fmt.Errorf("admin login: %w", err)
	}
	if !s.checkPassword(row.Hash, password) {
		return "", ErrBadCredentials
	}
	return s.Signer.Issue(auth.Claims{Kind: auth.KindAdmin, Subject: row.ID, StudentNo: row.Username, Version: row.Version}, s.TokenTTL), nil
}

// ChangeAdminPassword replaces the password of the admin in c; the admin's
// older tokens stop working (token version bumped).
func (s *Service) ChangeAdminPassword(ctx context.Context, c auth.Claims, old, pw string) error {
	const (
		qGet = `SELECT password_hash FROM admins WHERE id = ?`
		qSet = `UPDATE admins SET password_hash = ?, token_version = token_version + 1 WHERE id = ?`
	)
	if err := s.changePassword(ctx, "change admin password", qGet, qSet, c.Subject, old, pw); err != nil {
		return err
	}
	return s.announce(ctx, revocation.Admin, c.Subject)
}

// CreateAdmin adds a registrar account.
func (s *Service) CreateAdmin(ctx context.Context, username, pw string) error {
	if err := checkNewPassword("", pw); err != nil {
		return err
	}
	h, err := auth.HashPassword(pw, s.bcryptCost())
	if err != nil {
		return err
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO admins (username, password_hash) VALUES (?, ?)`, username, h); err != nil {
		if errors.Is(store.Interpret(err), store.ErrDuplicate) {
			return ErrAdminExists
		}
		return fmt.Errorf("create admin: %w", err)
	}
	return nil
}

// WindowView is one registration window. Year nil is every class year.
type WindowView struct {
	ID       int64     `json:"id,omitempty" db:"id"`
	Year     *int      `json:"year" db:"year"`
	OpensAt  time.Time `json:"opens_at" db:"opens_at"`
	ClosesAt time.Time `json:"closes_at" db:"closes_at"`
}

// Windows is the term's registration schedule.
type Windows struct {
	Term    string       `json:"term"`
	Open    bool         `json:"open"`     // the manual open flag (POST /admin/window)
	OpenNow []int        `json:"open_now"` // class years whose window is open now (all of 1..6 when no windows)
	Windows []WindowView `json:"windows"`
}

// Windows returns the term's windows and the open flag.
func (s *Service) Windows(ctx context.Context) (Windows, error) {
	w := Windows{Term: s.Term, Windows: []WindowView{}, OpenNow: []int{}}
	if err := s.DB.SelectContext(ctx, &w.Windows, `SELECT id, year, opens_at, closes_at FROM registration_windows WHERE term = ? ORDER BY opens_at, id`, s.Term); err != nil {
		return w, fmt.Errorf("read windows: %w", err)
	}
	open, err := s.Queue.IsOpen(ctx)
	if err != nil {
		return w, err
	}
	w.Open = open
	ws := make([]enroll.Window, len(w.Windows))
	for i, x := range w.Windows {
		y := 0
		if x.Year != nil {
			y = *x.Year
		}
		ws[i] = enroll.Window{Year: y, Opens: x.OpensAt, Closes: x.ClosesAt}
	}
	now := time.Now()
	for y := 1; y <= 6; y++ {
		if enroll.WindowOpen(ws, y, now) {
			w.OpenNow = append(w.OpenNow, y)
		}
	}
	return w, nil
}

// SetWindows replaces the term's windows in one transaction.
func (s *Service) SetWindows(ctx context.Context, ws []WindowView) error {
	for _, w := range ws {
		if !w.ClosesAt.After(w.OpensAt) || (w.Year != nil && (*w.Year < 1 || *w.Year > 6)) {
			return ErrBadWindow
		}
	}
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set windows: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM registration_windows WHERE term = ?`, s.Term); err != nil {
		return fmt.Errorf("set windows: %w", err)
	}
	for _, w := range ws {
		if _, err := tx.ExecContext(ctx, `INSERT INTO registration_windows (term, year, opens_at, closes_at) VALUES (?, ?, ?, ?)`,
			s.Term, w.Year, w.OpensAt.UTC(), w.ClosesAt.UTC()); err != nil {
			return fmt.Errorf("set windows: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set windows: %w", err)
	}
	s.InvalidateWindows()
	return nil
}

// AuditEntry is one request of a student as the registrar sees it.
type AuditEntry struct {
	RequestID int64      `json:"request_id" db:"id"`
	CourseID  int64      `json:"course_id" db:"course_id"`
	Code      string     `json:"code" db:"code"`
	Section   string     `json:"section" db:"section"`
	Ticket    int64      `json:"ticket" db:"ticket"`
	Status    string     `json:"status" db:"status"`
	Reason    string     `json:"reason,omitempty" db:"reason"`
	CreatedAt time.Time  `json:"created_at" db:"created_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty" db:"decided_at"`
}

// StudentAudit is everything recorded about one student's registration.
type StudentAudit struct {
	StudentID   int64            `json:"student_id"`
	StudentNo   string           `json:"student_no"`
	Name        string           `json:"name"`
	Requests    []AuditEntry     `json:"requests"`
	Drops       []AuditDrop      `json:"drops"`
	Promotions  []AuditPromotion `json:"waitlist_promotions"`
	Enrollments []int64          `json:"enrollments"`
}

// AuditDrop is one logged drop.
type AuditDrop struct {
	CourseID  int64     `json:"course_id" db:"course_id"`
	Code      string    `json:"code" db:"code"`
	Section   string    `json:"section" db:"section"`
	DroppedAt time.Time `json:"dropped_at" db:"dropped_at"`
}

// AuditPromotion is one waitlist examination of the student.
type AuditPromotion struct {
	CourseID  int64     `json:"course_id" db:"course_id"`
	Code      string    `json:"code" db:"code"`
	Section   string    `json:"section" db:"section"`
	Status    string    `json:"status" db:"status"`
	Reason    string    `json:"reason,omitempty" db:"reason"`
	Cause     string    `json:"cause" db:"cause"`
	DecidedAt time.Time `json:"decided_at" db:"decided_at"`
}

// Audit returns a student's requests (every decision, in ticket order),
// drops, waitlist promotions and current enrollments, from the primary.
func (s *Service) Audit(ctx context.Context, studentNo string) (StudentAudit, error) {
	a := StudentAudit{StudentNo: studentNo, Requests: []AuditEntry{}, Drops: []AuditDrop{}, Promotions: []AuditPromotion{}, Enrollments: []int64{}}
	var st struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	if err := s.DB.GetContext(ctx, &st, `SELECT id, name FROM students WHERE student_no = ?`, studentNo); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return a, ErrUnknownUser
		}
		return a, fmt.Errorf("audit: %w", err)
	}
	a.StudentID, a.Name = st.ID, st.Name
	if err := s.DB.SelectContext(ctx, &a.Requests, `SELECT r.id, r.course_id, COALESCE(c.code, '') AS code, COALESCE(c.section, '') AS section,
		r.ticket, r.status, r.reason, r.created_at, r.decided_at
		FROM enrollment_requests r LEFT JOIN courses c ON c.id = r.course_id WHERE r.student_id = ? ORDER BY r.ticket`, st.ID); err != nil {
		return a, fmt.Errorf("audit: requests: %w", err)
	}
	if err := s.DB.SelectContext(ctx, &a.Drops, `SELECT d.course_id, COALESCE(c.code, '') AS code, COALESCE(c.section, '') AS section, d.dropped_at
		FROM enrollment_drops d LEFT JOIN courses c ON c.id = d.course_id WHERE d.student_id = ? ORDER BY d.id`, st.ID); err != nil {
		return a, fmt.Errorf("audit: drops: %w", err)
	}
	if err := s.DB.SelectContext(ctx, &a.Promotions, `SELECT p.course_id, COALESCE(c.code, '') AS code, COALESCE(c.section, '') AS section,
		p.status, p.reason, p.cause, p.decided_at
		FROM waitlist_promotions p LEFT JOIN courses c ON c.id = p.course_id WHERE p.student_id = ? ORDER BY p.id`, st.ID); err != nil {
		return a, fmt.Errorf("audit: promotions: %w", err)
	}
	if err := s.DB.SelectContext(ctx, &a.Enrollments, `SELECT course_id FROM enrollments WHERE student_id = ? ORDER BY course_id`, st.ID); err != nil {
		return a, fmt.Errorf("audit: enrollments: %w", err)
	}
	return a, nil
}

// ExportEnrollments writes every enrollment as CSV (UTF-8, header row),
// streamed from the replica in student, course order.
func (s *Service) ExportEnrollments(ctx context.Context, w io.Writer) error {
	const q = `SELECT s.student_no, s.name, c.code, c.section, c.title, c.credits, e.created_at,
		IF(e.request_id IS NULL, 'waitlist', 'queue') AS via, COALESCE(e.request_id, 0)
		FROM enrollments e JOIN students s ON s.id = e.student_id JOIN courses c ON c.id = e.course_id
		ORDER BY s.student_no, c.code, c.section`
	rows, err := s.replica().QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("export enrollments: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"student_no", "name", "code", "section", "title", "credits", "enrolled_at", "via", "request_id"})
	for rows.Next() {
		var no, name, code, sec, title, via string
		var credits int
		var at time.Time
		var req int64
		if err := rows.Scan(&no, &name, &code, &sec, &title, &credits, &at, &via, &req); err != nil {
			return fmt.Errorf("export enrollments: %w", err)
		}
		reqS := ""
		if req > 0 {
			reqS = strconv.FormatInt(req, 10)
		}
		if err := cw.Write([]string{csvSafe(no), csvSafe(name), csvSafe(code), csvSafe(sec), csvSafe(title), strconv.Itoa(credits),
			at.UTC().Format(time.RFC3339), via, reqS}); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return rows.Err()
}

// csvSafe keeps a spreadsheet from running a value as a formula.
func csvSafe(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r') {
		return "'" + v
	}
	return v
}
