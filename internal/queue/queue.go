package queue

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/groupcommit"
)

//go:embed lua/*.lua
var luaFS embed.FS

// script loads lua/<name>.lua, after the preludes named (lua/_<p>.lua:
// local functions several scripts share).
func script(name string, preludes ...string) *redis.Script {
	var src strings.Builder
	for _, p := range append(preludes, name) {
		file := "lua/" + p + ".lua"
		if p != name {
			file = "lua/_" + p + ".lua"
		}
		b, err := luaFS.ReadFile(file)
		if err != nil {
			panic(fmt.Sprintf("queue: missing script %s: %v", file, err))
		}
		src.Write(b)
		src.WriteByte('\n')
	}
	return redis.NewScript(src.String())
}

var (
	admitScript     = script("admit")
	popScript       = script("pop", "release")
	preackScript    = script("preack", "release")
	ackScript       = script("ack", "release")
	requeueScript   = script("requeue", "release")
	cancelScript    = script("cancel", "release")
	fenceScript     = script("fence")
	droppedScript   = script("dropped")
	watermarkScript = script("watermark")
	reconcileScript = script("reconcile")
	drawListScript  = script("drawlist")
	openScript      = script("open")
)

// Redis is one term's queue in Redis.
type Redis struct {
	rdb  redis.UniversalClient
	keys Keys
	// RateLimit is the number of admission attempts a student may make per
	// RateWindow (0 turns the limit off).
	RateLimit  int
	RateWindow time.Duration
	// DrawBatch is the number of pre-queue entries per call of the draw
	// (0: DefaultDrawBatch).
	DrawBatch int

	admits  *groupcommit.Group[admitReq, admitOutcome]
	lookups *groupcommit.Group[int64, lookupOutcome]
}

var _ enroll.Queue = (*Redis)(nil)

// Grouping of admissions and lookups (internal/groupcommit): at most
// groupSlots admit.lua calls (or lookup pipelines) of one queue are in
// flight at once, each carrying up to groupMax requests.
const (
	groupSlots = 2
	groupMax   = 256
)

// New returns the queue of term on rdb.
func New(rdb redis.UniversalClient, term string) *Redis {
	q := &Redis{rdb: rdb, keys: KeysFor(term), RateLimit: 20, RateWindow: 10 * time.Second}
	grouping := groupcommit.Config{Slots: groupSlots, Max: groupMax}
	q.admits = groupcommit.New(grouping, q.admitBatch)
	q.lookups = groupcommit.New(grouping, q.lookupBatch)
	return q
}

// Keys returns the key names used by the queue.
func (q *Redis) Keys() Keys { return q.keys }

// Client returns the Redis client.
func (q *Redis) Client() redis.UniversalClient { return q.rdb }

// record is the stored form of a request: "student:course:admitted_ms:flag".
func parseRecord(id int64, rec string) (enroll.Request, error) {
	parts := strings.SplitN(rec, ":", 4)
	if len(parts) != 4 {
		return enroll.Request{}, fmt.Errorf("request %d: bad record %q", id, rec)
	}
	st, err1 := strconv.ParseInt(parts[0], 10, 64)
	co, err2 := strconv.ParseInt(parts[1], 10, 64)
	ms, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return enroll.Request{}, fmt.Errorf("request %d: bad record %q: %w", id, rec, err)
	}
	return enroll.Request{ID: id, Ticket: id, StudentID: st, CourseID: co,
		AdmittedAt: time.UnixMilli(ms).UTC(), Cancelled: parts[3] == "C"}, nil
}

// Pop moves up to n of the oldest waiting requests in flight with a lease and
// returns them in ticket order, unfenced (tools and tests; the scheduler
// uses PopFenced).
func (q *Redis) Pop(ctx context.Context, n int, lease time.Duration) ([]enroll.Request, error) {
	return q.PopFenced(ctx, 0, n, lease)
}

