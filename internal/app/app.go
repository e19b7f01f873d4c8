// Package app holds EnrollQ's use cases — log in, ask for a seat, watch a
// request, leave the line, drop a course, open the window — over the domain
// packages. It knows nothing of HTTP or WebSocket: cmd/api and cmd/queue-ws
// translate to and from it.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/revocation"
	"github.com/enrollq/enrollq/internal/seat"
)

// Errors of the use cases not already defined by the domain packages.
var (
	ErrBadCredentials = errors.New("bad credentials")
	ErrBadInput       = errors.New("bad input")
)

// Service implements the use cases.
type Service struct {
	DB      *sqlx.DB // primary
	Replica *sqlx.DB // read replica (falls back to DB when nil)
	Queue   *queue.Redis
	Store   *enroll.Store
	Signer  *auth.Signer

	TokenTTL      time.Duration
	WSTokenTTL    time.Duration
	CancelLease   time.Duration
	AdminUser     string
	AdminPassword string
	BcryptCost    int          // password hashing cost (config.BcryptCost)
	Term          string       // the term being registered (Redis key space of app hints)
	Log           *slog.Logger // nil: slog.Default()

	// Versions checks and bumps token versions (nil: not checked; see
	// internal/revocation). Dev: development mode (config.Dev), where the
	// bootstrap admin may have the public dev password.
	Versions *revocation.Versions
	Dev      bool
	sec      securityState

	winMu    sync.Mutex
	winAt    time.Time
	winCache []enroll.Window

	resumeMu   sync.Mutex
	resumeSeen string // the running draw as ResumeOpening last saw it

	stats statsState
}

// Login checks a student's number and password and returns an access token.
// The lookup compares as MariaDB's collation does (case and trailing spaces
// ignored); the token carries the canonical student number of the row, its
// token version and, while the password is still the initial one, the
// must-change flag. An unknown student number costs the same bcrypt check
// as a known one (a dummy hash of the configured cost).
func (s *Service) Login(ctx context.Context, studentNo, password string) (string, auth.Claims, error) {
	const q = `SELECT id, student_no, year, password_hash, token_version, must_change_password FROM students WHERE student_no = ?`
	var row struct {
		ID         int64  `db:"id"`
		StudentNo  string `db:"student_no"`
		Year       int    `db:"year"`
		Hash       string `db:"password_hash"`
		Version    int64  `db:"token_version"`
		MustChange bool   `db:"must_change_password"`
	}
	if err := s.DB.GetContext(ctx, &row, q, studentNo); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			s.checkPassword(s.dummyHash(), password)
			return "", auth.Claims{}, ErrBadCredentials
		}
		return "", auth.Claims{}, fmt.Errorf("login: read student: %w", err)
	}
	if !s.checkPassword(row.Hash, password) {
		return "", auth.Claims{}, ErrBadCredentials
	}
	c := auth.Claims{Kind: auth.KindStudent, Subject: row.ID, StudentNo: row.StudentNo, Year: row.Year,
		Version: row.Version, MustChange: row.MustChange}
	return s.Signer.Issue(c, s.TokenTTL), c, nil
}

// WSToken returns a short-lived token for a queue-ws connection of student.
func (s *Service) WSToken(c auth.Claims) string {
	return s.Signer.Issue(auth.Claims{Kind: auth.KindWS, Subject: c.Subject, StudentNo: c.StudentNo, Version: c.Version}, s.WSTokenTTL)
}

// Admitted is the answer to an accepted enrollment request.
type Admitted struct {
	RequestID int64  `json:"request_id"`
	Ticket    int64  `json:"ticket"`
	Position  int64  `json:"position"`
	WSToken   string `json:"ws_token"`

	// Before the window opens, with the pre-queue open: the request is a
	// pre-queue entry (no ticket yet; the draw at the opening gives it one).
	Prequeued bool  `json:"-"`
	Entries   int64 `json:"-"` // the student's entries
	Students  int64 `json:"-"` // students in the pre-queue

	// Replayed: the Idempotency-Key had an answer; this is the original.
	Replayed bool `json:"-"`
}

func (s *Service) windows(ctx context.Context) ([]enroll.Window, error) {
	s.winMu.Lock()
	defer s.winMu.Unlock()
	if time.Since(s.winAt) < 2*time.Second {
		return s.winCache, nil
	}
	ws, err := s.Store.Windows(ctx)
	if err != nil {
		return nil, err
	}
	s.winCache, s.winAt = ws, time.Now()
	return ws, nil
}

