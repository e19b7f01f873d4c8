package app

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/queue"
)

// Pre-queue errors.
var (
	ErrPrequeueWindows = errors.New("the pre-queue draws at one opening: class-year windows are configured")
	ErrWindowIsOpen    = errors.New("the window is already open")
)

// SetPrequeue opens or closes the pre-queue (the window must be closed; see
// queue.Draw). Opening it is refused while class-year windows are set, since
// the draw happens at the one opening the registrar triggers.
func (s *Service) SetPrequeue(ctx context.Context, open bool) (queue.DrawStatus, error) {
	if open {
		ws, err := s.Store.Windows(ctx)
		if err != nil {
			return queue.DrawStatus{}, err
		}
		if len(ws) > 0 {
			return queue.DrawStatus{}, ErrPrequeueWindows
		}
		isOpen, err := s.Queue.IsOpen(ctx)
		if err != nil {
			return queue.DrawStatus{}, err
		}
		if isOpen {
			return queue.DrawStatus{}, ErrWindowIsOpen
		}
		// Hints must exist before entries arrive (an entry needs a known course).
		if err := s.Reconcile(ctx); err != nil {
			return queue.DrawStatus{}, err
		}
	}
	if err := s.Queue.SetPrequeue(ctx, open); err != nil {
		return queue.DrawStatus{}, err
	}
	return s.Queue.DrawStatus(ctx)
}

// Prequeue returns the pre-queue's state and its draw's progress.
func (s *Service) Prequeue(ctx context.Context) (queue.DrawStatus, error) {
	return s.Queue.DrawStatus(ctx)
}

// draw runs the pre-queue's draw, if there is one to run, with a fresh
// random seed (a resumed draw keeps its first seed), and returns the
// pre-queue's status after it. It logs the seed, so the drawn order can be
// replayed (queue.Shuffle) when a student asks.
func (s *Service) draw(ctx context.Context) (queue.DrawStatus, error) {
	st, err := s.Queue.DrawStatus(ctx)
	if err != nil {
		return queue.DrawStatus{}, err
	}
	if !st.Open && st.Students == 0 && !st.Running() {
		return st, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return queue.DrawStatus{}, fmt.Errorf("draw seed: %w", err)
	}
	log := s.log()
	last := int64(-1)
	st, err = s.Queue.Draw(ctx, binary.LittleEndian.Uint64(b[:]), func(done, total int64) {
		if done == total || done-last >= total/10 {
			log.Info("pre-queue draw", "done", done, "total", total)
			last = done
		}
	})
	if err != nil {
		return queue.DrawStatus{}, fmt.Errorf("pre-queue draw: %w", err)
	}
	log.Info("pre-queue drawn", "students", st.Students, "entries", st.Total, "seed", st.Seed,
		"took", st.DoneAt.Sub(st.StartedAt).String())
	return st, nil
}

// ResumeOpening finishes an opening whose draw stopped half-way (the api
// that ran it died, or its registrar's request was cut off): if a draw is
// running and has not moved since the previous call, it joins it (drawers
// share the work safely, see queue.Draw) and then opens the window, unless
// the registrar closed it meanwhile. It reports whether it joined.
//
// A draw that moves is left to its drawer. Every instance runs this every
// few seconds, and joining a live draw only multiplies the work: with
// 100,000 sessions on a 2-core machine, three drawers on one draw made each
// of its batches several times slower.
func (s *Service) ResumeOpening(ctx context.Context) (bool, error) {
	st, err := s.Queue.DrawStatus(ctx)
	if err != nil {
		return false, err
	}
	mark := ""
	if st.Running() {
		mark = fmt.Sprintf("%s:%d:%d", st.State, st.Cursor, st.StartedAt.UnixMilli())
	}
	s.resumeMu.Lock()
	stalled := mark != "" && mark == s.resumeSeen
	s.resumeSeen = mark
	s.resumeMu.Unlock()
	if !stalled {
		return false, nil
	}
	s.log().Warn("pre-queue draw found stalled; resuming the opening", "state", st.State, "cursor", st.Cursor, "total", st.Total)
	_, err = s.finishOpening(ctx)
	return true, err
}

// ResumeOpenings calls ResumeOpening every period until ctx ends, so that
// students are not told "opening" for long after a drawer died: a stalled
// draw is resumed between one and two periods after it stopped.
func (s *Service) ResumeOpenings(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.ResumeOpening(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("resume the opening", "err", err)
		}
	}
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// PrequeueItem is one of a student's pre-queue entries as the student sees it.
type PrequeueItem struct {
	CourseID int64 `json:"course_id"`
	CourseLabel
	Status    string `json:"status"`               // prequeued (waiting for the draw), drawn, refused
	RequestID int64  `json:"request_id,omitempty"` // drawn: the request in the line
	Error     string `json:"error,omitempty"`      // refused: sold_out, already_enrolled, already_queued, unknown_course
}

// PrequeueItems returns the student's pre-queue entries.
func (s *Service) PrequeueItems(ctx context.Context, c auth.Claims) ([]PrequeueItem, error) {
	es, err := s.Queue.Prequeued(ctx, c.Subject)
	if err != nil {
		return nil, err
	}
	out := make([]PrequeueItem, len(es))
	for i, e := range es {
		it := PrequeueItem{CourseID: e.CourseID}
		switch {
		case e.Waiting:
			it.Status = "prequeued"
		case e.Ticket > 0:
			it.Status, it.RequestID = "drawn", e.Ticket
		default:
			it.Status, it.Error = "refused", queue.RefusalCode(e.Code)
		}
		out[i] = it
	}
	if err := labelCourses(ctx, s, out, func(it *PrequeueItem) (int64, *CourseLabel) { return it.CourseID, &it.CourseLabel }); err != nil {
		return nil, err
	}
	return out, nil
}
