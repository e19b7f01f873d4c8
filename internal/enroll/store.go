package enroll

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/store"
)

// Store decides requests in MariaDB, the source of truth. Every decision is
// taken inside one transaction that holds the row locks of the sections and
// students involved, so two deciders running at once can never oversell.
type Store struct {
	db   *sqlx.DB
	term string
	now  func() time.Time
}

// NewStore returns a Store for term on db (the primary).
func NewStore(db *sqlx.DB, term string) *Store {
	return &Store{db: db, term: term, now: func() time.Time { return time.Now().UTC() }}
}

// DB returns the underlying connection pool.
func (s *Store) DB() *sqlx.DB { return s.db }

const maxTxAttempts = 8

// DecideBatch decides reqs in ticket order in one transaction and returns one
// decision per request. Requests already decided (a replay after a crash
// between commit and ack, or a racing decider) keep their recorded decision
// and are not applied again.
func (s *Store) DecideBatch(ctx context.Context, reqs []Request) ([]Decision, error) {
	return s.DecideFenced(ctx, reqs, 0, nil)
}

// DecideFenced is DecideBatch by the drain leader holding fence (0: no
// fence, as for a student's own cancellation). The transaction first checks
// and locks the term's row of drain_fences: a fence other than the current
// one fails with ErrFenced and nothing is written, so a former leader's
// commit is refused by MariaDB itself. beforeCommit, when set, gets the
// batch's new decisions after the rules ran and before the rows are written
// and committed (the scheduler's pre-ack: queue.Redis.PreAck); its error
// rolls the transaction back. Fresh decisions carry the time after it
// returned, so a decision is never recorded as earlier than the hints knew
// of it.
func (s *Store) DecideFenced(ctx context.Context, reqs []Request, fence int64, beforeCommit func(context.Context, []Decision) error) ([]Decision, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	reqs = append([]Request(nil), reqs...)
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].Ticket < reqs[j].Ticket })
	var lastErr error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		out, err := s.decideOnce(ctx, reqs, fence, beforeCommit)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, store.ErrDeadlock) && !errors.Is(err, store.ErrDuplicate) {
			return nil, err
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("decide batch: giving up after %d attempts: %w", maxTxAttempts, lastErr)
}

type courseRow struct {
	ID        int64        `db:"id"`
	Code      string       `db:"code"`
	Credits   int          `db:"credits"`
	Capacity  int          `db:"capacity"`
	Enrolled  int          `db:"enrolled"`
	IsOpen    bool         `db:"is_open"`
	DeletedAt sql.NullTime `db:"deleted_at"`
}

type studentRow struct {
	ID         int64 `db:"id"`
	Year       int   `db:"year"`
	MaxCredits int   `db:"max_credits"`
}

type meetingRow struct {
	CourseID int64 `db:"course_id"`
	Day      int   `db:"day"`
	Start    int   `db:"start_min"`
	End      int   `db:"end_min"`
}