// InvalidateWindows drops the cached registration windows.
func (s *Service) InvalidateWindows() {
	s.winMu.Lock()
	s.winAt = time.Time{}
	s.winMu.Unlock()
}

// Enroll admits a request of the student in c for course into the line,
// counting it against budget too (the caller's per-address budget, counted in
// the same Redis round trip; the zero Limit is none).
func (s *Service) Enroll(ctx context.Context, c auth.Claims, course int64, budget queue.Limit) (Admitted, error) {
	return s.EnrollKeyed(ctx, c, course, budget, "")
}

// EnrollKeyed is Enroll for a request carrying an Idempotency-Key (idemKey,
// "" for none; validated by the caller): a retry under the same key gets the
// original answer (Admitted.Replayed, also for a refusal: see
// queue.Redis.AdmitKeyed).
//
// "Already enrolled" is only ever said when MariaDB says so (law 7): the
// enrolled hint in Redis may be stale (an ack that ran after a drop, a hint
// update lost with Redis), so a refusal from the hint is checked against
// MariaDB, and a wrong hint is rebuilt from MariaDB and the admission tried
// again.
func (s *Service) EnrollKeyed(ctx context.Context, c auth.Claims, course int64, budget queue.Limit, idemKey string) (Admitted, error) {
	if course <= 0 {
		return Admitted{}, fmt.Errorf("course_id must be a positive integer: %w", ErrBadInput)
	}
	ws, err := s.windows(ctx)
	if err != nil {
		return Admitted{}, err
	}
	if !enroll.WindowOpen(ws, c.Year, time.Now()) {
		return Admitted{}, enroll.ErrWindowClosed
	}
	a, err := s.Queue.AdmitKeyed(ctx, c.Subject, course, budget, idemKey)
	if errors.Is(err, enroll.ErrUnknownCourse) {
		// No hint: the course may be unknown, closed, or new since the last
		// reconciliation. MariaDB decides which.
		if err := s.refreshHint(ctx, course); err != nil {
			return Admitted{}, err
		}
		// The first call already charged the address's budget.
		a, err = s.Queue.AdmitKeyed(ctx, c.Subject, course, queue.Limit{}, idemKey)
	}
	if errors.Is(err, enroll.ErrAlreadyEnrolled) {
		enrolled, cerr := s.confirmEnrolled(ctx, c.Subject, course)
		if cerr != nil {
			return Admitted{}, cerr
		}
		if !enrolled {
			a, err = s.Queue.AdmitKeyed(ctx, c.Subject, course, queue.Limit{}, idemKey)
		}
	}
	if err != nil {
		return Admitted{Replayed: a.Replayed}, err
	}
	if a.Prequeued {
		return Admitted{Prequeued: true, Entries: a.Entries, Students: a.Students, WSToken: s.WSToken(c), Replayed: a.Replayed}, nil
	}
	return Admitted{RequestID: a.RequestID, Ticket: a.Ticket, Position: a.Ahead + 1, WSToken: s.WSToken(c), Replayed: a.Replayed}, nil
}

// confirmEnrolled reads from MariaDB whether student is enrolled in course,
// and rebuilds the student's enrolled hint from what it read.
func (s *Service) confirmEnrolled(ctx context.Context, student, course int64) (bool, error) {
	cs, err := s.Store.EnrolledCourses(ctx, student)
	if err != nil {
		return false, err
	}
	if err := s.Queue.SetEnrolledHint(ctx, student, cs); err != nil {
		return false, err
	}
	return slices.Contains(cs, course), nil
}

func (s *Service) refreshHint(ctx context.Context, course int64) error {
	sc, err := s.resetHint(ctx, course)
	if err != nil {
		return err
	}
	if !sc.Open {
		return enroll.ErrCourseClosed
	}
	return nil
}

// resetHint resets one section's seat hint from MariaDB (dropped for a
// closed section), unless a drop or raise reached it meanwhile.
func (s *Service) resetHint(ctx context.Context, course int64) (enroll.SeatCount, error) {
	gen, err := s.Queue.GenerationOf(ctx, course)
	if err != nil {
		return enroll.SeatCount{}, err
	}
	const q = `SELECT id, capacity, enrolled, (is_open = 1 AND deleted_at IS NULL) AS open FROM courses WHERE id = ?`
	var sc enroll.SeatCount
	if err := s.DB.GetContext(ctx, &sc, q, course); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return sc, enroll.ErrUnknownCourse
		}
		return sc, fmt.Errorf("read course %d: %w", course, err)
	}
	return sc, s.Queue.ReconcileSeen(ctx, []enroll.SeatCount{sc}, map[int64]int64{course: gen}, 0)
}

