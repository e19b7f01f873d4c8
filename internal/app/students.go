package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/revocation"
)

// Errors of the student use cases.
var (
	ErrWeakPassword = errors.New("new password too short, too long or unchanged")
)

// Password rules: 8–72 bytes (bcrypt's limit), different from the old one.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

func (s *Service) bcryptCost() int {
	if s.BcryptCost == 0 {
		return 10
	}
	return s.BcryptCost
}

// ChangePassword replaces the student's password after checking the old one;
// it clears the must-change flag and bumps the token version, so every
// older token (this one too) stops working: SessionToken issues the next.
func (s *Service) ChangePassword(ctx context.Context, c auth.Claims, old, pw string) error {
	const (
		qGet = `SELECT password_hash FROM students WHERE id = ?`
		qSet = `UPDATE students SET password_hash = ?, must_change_password = 0, token_version = token_version + 1 WHERE id = ?`
	)
	if err := s.changePassword(ctx, "change password", qGet, qSet, c.Subject, old, pw); err != nil {
		return err
	}
	return s.announce(ctx, revocation.Student, c.Subject)
}

// changePassword checks old against the hash qGet reads for key, then
// stores the hash of pw with qSet (hash, key).
func (s *Service) changePassword(ctx context.Context, what, qGet, qSet string, key any, old, pw string) error {
	var hash string
	if err := s.DB.GetContext(ctx, &hash, qGet, key); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBadCredentials
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if !auth.CheckPassword(hash, old) {
		return ErrBadCredentials
	}
	if err := checkNewPassword(old, pw); err != nil {
		return err
	}
	h, err := auth.HashPassword(pw, s.bcryptCost())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := s.DB.ExecContext(ctx, qSet, h, key); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func checkNewPassword(old, pw string) error {
	if len(pw) > MaxPasswordLen || utf8.RuneCountInString(pw) < MinPasswordLen || pw == old || !utf8.ValidString(pw) {
		return ErrWeakPassword
	}
	return nil
}

// Me is the student's own record.
type Me struct {
	StudentID        int64  `json:"student_id" db:"id"`
	StudentNo        string `json:"student_no" db:"student_no"`
	Name             string `json:"name" db:"name"`
	Year             int    `json:"year" db:"year"`
	Department       string `json:"department" db:"department"`
	MaxCredits       int    `json:"max_credits" db:"max_credits"`
	Credits          int    `json:"credits" db:"credits"`
	RegistrationOpen bool   `json:"registration_open"` // the window flag is on and the student's window is open now
}

// Me returns the student's record, current credits and whether they may
// register now.
func (s *Service) Me(ctx context.Context, c auth.Claims) (Me, error) {
	const q = `SELECT s.id, s.student_no, s.name, s.year, s.department, s.max_credits,
		COALESCE((SELECT SUM(c.credits) FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.student_id = s.id), 0) AS credits
		FROM students s WHERE s.id = ?`
	var m Me
	if err := s.DB.GetContext(ctx, &m, q, c.Subject); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return m, enroll.ErrNotFound
		}
		return m, fmt.Errorf("read student %d: %w", c.Subject, err)
	}
	open, err := s.Queue.IsOpen(ctx)
	if err != nil {
		return m, err
	}
	ws, err := s.windows(ctx)
	if err != nil {
		return m, err
	}
	m.RegistrationOpen = open && enroll.WindowOpen(ws, m.Year, time.Now())
	return m, nil
}

// EnrollmentView is one of the student's enrollments.
type EnrollmentView struct {
	CourseView
	EnrolledAt time.Time `json:"enrolled_at" db:"enrolled_at"`
	Via        string    `json:"via" db:"via"` // "queue" or "waitlist"
}

