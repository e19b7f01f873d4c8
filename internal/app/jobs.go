package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/catalog"
)

// Import kinds.
const (
	ImportCatalog  = "catalog"
	ImportStudents = "students"
)

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// ErrInvalidFile wraps the row errors of an import file that failed
// validation; nothing was imported.
var ErrInvalidFile = errors.New("the import file has errors; nothing was imported")

// ImportErrors carries every bad row of a refused import.
type ImportErrors struct{ Rows []catalog.RowError }

func (e *ImportErrors) Error() string {
	return fmt.Sprintf("%d bad rows; nothing imported", len(e.Rows))
}
func (e *ImportErrors) Unwrap() error { return ErrInvalidFile }

// ErrNoJob is returned for an unknown or expired job id.
var ErrNoJob = errors.New("no such import job")

// Job is an import running (or run) in the background. Jobs live in Redis
// for a day, so any API instance can report on any job.
type Job struct {
	ID         string             `json:"id"`
	Kind       string             `json:"kind"`
	State      string             `json:"state"` // running | done | failed
	Done       int                `json:"done"`
	Total      int                `json:"total"`
	CreatedAt  time.Time          `json:"created_at"`
	FinishedAt *time.Time         `json:"finished_at,omitempty"`
	Result     *ImportSummary     `json:"result,omitempty"`
	Errors     []catalog.RowError `json:"errors,omitempty"` // rows refused against the database (nothing imported)
	Error      string             `json:"error,omitempty"`  // any other failure
	Promotions int                `json:"waitlist_promotions,omitempty"`
}

// ImportSummary counts what an import wrote.
type ImportSummary struct {
	Total      int   `json:"total"`
	Inserted   int   `json:"inserted"`
	Updated    int   `json:"updated"`
	Unchanged  int   `json:"unchanged"`
	Meetings   int   `json:"meetings"`
	DurationMS int64 `json:"duration_ms"`
}

const jobTTL = 24 * time.Hour

func (s *Service) jobKey(id string) string { return "eqjob:{" + s.Term + "}:" + id }

// StartImport validates an uploaded CSV file of kind (catalog or students)
// at once — a bad file returns *ImportErrors listing every bad row and
// imports nothing — and otherwise imports it in the background, returning
// the job to poll. initialPassword is required for students.
func (s *Service) StartImport(kind string, data []byte, initialPassword string) (Job, error) {
	var run func(ctx context.Context, progress func(done, total int)) (catalog.ImportResult, error)
	var total int
	switch kind {
	case ImportCatalog:
		secs, errs := catalog.ParseCatalog(bytes.NewReader(data))
		if len(errs) > 0 {
			return Job{}, &ImportErrors{Rows: errs}
		}
		total = len(secs)
		run = func(ctx context.Context, p func(int, int)) (catalog.ImportResult, error) {
			return catalog.ImportCatalog(ctx, s.DB, secs, p)
		}
	case ImportStudents:
		if err := s.CheckInitialPassword(initialPassword); err != nil {
			return Job{}, err
		}
		sts, errs := catalog.ParseRoster(bytes.NewReader(data))
		if len(errs) > 0 {
			return Job{}, &ImportErrors{Rows: errs}
		}
		total = len(sts)
		run = func(ctx context.Context, p func(int, int)) (catalog.ImportResult, error) {
			h, err := auth.HashPassword(initialPassword, s.bcryptCost())
			if err != nil {
				return catalog.ImportResult{}, err
			}
			return catalog.ImportStudents(ctx, s.DB, sts, h, p)
		}
	default:
		return Job{}, fmt.Errorf("unknown import kind %q: %w", kind, ErrBadInput)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	job := Job{ID: hex.EncodeToString(b), Kind: kind, State: JobRunning, Total: total, CreatedAt: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	if err := s.saveJob(ctx, job); err != nil {
		cancel()
		return Job{}, err
	}
	go func() {
		defer cancel()
		s.runImport(ctx, job, run)
	}()
	return job, nil
}

func (s *Service) runImport(ctx context.Context, job Job, run func(context.Context, func(int, int)) (catalog.ImportResult, error)) {
	rdb := s.Queue.Client()
	res, err := run(ctx, func(done, total int) {
		rdb.HSet(ctx, s.jobKey(job.ID), "done", done, "total", total)
	})
	now := time.Now().UTC()
	job.FinishedAt = &now
	var rows catalog.Errors
	switch {
	case errors.As(err, &rows):
		job.State, job.Errors = JobFailed, rows
	case err != nil:
		job.State, job.Error = JobFailed, err.Error()
	default:
		job.State, job.Done = JobDone, res.Total
		job.Result = &ImportSummary{Total: res.Total, Inserted: res.Inserted, Updated: res.Updated,
			Unchanged: res.Unchanged, Meetings: res.Meetings, DurationMS: res.Duration.Milliseconds()}
		if job.Kind == ImportCatalog {
			// New sections need seat hints; raised capacities may fill waitlists.
			if err := s.Reconcile(ctx); err != nil {
				slog.Warn("import: reconcile seat hints", "err", err)
			}
			// Logged after the hints have the seats (the law 7 check reads it).
			for _, r := range res.Raised {
				if err := s.Store.LogCapacityChange(ctx, int64(r.CourseID), r.Old, r.New); err != nil {
					slog.Warn("import: log capacity change", "course", r.CourseID, "err", err)
				}
			}
			ps, err := s.PromoteAll(ctx)
			if err != nil {
				slog.Warn("import: promote waitlists", "err", err)
			}
			job.Promotions = len(ps)
		}
	}
	if err := s.saveJob(ctx, job); err != nil {
		slog.Error("import: save job", "job", job.ID, "err", err)
	}
}

func (s *Service) saveJob(ctx context.Context, j Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	k := s.jobKey(j.ID)
	pipe := s.Queue.Client().TxPipeline()
	pipe.HSet(ctx, k, "job", b, "done", j.Done, "total", j.Total)
	pipe.Expire(ctx, k, jobTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("save job %s: %w", j.ID, err)
	}
	return nil
}

// Job returns an import job with its progress.
func (s *Service) Job(ctx context.Context, id string) (Job, error) {
	m, err := s.Queue.Client().HGetAll(ctx, s.jobKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	if len(m) == 0 || m["job"] == "" {
		return Job{}, ErrNoJob
	}
	var j Job
	if err := json.Unmarshal([]byte(m["job"]), &j); err != nil {
		return Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	if j.State == JobRunning {
		j.Done, _ = strconv.Atoi(m["done"])
		if t, _ := strconv.Atoi(m["total"]); t > 0 {
			j.Total = t
		}
	}
	return j, nil
}