func (s *Store) decideOnce(ctx context.Context, reqs []Request, fence int64, beforeCommit func(context.Context, []Decision) error) (_ []Decision, err error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("decide batch: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if fence > 0 {
		if err := checkFence(ctx, tx, s.term, fence); err != nil {
			return nil, err
		}
	}
	now := s.now()

	ids := make([]int64, len(reqs))
	courseSet := map[int64]bool{}
	studentSet := map[int64]bool{}
	for i, r := range reqs {
		ids[i] = r.ID
		courseSet[r.CourseID] = true
		studentSet[r.StudentID] = true
	}

	// 1. Decisions already recorded (replays) are returned as they are.
	const qPrior = `SELECT id, student_id, course_id, ticket, status, reason, COALESCE(decided_at, created_at) AS decided_at
		FROM enrollment_requests WHERE id IN (?) FOR UPDATE`
	var prior []Decision
	if err := inSelect(ctx, tx, &prior, qPrior, ids); err != nil {
		return nil, fmt.Errorf("decide batch: read prior decisions: %w", err)
	}
	priorBy := make(map[int64]Decision, len(prior))
	for _, p := range prior {
		priorBy[p.RequestID] = p
	}

	// 2. Lock the sections, then the students, always in id order.
	const qCourses = `SELECT id, code, credits, capacity, enrolled, is_open, deleted_at
		FROM courses WHERE id IN (?) ORDER BY id FOR UPDATE`
	var crs []courseRow
	if err := inSelect(ctx, tx, &crs, qCourses, keys(courseSet)); err != nil {
		return nil, fmt.Errorf("decide batch: lock courses: %w", err)
	}
	const qStudents = `SELECT id, year, max_credits FROM students WHERE id IN (?) ORDER BY id FOR UPDATE`
	var sts []studentRow
	if err := inSelect(ctx, tx, &sts, qStudents, keys(studentSet)); err != nil {
		return nil, fmt.Errorf("decide batch: lock students: %w", err)
	}

	// 3. Current enrollments of those students, and meetings of every section involved.
	const qEnrolled = `SELECT e.student_id, c.id, c.code, c.credits
		FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.student_id IN (?)`
	var enr []struct {
		StudentID int64  `db:"student_id"`
		ID        int64  `db:"id"`
		Code      string `db:"code"`
		Credits   int    `db:"credits"`
	}
	if err := inSelect(ctx, tx, &enr, qEnrolled, keys(studentSet)); err != nil {
		return nil, fmt.Errorf("decide batch: read enrollments: %w", err)
	}
	meetSet := map[int64]bool{}
	for id := range courseSet {
		meetSet[id] = true
	}
	for _, e := range enr {
		meetSet[e.ID] = true
	}
	const qMeetings = `SELECT course_id, day, start_min, end_min FROM course_meetings WHERE course_id IN (?)`
	var mts []meetingRow
	if err := inSelect(ctx, tx, &mts, qMeetings, keys(meetSet)); err != nil {
		return nil, fmt.Errorf("decide batch: read meetings: %w", err)
	}
	windows, err := s.windows(ctx, tx)
	if err != nil {
		return nil, err
	}

	meetings := map[int64][]Meeting{}
	for _, m := range mts {
		meetings[m.CourseID] = append(meetings[m.CourseID], Meeting{Day: m.Day, Start: m.Start, End: m.End})
	}
	courses := make(map[int64]*Course, len(crs))
	for _, c := range crs {
		courses[c.ID] = &Course{ID: c.ID, Code: c.Code, Credits: c.Credits, Capacity: c.Capacity,
			Enrolled: c.Enrolled, Open: c.IsOpen && !c.DeletedAt.Valid, Meetings: meetings[c.ID]}
	}
	students := make(map[int64]*Student, len(sts))
	for _, st := range sts {
		students[st.ID] = &Student{ID: st.ID, Year: st.Year, MaxCredits: st.MaxCredits}
	}
	for _, e := range enr {
		if st := students[e.StudentID]; st != nil {
			st.Enrolled = append(st.Enrolled, Course{ID: e.ID, Code: e.Code, Credits: e.Credits, Meetings: meetings[e.ID]})
		}
	}

	// 4. Apply the rules in ticket order.
	out := make([]Decision, 0, len(reqs))
	var fresh []Decision
	var freshAt []int // indexes of fresh's decisions in out
	changed := map[int64]bool{}
	for _, r := range reqs {
		if p, ok := priorBy[r.ID]; ok && p.Status.Final() {
			out = append(out, p)
			continue
		}
		d := Decision{RequestID: r.ID, StudentID: r.StudentID, CourseID: r.CourseID, Ticket: r.Ticket, DecidedAt: now}
		c, st := courses[r.CourseID], students[r.StudentID]
		switch {
		case r.Cancelled:
			d.Status = StatusCancelled
		case c == nil:
			d.Status, d.Reason = StatusRejected, ReasonUnknownCourse
		case st == nil:
			d.Status, d.Reason = StatusRejected, ReasonUnknownStudent
		case !WindowOpen(windows, st.Year, r.AdmittedAt):
			d.Status, d.Reason = StatusRejected, ReasonWindowClosed
		default:
			if reason := Check(*st, *c); reason != ReasonNone {
				d.Status, d.Reason = StatusRejected, reason
			} else {
				d.Status = StatusEnrolled
				c.Enrolled++
				changed[c.ID] = true
				st.Enrolled = append(st.Enrolled, *c)
			}
		}
		out = append(out, d)
		fresh = append(fresh, d)
		freshAt = append(freshAt, len(out)-1)
	}

	// 5. Tell the hints (pre-ack), then write enrollments, seat counts and
	// decisions, stamped after the hints knew.
	if beforeCommit != nil && len(fresh) > 0 {
		if err := beforeCommit(ctx, fresh); err != nil {
			return nil, fmt.Errorf("decide batch: before commit: %w", err)
		}
		now = s.now()
		for i := range fresh {
			fresh[i].DecidedAt = now
		}
		for _, i := range freshAt {
			out[i].DecidedAt = now
		}
	}
	if err := insertEnrollments(ctx, tx, fresh); err != nil {
		return nil, err
	}
	if err := updateEnrolled(ctx, tx, courses, changed); err != nil {
		return nil, err
	}
	if err := insertDecisions(ctx, tx, fresh, reqs); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("decide batch: commit: %w", store.Interpret(err))
	}
	return out, nil
}

