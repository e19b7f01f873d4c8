package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
)

// fencedErr turns the FENCED error reply of a fenced script into
// enroll.ErrFenced (wrapping the reply).
func fencedErr(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "FENCED") {
		return fmt.Errorf("%w: %v", enroll.ErrFenced, err)
	}
	return err
}

// TakeFence gives the holder of the redsync lock lockKey (whose value is
// lockValue) the next drain fence, above both Redis' last one and floor
// (MariaDB's). From then on Redis refuses pops, pre-acks, acks and requeues
// carrying an older fence. It fails with enroll.ErrFenced when lockKey is
// not held with lockValue.
func (q *Redis) TakeFence(ctx context.Context, lockKey, lockValue string, floor int64) (int64, error) {
	n, err := fenceScript.Run(ctx, q.rdb, []string{q.keys.Fence(), lockKey}, lockValue, floor).Int64()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOTLOCKED") {
			return 0, fmt.Errorf("take the drain fence: %w: %v", enroll.ErrFenced, err)
		}
		return 0, fmt.Errorf("take the drain fence: %w", err)
	}
	return n, nil
}

// PreAck settles the seat-hint claims of decisions about to be committed
// (lua/preack.lua): run it inside the decision's transaction, before the
// commit. Refused with enroll.ErrFenced for a former leader's fence.
func (q *Redis) PreAck(ctx context.Context, fence int64, ds []enroll.Decision) error {
	if len(ds) == 0 {
		return nil
	}
	k := q.keys
	args := make([]any, 0, 1+3*len(ds))
	args = append(args, fence)
	for _, d := range ds {
		args = append(args, d.RequestID, string(d.Status), d.CourseID)
	}
	if err := preackScript.Run(ctx, q.rdb, []string{k.Fence(), k.Req(), k.PCount(), k.Seats(), k.PreAck()}, args...).Err(); err != nil {
		return fmt.Errorf("pre-ack %d decisions: %w", len(ds), fencedErr(err))
	}
	return nil
}

// Dropping tells the hints of a drop about to commit (lua/dropped.lua): the
// course leaves the student's enrolled hint, the seats it frees are back in
// the seat hint, the section's generation moves, and a not yet acked
// request of the dropped enrollment is marked so its ack does not resurrect
// it. A drop that then fails to commit leaves the hints too generous, which
// costs speed, never a seat (law 5).
func (q *Redis) Dropping(ctx context.Context, h enroll.DropHint) error {
	k := q.keys
	err := droppedScript.Run(ctx, q.rdb, []string{k.Enrolled(h.StudentID), k.Seats(), k.Gen(), k.Req(), k.DroppedReqs()},
		h.CourseID, h.SeatsFreed, h.RequestID).Err()
	if err != nil {
		return fmt.Errorf("drop hint student %d course %d: %w", h.StudentID, h.CourseID, err)
	}
	return nil
}

// Raising adds seats a capacity raise is about to free (before its commit)
// to the section's hint, and moves its generation.
func (q *Redis) Raising(ctx context.Context, course int64, seats int) error {
	c := strconv.FormatInt(course, 10)
	pipe := q.rdb.TxPipeline()
	if seats > 0 {
		// HINCRBY would create a hint for a section admission treats as
		// unknown (it asks MariaDB then); only an existing hint moves.
		if ok, err := q.rdb.HExists(ctx, q.keys.Seats(), c).Result(); err != nil {
			return fmt.Errorf("raise hint of course %d: %w", course, err)
		} else if ok {
			pipe.HIncrBy(ctx, q.keys.Seats(), c, int64(seats))
		}
	}
	pipe.HIncrBy(ctx, q.keys.Gen(), c, 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("raise hint of course %d: %w", course, err)
	}
	return nil
}

// Refusal is the latest "sold out" admission answered for a section.
type Refusal = enroll.RefusalMark

// Refusals reads the latest "sold out" answer of every section that had one.
func (q *Redis) Refusals(ctx context.Context) ([]Refusal, error) {
	h, err := q.rdb.HGetAll(ctx, q.keys.Refusals()).Result()
	if err != nil {
		return nil, fmt.Errorf("read refusal marks: %w", err)
	}
	out := make([]Refusal, 0, len(h))
	for f, v := range h {
		r, err := parseRefusal(f, v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRefusal(field, v string) (Refusal, error) {
	course, err := strconv.ParseInt(field, 10, 64)
	if err != nil {
		return Refusal{}, fmt.Errorf("refusal mark: bad course %q", field)
	}
	t, us, ok := strings.Cut(v, ":")
	if !ok {
		return Refusal{}, fmt.Errorf("refusal mark of course %d: bad value %q", course, v)
	}
	ticket, err1 := strconv.ParseInt(t, 10, 64)
	at, err2 := strconv.ParseInt(us, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Refusal{}, fmt.Errorf("refusal mark of course %d: bad value %q: %w", course, v, err)
	}
	return Refusal{CourseID: course, Ticket: ticket, At: time.UnixMicro(at).UTC()}, nil
}