// RequestView is what a student sees of one request.
type RequestView struct {
	RequestID int64         `json:"request_id"`
	CourseID  int64         `json:"course_id"`
	Ticket    int64         `json:"ticket"`
	Status    enroll.Status `json:"status"`
	Position  int64         `json:"position"`
	Reason    enroll.Reason `json:"reason,omitempty"`
}

// Request returns the state of one of the student's requests. Undecided
// requests are read from the line (with their position), decided ones from
// MariaDB, which is written before the line forgets them.
func (s *Service) Request(ctx context.Context, c auth.Claims, id int64) (RequestView, error) {
	r, ahead, err := s.Queue.Lookup(ctx, id)
	if err == nil {
		if r.StudentID != c.Subject {
			return RequestView{}, enroll.ErrForbidden
		}
		return RequestView{RequestID: id, CourseID: r.CourseID, Ticket: r.Ticket, Status: enroll.StatusQueued, Position: ahead + 1}, nil
	}
	if !errors.Is(err, enroll.ErrNotFound) {
		return RequestView{}, err
	}
	d, err := s.Store.Decision(ctx, id)
	if err != nil {
		return RequestView{}, err
	}
	if d.StudentID != c.Subject {
		return RequestView{}, enroll.ErrForbidden
	}
	return RequestView{RequestID: id, CourseID: d.CourseID, Ticket: d.Ticket, Status: d.Status, Reason: d.Reason}, nil
}

// Cancel takes one of the student's waiting requests out of the line and
// records it as cancelled.
func (s *Service) Cancel(ctx context.Context, c auth.Claims, id int64) (RequestView, error) {
	r, err := s.Queue.Cancel(ctx, id, c.Subject, s.CancelLease)
	if errors.Is(err, enroll.ErrNotFound) {
		// Decided already, or never existed: report what MariaDB knows.
		v, verr := s.Request(ctx, c, id)
		if verr != nil {
			return RequestView{}, verr
		}
		return v, enroll.ErrTooLate
	}
	if err != nil {
		return RequestView{}, err
	}
	d, err := s.Store.RecordCancellation(ctx, r)
	if err != nil {
		return RequestView{}, err // the lease runs out and recovery decides it as cancelled
	}
	if err := s.Queue.Ack(ctx, []enroll.Decision{d}); err != nil {
		return RequestView{}, err
	}
	return RequestView{RequestID: id, CourseID: d.CourseID, Ticket: d.Ticket, Status: d.Status, Reason: d.Reason}, nil
}

// SetWindow opens or closes registration for the term and reports whether
// the window is open afterwards. Opening draws the pre-queue first, if
// there is one: its entries get their tickets before anyone else can get
// one (arrivals meanwhile are told the window is opening). An interrupted
// opening is resumed by opening again. Closing while an opening draws lets
// the draw finish (its entries keep their places in line) and keeps the
// window closed after it: the registrar's last word wins.
func (s *Service) SetWindow(ctx context.Context, open bool) (bool, error) {
	if !open {
		return false, s.Queue.SetOpen(ctx, false)
	}
	if err := s.Queue.WantOpen(ctx, true); err != nil {
		return false, err
	}
	return s.finishOpening(ctx)
}

// finishOpening reconciles the seat hints, draws the pre-queue (or joins
// its draw) and opens the window unless the registrar has closed it since.
func (s *Service) finishOpening(ctx context.Context) (bool, error) {
	t0 := time.Now()
	// Make sure hints exist before the first request arrives.
	if err := s.Reconcile(ctx); err != nil {
		return false, err
	}
	t1 := time.Now()
	drawn, err := s.draw(ctx)
	if err != nil {
		return false, err
	}
	t2 := time.Now()
	defer func() {
		// Where an opening's time goes (the registrar waits for all of it).
		s.log().Info("opening", "reconcile", t1.Sub(t0).Round(time.Millisecond), "draw", t2.Sub(t1).Round(time.Millisecond),
			"open_and_notice", time.Since(t2).Round(time.Millisecond))
	}()
	opened, err := s.Queue.OpenAsWanted(ctx)
	if err != nil || !opened {
		if err == nil {
			s.log().Warn("pre-queue drawn; the window stays closed: the registrar closed it during the draw")
		}
		return false, err
	}
	// Tell the pages waiting for the draw (queue-ws forwards it).
	return true, s.Queue.PublishOpened(ctx, drawn.Students)
}

// Reconcile resets the seat hints and the ticket floor from MariaDB.
func (s *Service) Reconcile(ctx context.Context) error {
	return seat.Reconcile(ctx, s.Store, s.Queue)
}