func insertEnrollments(ctx context.Context, tx *sqlx.Tx, ds []Decision) error {
	var sb strings.Builder
	args := make([]any, 0, len(ds)*3)
	for _, d := range ds {
		if d.Status != StatusEnrolled {
			continue
		}
		if len(args) > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?)")
		args = append(args, d.StudentID, d.CourseID, d.RequestID)
	}
	if len(args) == 0 {
		return nil
	}
	q := "INSERT INTO enrollments (student_id, course_id, request_id) VALUES " + sb.String()
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("decide batch: insert enrollments: %w", store.Interpret(err))
	}
	return nil
}

func updateEnrolled(ctx context.Context, tx *sqlx.Tx, courses map[int64]*Course, changed map[int64]bool) error {
	if len(changed) == 0 {
		return nil
	}
	var sb strings.Builder
	args := make([]any, 0, len(changed)*3)
	ids := keys(changed)
	sb.WriteString("UPDATE courses SET enrolled = CASE id")
	for _, id := range ids {
		sb.WriteString(" WHEN ? THEN ?")
		args = append(args, id, courses[id].Enrolled)
	}
	sb.WriteString(" END WHERE id IN (")
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('?')
		args = append(args, id)
	}
	sb.WriteByte(')')
	if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("decide batch: update seat counts: %w", store.Interpret(err))
	}
	return nil
}

func insertDecisions(ctx context.Context, tx *sqlx.Tx, ds []Decision, reqs []Request) error {
	if len(ds) == 0 {
		return nil
	}
	admitted := make(map[int64]time.Time, len(reqs))
	for _, r := range reqs {
		admitted[r.ID] = r.AdmittedAt
	}
	var sb strings.Builder
	args := make([]any, 0, len(ds)*8)
	for i, d := range ds {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?)")
		created := admitted[d.RequestID]
		if created.IsZero() {
			created = d.DecidedAt
		}
		args = append(args, d.RequestID, d.StudentID, d.CourseID, d.Ticket, string(d.Status), string(d.Reason), created, d.DecidedAt)
	}
	q := "INSERT INTO enrollment_requests (id, student_id, course_id, ticket, status, reason, created_at, decided_at) VALUES " + sb.String()
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("decide batch: record decisions: %w", store.Interpret(err))
	}
	return nil
}