// PopFenced is Pop by the holder of fence: Redis refuses it
// (enroll.ErrFenced) once another leader has taken a newer fence.
func (q *Redis) PopFenced(ctx context.Context, fence int64, n int, lease time.Duration) ([]enroll.Request, error) {
	k := q.keys
	res, err := popScript.Run(ctx, q.rdb, []string{k.Waiting(), k.Inflight(), k.Req(), k.Draw(), k.Fence()}, n, lease.Milliseconds(), fence).Slice()
	if err != nil {
		return nil, fmt.Errorf("pop %d: %w", n, fencedErr(err))
	}
	out := make([]enroll.Request, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		id, err := strconv.ParseInt(fmt.Sprint(res[i]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pop: bad id %v", res[i])
		}
		rec, ok := res[i+1].(string)
		if !ok {
			// No record: acked meanwhile by another decider. Drop the lease.
			q.rdb.ZRem(ctx, k.Inflight(), id)
			continue
		}
		r, err := parseRecord(id, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ResultEvent is published on the events channel for every decision.
type ResultEvent struct {
	RequestID int64  `json:"request_id"`
	StudentID int64  `json:"student_id"`
	CourseID  int64  `json:"course_id"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

// Ack removes decided requests from the queue, settles their seat-hint
// claims (unless the pre-ack did) and publishes one event message carrying
// every result. It is idempotent. Ack is unfenced: a student's own
// cancellation acks through it; the scheduler uses AckFenced.
func (q *Redis) Ack(ctx context.Context, ds []enroll.Decision) error {
	return q.AckFenced(ctx, 0, ds)
}

// AckFenced is Ack by the holder of fence (refused with enroll.ErrFenced
// once a newer leader took over; that leader's recovery acks from MariaDB).
func (q *Redis) AckFenced(ctx context.Context, fence int64, ds []enroll.Decision) error {
	if len(ds) == 0 {
		return nil
	}
	k := q.keys
	keys := []string{k.Inflight(), k.Waiting(), k.Pending(), k.Done(), k.Req(), k.Dup(), k.Seats(), k.PCount(), k.Stats(),
		k.Fence(), k.PreAck(), k.DroppedReqs()}
	args := make([]any, 0, 3+4*len(ds))
	evs := make([]ResultEvent, len(ds))
	for i, d := range ds {
		keys = append(keys, k.Enrolled(d.StudentID))
		evs[i] = ResultEvent{RequestID: d.RequestID, StudentID: d.StudentID, CourseID: d.CourseID, Status: string(d.Status), Reason: string(d.Reason)}
	}
	payload, err := json.Marshal(evs)
	if err != nil {
		return fmt.Errorf("ack: encode events: %w", err)
	}
	args = append(args, k.Events(), string(payload), fence)
	for _, d := range ds {
		args = append(args, d.RequestID, string(d.Status), d.StudentID, d.CourseID)
	}
	if err := ackScript.Run(ctx, q.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("ack %d decisions: %w", len(ds), fencedErr(err))
	}
	return nil
}

// Requeue puts in-flight requests back in waiting at their original
// tickets, unfenced (tools and tests; the scheduler uses RequeueFenced).
func (q *Redis) Requeue(ctx context.Context, ids []int64) (int, error) {
	return q.RequeueFenced(ctx, 0, ids)
}

// RequeueFenced is Requeue by the holder of fence.
func (q *Redis) RequeueFenced(ctx context.Context, fence int64, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 1+len(ids))
	args = append(args, fence)
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := requeueScript.Run(ctx, q.rdb, []string{q.keys.Inflight(), q.keys.Waiting(), q.keys.Fence()}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("requeue %d: %w", len(ids), fencedErr(err))
	}
	return n, nil
}

// Inflight returns the in-flight requests, all of them or only those whose
// lease ended before now (by Redis' clock).
func (q *Redis) Inflight(ctx context.Context, expiredOnly bool) ([]enroll.Request, error) {
	max := "+inf"
	if expiredOnly {
		t, err := q.rdb.Time(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("inflight: redis time: %w", err)
		}
		max = "(" + strconv.FormatInt(t.UnixMilli(), 10)
	}
	ids, err := q.rdb.ZRangeByScore(ctx, q.keys.Inflight(), &redis.ZRangeBy{Min: "-inf", Max: max, Count: 10000}).Result()
	if err != nil {
		return nil, fmt.Errorf("inflight: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	recs, err := q.rdb.HMGet(ctx, q.keys.Req(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("inflight records: %w", err)
	}
	out := make([]enroll.Request, 0, len(ids))
	for i, s := range ids {
		id, _ := strconv.ParseInt(s, 10, 64)
		rec, ok := recs[i].(string)
		if !ok {
			q.rdb.ZRem(ctx, q.keys.Inflight(), s)
			continue
		}
		r, err := parseRecord(id, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Cancel takes a waiting request out of the line on behalf of student. The
// returned request is flagged cancelled and in flight: the caller records the
// decision in MariaDB and then acks it.
// Errors: enroll.ErrNotFound, enroll.ErrForbidden, enroll.ErrTooLate.
func (q *Redis) Cancel(ctx context.Context, id, student int64, lease time.Duration) (enroll.Request, error) {
	k := q.keys
	res, err := cancelScript.Run(ctx, q.rdb, []string{k.Waiting(), k.Inflight(), k.Req(), k.PreAck(), k.PCount(), k.Seats()},
		id, student, lease.Milliseconds()).Slice()
	if err != nil {
		return enroll.Request{}, fmt.Errorf("cancel request %d: %w", id, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case 1:
		return parseRecord(id, res[1].(string))
	case -1:
		return enroll.Request{}, enroll.ErrNotFound
	case -2:
		return enroll.Request{}, enroll.ErrForbidden
	case -3:
		return enroll.Request{}, enroll.ErrTooLate
	}
	return enroll.Request{}, fmt.Errorf("cancel: unexpected script result %v", res)
}

// Lookup returns a pending request and the number of undecided requests ahead
// of it, or enroll.ErrNotFound when the request is not pending. Lookups that
// arrive while earlier ones are in flight go together in one pipeline
// (internal/groupcommit), as the watches of a registration burst do.
func (q *Redis) Lookup(ctx context.Context, id int64) (enroll.Request, int64, error) {
	out, err := q.lookups.Do(ctx, id)
	if err != nil {
		return enroll.Request{}, 0, fmt.Errorf("lookup request %d: %w", id, err)
	}
	return out.r, out.ahead, out.err
}

type lookupOutcome struct {
	r     enroll.Request
	ahead int64
	err   error
}

// lookupBatch reads each request's record and the pending requests ahead of
// it, two commands per request in one pipeline.
func (q *Redis) lookupBatch(ctx context.Context, ids []int64) ([]lookupOutcome, error) {
	pipe := q.rdb.Pipeline()
	recs := make([]*redis.StringCmd, len(ids))
	aheads := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		recs[i] = pipe.HGet(ctx, q.keys.Req(), strconv.FormatInt(id, 10))
		aheads[i] = pipe.ZCount(ctx, q.keys.Pending(), "-inf", "("+strconv.FormatInt(id, 10))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("pipeline of %d lookups: %w", len(ids), err)
	}
	out := make([]lookupOutcome, len(ids))
	for i, id := range ids {
		if errors.Is(recs[i].Err(), redis.Nil) {
			out[i].err = enroll.ErrNotFound
			continue
		}
		r, err := parseRecord(id, recs[i].Val())
		if err != nil {
			out[i].err = err
			continue
		}
		out[i].r, out[i].ahead = r, aheads[i].Val()
	}
	return out, nil
}

// Watermark is one tick's view of the line for position watchers.
type Watermark struct {
	Head    int64   // lowest undecided ticket (Last+1 when none)
	Last    int64   // highest ticket handed out
	Decided int64   // decisions acked so far (for the drain rate)
	Done    []int64 // tickets >= Head that already left the line, ascending
}

// Ahead returns the number of undecided requests with a ticket lower than t,
// for a ticket t that is itself undecided.
func (w Watermark) Ahead(t int64) int64 {
	if t <= w.Head {
		return 0
	}
	// count done tickets in [Head, t)
	lo, hi := 0, len(w.Done)
	for lo < hi {
		m := (lo + hi) / 2
		if w.Done[m] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return t - w.Head - int64(lo)
}

// ReadWatermark reads the watermark in one round trip.
func (q *Redis) ReadWatermark(ctx context.Context, maxDone int) (Watermark, error) {
	k := q.keys
	res, err := watermarkScript.Run(ctx, q.rdb, []string{k.Pending(), k.Done(), k.Seq(), k.Stats()}, maxDone).Slice()
	if err != nil {
		return Watermark{}, fmt.Errorf("read watermark: %w", err)
	}
	w := Watermark{Head: res[0].(int64), Last: res[1].(int64), Decided: res[2].(int64)}
	done, _ := res[3].([]any)
	w.Done = make([]int64, 0, len(done))
	for _, d := range done {
		v, _ := strconv.ParseInt(fmt.Sprint(d), 10, 64)
		w.Done = append(w.Done, v)
	}
	return w, nil
}

// Reconcile resets the seat hints from MariaDB's counts, whatever moved
// meanwhile, and makes sure the ticket counter is above every recorded
// request id. Use ReconcileSeen when the counts may be older than a drop or
// capacity raise that reached Redis (always, outside tests).
func (q *Redis) Reconcile(ctx context.Context, seats []enroll.SeatCount, maxID int64) error {
	return q.ReconcileSeen(ctx, seats, nil, maxID)
}

// Generations reads every section's hint generation. Read it before the
// counts from MariaDB and hand it to ReconcileSeen.
func (q *Redis) Generations(ctx context.Context) (map[int64]int64, error) {
	h, err := q.rdb.HGetAll(ctx, q.keys.Gen()).Result()
	if err != nil {
		return nil, fmt.Errorf("read hint generations: %w", err)
	}
	out := make(map[int64]int64, len(h))
	for f, v := range h {
		id, err1 := strconv.ParseInt(f, 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err1 == nil && err2 == nil {
			out[id] = n
		}
	}
	return out, nil
}

// GenerationOf reads one section's hint generation (see Generations).
func (q *Redis) GenerationOf(ctx context.Context, course int64) (int64, error) {
	n, err := q.rdb.HGet(ctx, q.keys.Gen(), strconv.FormatInt(course, 10)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("read hint generation of course %d: %w", course, err)
	}
	return n, nil
}

// ReconcileSeen is Reconcile for counts read from MariaDB after gens was
// read (Generations): a section whose generation moved since is left alone,
// since a drop or capacity raise reached its hint after the counts were
// read. gens nil: no check.
func (q *Redis) ReconcileSeen(ctx context.Context, seats []enroll.SeatCount, gens map[int64]int64, maxID int64) error {
	k := q.keys
	for len(seats) > 0 {
		n := min(len(seats), 1000)
		args := make([]any, 0, 3*n)
		for _, s := range seats[:n] {
			seen := "-"
			if gens != nil {
				seen = strconv.FormatInt(gens[s.ID], 10)
			}
			if s.Open {
				args = append(args, s.ID, s.Capacity-s.Enrolled, seen)
			} else {
				args = append(args, s.ID, "x", seen)
			}
		}
		if err := reconcileScript.Run(ctx, q.rdb, []string{k.Seats(), k.PCount(), k.Gen()}, args...).Err(); err != nil {
			return fmt.Errorf("reconcile seat hints: %w", err)
		}
		seats = seats[n:]
	}
	cur, err := q.rdb.Get(ctx, k.Seq()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("reconcile: read ticket counter: %w", err)
	}
	if cur < maxID {
		if err := q.rdb.Set(ctx, k.Seq(), maxID, 0).Err(); err != nil {
			return fmt.Errorf("reconcile: raise ticket counter: %w", err)
		}
	}
	return nil
}

// SetEnrolledHint replaces the hint set of a student's enrollments.
func (q *Redis) SetEnrolledHint(ctx context.Context, student int64, courses []int64) error {
	k := q.keys.Enrolled(student)
	pipe := q.rdb.TxPipeline()
	pipe.Del(ctx, k)
	if len(courses) > 0 {
		m := make([]any, len(courses))
		for i, c := range courses {
			m[i] = c
		}
		pipe.SAdd(ctx, k, m...)
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		return fmt.Errorf("set enrolled hint of student %d: %w", student, err)
	}
	return nil
}

// SetOpen sets the window flag and records it as the registrar's last word
// (see WantOpen), in one transaction: a close is never undone by an opening
// that was drawing the pre-queue meanwhile.
func (q *Redis) SetOpen(ctx context.Context, open bool) error {
	pipe := q.rdb.TxPipeline()
	pipe.HSet(ctx, q.keys.Draw(), "want", wantField(open))
	if open {
		pipe.Set(ctx, q.keys.Open(), "1", 0)
	} else {
		pipe.Del(ctx, q.keys.Open())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("set window open=%v: %w", open, err)
	}
	return nil
}

// WantOpen records the registrar's last word on the window (open or
// closed) without setting the flag: an opening records "open" before it
// draws the pre-queue, and at its end opens the window only if that word
// is still "open" (OpenAsWanted).
func (q *Redis) WantOpen(ctx context.Context, open bool) error {
	if err := q.rdb.HSet(ctx, q.keys.Draw(), "want", wantField(open)).Err(); err != nil {
		return fmt.Errorf("record the window's wanted state (open=%v): %w", open, err)
	}
	return nil
}

func wantField(open bool) string {
	if open {
		return "1"
	}
	return "0"
}

// OpenAsWanted opens the window unless the registrar's last word
// (WantOpen) was "closed", and reports whether it is open.
func (q *Redis) OpenAsWanted(ctx context.Context) (bool, error) {
	n, err := openScript.Run(ctx, q.rdb, []string{q.keys.Open(), q.keys.Draw()}).Int()
	if err != nil {
		return false, fmt.Errorf("open the window: %w", err)
	}
	return n == 1, nil
}

// IsOpen reports the window flag.
func (q *Redis) IsOpen(ctx context.Context) (bool, error) {
	v, err := q.rdb.Get(ctx, q.keys.Open()).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read window flag: %w", err)
	}
	return v == "1", nil
}

// Stats are the queue's counters and sizes.
type Stats struct {
	Waiting  int64            `json:"waiting"`
	Inflight int64            `json:"inflight"`
	Pending  int64            `json:"pending"`
	Counters map[string]int64 `json:"counters"`
	// At is Redis's clock when it read them (TIME in the same pipeline): a
	// reader whose answer came back late still knows when they were true.
	At time.Time `json:"at"`
}

// Stats reads the queue's sizes and counters.
func (q *Redis) Stats(ctx context.Context) (Stats, error) {
	pipe := q.rdb.Pipeline()
	w := pipe.ZCard(ctx, q.keys.Waiting())
	f := pipe.ZCard(ctx, q.keys.Inflight())
	p := pipe.ZCard(ctx, q.keys.Pending())
	c := pipe.HGetAll(ctx, q.keys.Stats())
	at := pipe.Time(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		return Stats{}, fmt.Errorf("queue stats: %w", err)
	}
	st := Stats{Waiting: w.Val(), Inflight: f.Val(), Pending: p.Val(), Counters: map[string]int64{}, At: at.Val()}
	for k, v := range c.Val() {
		n, _ := strconv.ParseInt(v, 10, 64)
		st.Counters[k] = n
	}
	return st, nil
}

// SeatHint returns the free-seat hint of a course and whether it has one.
func (q *Redis) SeatHint(ctx context.Context, course int64) (int64, bool, error) {
	v, err := q.rdb.HGet(ctx, q.keys.Seats(), strconv.FormatInt(course, 10)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("seat hint %d: %w", course, err)
	}
	return v, true, nil
}