// Enrollments returns the student's enrollments with course details, read
// from the primary so a decision just made is there.
func (s *Service) Enrollments(ctx context.Context, c auth.Claims) ([]EnrollmentView, error) {
	q := `SELECT ` + courseCols + `, e.created_at AS enrolled_at, IF(e.request_id IS NULL, 'waitlist', 'queue') AS via
		FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.student_id = ? ORDER BY c.code, c.section`
	out := []EnrollmentView{}
	if err := s.DB.SelectContext(ctx, &out, q, c.Subject); err != nil {
		return nil, fmt.Errorf("read enrollments: %w", err)
	}
	for i := range out {
		out[i].fill()
	}
	return out, nil
}

// TimetableSlot is one weekly meeting of an enrolled section.
type TimetableSlot struct {
	Slot
	CourseID int64  `json:"course_id" db:"course_id"`
	Code     string `json:"code" db:"code"`
	Section  string `json:"section" db:"section"`
	Title    string `json:"title" db:"title"`
	TitleEn  string `json:"title_en" db:"title_en"`
	Room     string `json:"room" db:"room"`
}

// Timetable is the weekly grid data of the student's enrollments.
type Timetable struct {
	Days     []string        `json:"days"`
	Slots    []TimetableSlot `json:"slots"`
	Unplaced []CourseView    `json:"unplaced"` // sections without fixed meetings (online)
	StartMin int             `json:"start_min"`
	EndMin   int             `json:"end_min"`
	Credits  int             `json:"credits"`
}

// Timetable returns the student's weekly grid: one slot per meeting, the
// range of minutes it spans (at least 09:00–18:00) and sections without
// meetings.
func (s *Service) Timetable(ctx context.Context, c auth.Claims) (Timetable, error) {
	const q = `SELECT m.day, m.start_min, m.end_min, c.id AS course_id, c.code, c.section, c.title, c.title_en, c.room
		FROM enrollments e JOIN courses c ON c.id = e.course_id JOIN course_meetings m ON m.course_id = c.id
		WHERE e.student_id = ? ORDER BY m.day, m.start_min`
	t := Timetable{Days: Days[:5], Slots: []TimetableSlot{}, Unplaced: []CourseView{}, StartMin: 9 * 60, EndMin: 18 * 60}
	if err := s.DB.SelectContext(ctx, &t.Slots, q, c.Subject); err != nil {
		return t, fmt.Errorf("read timetable: %w", err)
	}
	weekend := false
	for i := range t.Slots {
		sl := &t.Slots[i]
		sl.DayName = Days[sl.Day%7]
		t.StartMin = min(t.StartMin, sl.StartMin/60*60)
		t.EndMin = max(t.EndMin, (sl.EndMin+59)/60*60)
		weekend = weekend || sl.Day >= 5
	}
	if weekend {
		t.Days = Days
	}
	ens, err := s.Enrollments(ctx, c)
	if err != nil {
		return t, err
	}
	placed := map[int64]bool{}
	for _, sl := range t.Slots {
		placed[sl.CourseID] = true
	}
	for _, e := range ens {
		t.Credits += e.Credits
		if !placed[e.ID] {
			t.Unplaced = append(t.Unplaced, e.CourseView)
		}
	}
	return t, nil
}