func (s *Store) windows(ctx context.Context, q sqlx.QueryerContext) ([]Window, error) {
	const qWindows = `SELECT COALESCE(year, 0) AS year, opens_at, closes_at FROM registration_windows WHERE term = ?`
	var rows []struct {
		Year   int       `db:"year"`
		Opens  time.Time `db:"opens_at"`
		Closes time.Time `db:"closes_at"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, qWindows, s.term); err != nil {
		return nil, fmt.Errorf("read registration windows: %w", err)
	}
	ws := make([]Window, len(rows))
	for i, r := range rows {
		ws[i] = Window{Year: r.Year, Opens: r.Opens, Closes: r.Closes}
	}
	return ws, nil
}

// Windows returns the term's registration windows.
func (s *Store) Windows(ctx context.Context) ([]Window, error) { return s.windows(ctx, s.db) }

// Decisions returns the recorded decisions among ids.
func (s *Store) Decisions(ctx context.Context, ids []int64) ([]Decision, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	const q = `SELECT id, student_id, course_id, ticket, status, reason, COALESCE(decided_at, created_at) AS decided_at
		FROM enrollment_requests WHERE id IN (?)`
	var out []Decision
	if err := inSelect(ctx, s.db, &out, q, ids); err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	return out, nil
}

// Decision returns the decision of one request, or ErrNotFound.
func (s *Store) Decision(ctx context.Context, id int64) (Decision, error) {
	ds, err := s.Decisions(ctx, []int64{id})
	if err != nil {
		return Decision{}, err
	}
	if len(ds) == 0 {
		return Decision{}, fmt.Errorf("request %d: %w", id, ErrNotFound)
	}
	return ds[0], nil
}

// RecordCancellation writes a cancelled decision for r unless it already has
// one, and returns the recorded decision.
func (s *Store) RecordCancellation(ctx context.Context, r Request) (Decision, error) {
	r.Cancelled = true
	ds, err := s.DecideBatch(ctx, []Request{r})
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// Drop removes the student's enrollment in course and frees the seat in the
// same transaction. It returns ErrNotEnrolled when there is nothing to drop.
// The freed seat goes to the first eligible waitlisted student in the same
// transaction (DropPromote, which also says who got it).
func (s *Store) Drop(ctx context.Context, studentID, courseID int64) error {
	_, err := s.DropPromote(ctx, studentID, courseID)
	return err
}

func (s *Store) dropOnce(ctx context.Context, studentID, courseID int64, hints HintSink) (promoted []Promotion, err error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("drop: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	const qLockCourse = `SELECT id FROM courses WHERE id = ? FOR UPDATE`
	var id int64
	if err := tx.GetContext(ctx, &id, qLockCourse, courseID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("drop course %d: %w", courseID, ErrNotEnrolled)
		}
		return nil, fmt.Errorf("drop: lock course: %w", store.Interpret(err))
	}
	const qLockStudent = `SELECT id FROM students WHERE id = ? FOR UPDATE`
	if err := tx.GetContext(ctx, &id, qLockStudent, studentID); err != nil {
		return nil, fmt.Errorf("drop: lock student: %w", store.Interpret(err))
	}
	const qEnrollment = `SELECT COALESCE(request_id, 0) FROM enrollments WHERE student_id = ? AND course_id = ? FOR UPDATE`
	var requestID int64
	if err := tx.GetContext(ctx, &requestID, qEnrollment, studentID, courseID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("drop course %d: %w", courseID, ErrNotEnrolled)
		}
		return nil, fmt.Errorf("drop: read enrollment: %w", store.Interpret(err))
	}
	const qDelete = `DELETE FROM enrollments WHERE student_id = ? AND course_id = ?`
	if _, err := tx.ExecContext(ctx, qDelete, studentID, courseID); err != nil {
		return nil, fmt.Errorf("drop: delete enrollment: %w", store.Interpret(err))
	}
	const qFree = `UPDATE courses SET enrolled = enrolled - 1 WHERE id = ?`
	if _, err := tx.ExecContext(ctx, qFree, courseID); err != nil {
		return nil, fmt.Errorf("drop: free seat: %w", store.Interpret(err))
	}
	if promoted, err = PromoteWaitlist(ctx, tx, courseID, CauseDrop, s.now()); err != nil {
		return nil, err
	}
	if hints != nil {
		h := DropHint{StudentID: studentID, CourseID: courseID, RequestID: requestID, SeatsFreed: 1 - len(Enrolled(promoted))}
		if err := hints.Dropping(ctx, h); err != nil {
			return nil, fmt.Errorf("drop: %w", err)
		}
	}
	// Logged after the hints knew: the drop is never recorded as earlier
	// than the seat was back for admission (the law 7 check reads this).
	const qLog = `INSERT INTO enrollment_drops (student_id, course_id, dropped_at) VALUES (?, ?, ?)`
	if _, err := tx.ExecContext(ctx, qLog, studentID, courseID, s.now()); err != nil {
		return nil, fmt.Errorf("drop: log: %w", store.Interpret(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("drop: commit: %w", store.Interpret(err))
	}
	return promoted, nil
}

// SeatCount is a section's seats as MariaDB records them.
type SeatCount struct {
	ID       int64 `db:"id"`
	Capacity int   `db:"capacity"`
	Enrolled int   `db:"enrolled"`
	Open     bool  `db:"open"`
}

// Seats returns every section's capacity and enrollment, for the seat hints.
func (s *Store) Seats(ctx context.Context) ([]SeatCount, error) {
	const q = `SELECT id, capacity, enrolled, (is_open = 1 AND deleted_at IS NULL) AS open FROM courses`
	var out []SeatCount
	if err := s.db.SelectContext(ctx, &out, q); err != nil {
		return nil, fmt.Errorf("read seat counts: %w", err)
	}
	return out, nil
}

// MaxRequestID returns the highest request id recorded, so the ticket counter
// can never hand out an id twice even if Redis lost data.
func (s *Store) MaxRequestID(ctx context.Context) (int64, error) {
	const q = `SELECT COALESCE(MAX(id), 0) FROM enrollment_requests`
	var n int64
	if err := s.db.GetContext(ctx, &n, q); err != nil {
		return 0, fmt.Errorf("read max request id: %w", err)
	}
	return n, nil
}

// EnrolledCourses returns the ids of the sections a student is enrolled in.
func (s *Store) EnrolledCourses(ctx context.Context, studentID int64) ([]int64, error) {
	const q = `SELECT course_id FROM enrollments WHERE student_id = ? ORDER BY course_id`
	var out []int64
	if err := s.db.SelectContext(ctx, &out, q, studentID); err != nil {
		return nil, fmt.Errorf("read enrollments of student %d: %w", studentID, err)
	}
	return out, nil
}

func inSelect[T any](ctx context.Context, q sqlx.QueryerContext, dest *[]T, query string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	qs, args, err := sqlx.In(query, ids)
	if err != nil {
		return err
	}
	return store.Interpret(sqlx.SelectContext(ctx, q, dest, qs, args...))
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