// MyRequest is one of the student's enrollment requests.
type MyRequest struct {
	RequestView
	CourseLabel
	CreatedAt *time.Time `json:"created_at,omitempty"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
}

// pendingKey is the set of request ids the student was admitted with and
// that may still be waiting; admit.lua writes it in the same round trip as
// the admission. MariaDB holds every decided request, so the set only has to
// cover waiting ones (it is trimmed when read).
func (s *Service) pendingKey(student int64) string {
	return s.Queue.Keys().Mine(student)
}

// Requests returns the student's requests, newest first: those still waiting
// (from the queue, with their position) and every decided one (from
// MariaDB). Waiting ones are read first, so a request decided in between
// shows up as decided rather than not at all.
func (s *Service) Requests(ctx context.Context, c auth.Claims, limit int) ([]MyRequest, error) {
	rdb := s.Queue.Client()
	ids, err := rdb.SMembers(ctx, s.pendingKey(c.Subject)).Result()
	if err != nil {
		return nil, fmt.Errorf("read pending requests: %w", err)
	}
	byID := map[int64]MyRequest{}
	for _, v := range ids {
		id, _ := strconv.ParseInt(v, 10, 64)
		r, ahead, err := s.Queue.Lookup(ctx, id)
		if errors.Is(err, enroll.ErrNotFound) {
			rdb.SRem(ctx, s.pendingKey(c.Subject), v)
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.StudentID != c.Subject {
			continue
		}
		at := r.AdmittedAt
		byID[id] = MyRequest{RequestView: RequestView{RequestID: id, CourseID: r.CourseID, Ticket: r.Ticket,
			Status: enroll.StatusQueued, Position: ahead + 1}, CreatedAt: &at}
	}
	const q = `SELECT r.id, r.course_id, r.ticket, r.status, r.reason, r.created_at, r.decided_at
		FROM enrollment_requests r WHERE r.student_id = ? ORDER BY r.id DESC LIMIT ?`
	var rows []struct {
		ID        int64        `db:"id"`
		CourseID  int64        `db:"course_id"`
		Ticket    int64        `db:"ticket"`
		Status    string       `db:"status"`
		Reason    string       `db:"reason"`
		CreatedAt time.Time    `db:"created_at"`
		DecidedAt sql.NullTime `db:"decided_at"`
	}
	if err := s.DB.SelectContext(ctx, &rows, q, c.Subject, limit); err != nil {
		return nil, fmt.Errorf("read requests: %w", err)
	}
	for _, r := range rows {
		created := r.CreatedAt
		mr := MyRequest{RequestView: RequestView{RequestID: r.ID, CourseID: r.CourseID, Ticket: r.Ticket,
			Status: enroll.Status(r.Status), Reason: enroll.Reason(r.Reason)}, CreatedAt: &created}
		if r.DecidedAt.Valid {
			d := r.DecidedAt.Time
			mr.DecidedAt = &d
		}
		byID[r.ID] = mr
	}
	out := make([]MyRequest, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestID > out[j].RequestID })
	if len(out) > limit {
		out = out[:limit]
	}
	if err := labelCourses(ctx, s, out, func(r *MyRequest) (int64, *CourseLabel) { return r.CourseID, &r.CourseLabel }); err != nil {
		return nil, err
	}
	return out, nil
}

// CourseLabel names a section for the student: code, section number, title.
type CourseLabel struct {
	Code    string `json:"code"`
	Section string `json:"section"`
	Title   string `json:"title"`
}

// labelCourses fills the CourseLabel of each item (of returns its course
// and label) with one query.
func labelCourses[T any](ctx context.Context, s *Service, items []T, of func(*T) (int64, *CourseLabel)) error {
	ids := map[int64]bool{}
	for i := range items {
		id, _ := of(&items[i])
		ids[id] = true
	}
	names, err := s.courseNames(ctx, ids)
	if err != nil {
		return err
	}
	for i := range items {
		id, l := of(&items[i])
		n := names[id]
		*l = CourseLabel{Code: n.Code, Section: n.Section, Title: n.Title}
	}
	return nil
}

type courseName struct {
	ID      int64  `db:"id"`
	Code    string `db:"code"`
	Section string `db:"section"`
	Title   string `db:"title"`
	TitleEn string `db:"title_en"`
}

func (s *Service) courseNames(ctx context.Context, ids map[int64]bool) (map[int64]courseName, error) {
	out := map[int64]courseName{}
	if len(ids) == 0 {
		return out, nil
	}
	list := make([]int64, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	q, args, err := sqlxIn(`SELECT id, code, section, title, title_en FROM courses WHERE id IN (?)`, list)
	if err != nil {
		return nil, err
	}
	var rows []courseName
	if err := s.DB.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("read course names: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}
