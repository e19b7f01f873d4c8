package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The pre-queue (DESIGN: "an optional pre-queue lottery for those who
// arrived before opening time"). While the registrar keeps it open and the
// window is still closed, admit.lua records requests as pre-queue entries
// instead of refusing them. At the opening Draw shuffles the pre-queued
// students with a recorded seed and admits their entries in that order,
// each student's entries together and in the order the student sent them;
// only then does the window open, so everyone who came before the opening
// is ahead of everyone who came after it, in an order their connection
// speed did not decide.
//
// The draw is restartable and runs exactly once per entry: the drawn order
// is written to Redis before any entry is admitted, and admit.lua admits a
// batch of it only if the draw's cursor is where the batch starts, moving
// the cursor in the same script. A drawer that dies mid-way is resumed by
// calling Draw again (the same seed, the same order, from the cursor); two
// drawers at once admit each batch once between them.

// Draw states.
const (
	DrawListing = "listing" // the order is being written
	DrawDrawing = "drawing" // entries are being admitted in that order
	DrawDone    = "done"
)

// DefaultDrawBatch is the number of entries per admit.lua call of the draw
// (Redis.DrawBatch), and per chunk of the listing. The draw runs while
// registration day's crowd holds its sessions, and on a busy machine each
// round trip waits for the scheduler: at 500 entries a call, a 100k run's
// draw took 50 s for about 5 s of Redis work. One call of 4,000 entries
// holds Redis for about 100 ms, while nothing else is admitted anyway.
const DefaultDrawBatch = 4000

// DrawStatus is the pre-queue and its draw as Redis holds them.
type DrawStatus struct {
	Open      bool      `json:"open"`        // the pre-queue takes requests
	Students  int64     `json:"students"`    // students in the pre-queue
	Entries   int64     `json:"entries"`     // entries ever pre-queued this round
	State     string    `json:"state"`       // "", listing, drawing, done
	Seed      uint64    `json:"seed,string"` // a string: JavaScript numbers cannot hold every uint64
	Total     int64     `json:"total"`       // entries in the drawn order
	Cursor    int64     `json:"cursor"`      // entries of it admitted (or refused) so far
	StartedAt time.Time `json:"started_at,omitzero"`
	DoneAt    time.Time `json:"done_at,omitzero"`
	// Of the entries drawn so far: admitted (queued with a ticket) and
	// refused by reason (sold_out, already_enrolled, ...).
	Admitted int64            `json:"admitted"`
	Refused  map[string]int64 `json:"refused"`
}

// Running reports whether a draw has begun and not finished.
func (d DrawStatus) Running() bool { return d.State == DrawListing || d.State == DrawDrawing }

// SetPrequeue opens or closes the pre-queue. Opening it after a finished
// draw starts a new round (the old round's order and counters are removed;
// students' outcomes stay readable until they expire). It refuses to open
// while a draw is running.
func (q *Redis) SetPrequeue(ctx context.Context, open bool) error {
	if !open {
		if err := q.rdb.Del(ctx, q.keys.PreOpen()).Err(); err != nil {
			return fmt.Errorf("close the pre-queue: %w", err)
		}
		return nil
	}
	st, err := q.DrawStatus(ctx)
	if err != nil {
		return err
	}
	if st.Running() {
		return fmt.Errorf("open the pre-queue: a draw is running (%d of %d)", st.Cursor, st.Total)
	}
	pipe := q.rdb.TxPipeline()
	if st.State == DrawDone {
		pipe.Del(ctx, q.keys.Draw(), q.keys.DrawList(), q.keys.PreStudents())
	}
	pipe.Set(ctx, q.keys.PreOpen(), "1", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("open the pre-queue: %w", err)
	}
	return nil
}

// DrawStatus reads the pre-queue's state.
func (q *Redis) DrawStatus(ctx context.Context) (DrawStatus, error) {
	pipe := q.rdb.Pipeline()
	open := pipe.Get(ctx, q.keys.PreOpen())
	students := pipe.ZCard(ctx, q.keys.PreStudents())
	draw := pipe.HGetAll(ctx, q.keys.Draw())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return DrawStatus{}, fmt.Errorf("read the pre-queue: %w", err)
	}
	h := draw.Val()
	num := func(f string) int64 { n, _ := strconv.ParseInt(h[f], 10, 64); return n }
	at := func(f string) time.Time {
		if ms := num(f); ms > 0 {
			return time.UnixMilli(ms).UTC()
		}
		return time.Time{}
	}
	seed, _ := strconv.ParseUint(h["seed"], 10, 64)
	refused := map[string]int64{}
	for f := range h {
		if r, ok := strings.CutPrefix(f, "refused:"); ok {
			refused[r] = num(f)
		}
	}
	return DrawStatus{Open: open.Val() == "1", Students: students.Val(), Entries: num("entries"), State: h["state"],
		Seed: seed, Total: num("total"), Cursor: num("cursor"), StartedAt: at("started_ms"), DoneAt: at("done_ms"),
		Admitted: num("admitted"), Refused: refused}, nil
}

// Draw closes the pre-queue, draws its order with seed (or with the seed of
// the draw already begun) and admits every entry in that order, calling
// progress after each batch. It returns the finished draw's status; the
// caller opens the window afterwards. A draw already done returns at once.
func (q *Redis) Draw(ctx context.Context, seed uint64, progress func(done, total int64)) (DrawStatus, error) {
	if err := q.SetPrequeue(ctx, false); err != nil {
		return DrawStatus{}, err
	}
	if err := q.rdb.HSetNX(ctx, q.keys.Draw(), "seed", seed).Err(); err != nil {
		return DrawStatus{}, fmt.Errorf("draw: record the seed: %w", err)
	}
	st, err := q.listed(ctx)
	if err != nil || st.State == DrawDone {
		return st, err
	}
	cursor := st.Cursor
	for cursor < st.Total {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("draw at %d of %d: %w", cursor, st.Total, err)
		}
		ids, err := q.rdb.LRange(ctx, q.keys.DrawList(), cursor, cursor+int64(q.drawBatch())-1).Result()
		if err != nil {
			return st, fmt.Errorf("draw: read the order at %d: %w", cursor, err)
		}
		if len(ids) == 0 {
			return st, fmt.Errorf("draw: the order ends at %d of %d", cursor, st.Total)
		}
		batch := make([]admitReq, len(ids))
		for i, e := range ids {
			s, c, _ := strings.Cut(e, ":")
			batch[i].student, _ = strconv.ParseInt(s, 10, 64)
			batch[i].course, _ = strconv.ParseInt(c, 10, 64)
		}
		res, err := q.runAdmit(ctx, batch, cursor)
		if err != nil {
			return st, fmt.Errorf("draw at %d of %d: %w", cursor, st.Total, err)
		}
		if res[0] == -10 { // another drawer moved the cursor: continue from there
			cursor = res[1]
		} else {
			cursor += int64(len(batch))
			// This call admitted the batch (the cursor check makes it the
			// only one): count its outcomes for the draw's summary.
			if err := q.countDrawn(ctx, res); err != nil {
				return st, err
			}
		}
		if progress != nil {
			progress(min(cursor, st.Total), st.Total)
		}
	}
	if err := q.rdb.HSet(ctx, q.keys.Draw(), "state", DrawDone, "done_ms", time.Now().UnixMilli()).Err(); err != nil {
		return st, fmt.Errorf("draw: mark done: %w", err)
	}
	return q.DrawStatus(ctx)
}

// countDrawn adds one admit.lua call's outcomes ({code, a, b} triples) to
// the draw's admitted and refused:<reason> counters.
func (q *Redis) countDrawn(ctx context.Context, res []int64) error {
	n := map[string]int64{}
	for i := 0; i+2 < len(res); i += 3 {
		if res[i] == 1 {
			n["admitted"]++
		} else {
			n["refused:"+RefusalCode(res[i])]++
		}
	}
	pipe := q.rdb.Pipeline()
	for f, v := range n {
		pipe.HIncrBy(ctx, q.keys.Draw(), f, v)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("draw: count the outcomes: %w", err)
	}
	return nil
}

// listStale is how long a listing may go without a write before another
// drawer takes it over (its owner died); listing 200,000 entries writes
// every few milliseconds.
const listStale = 5 * time.Second

// listed returns the draw once its order is written: it writes the order
// itself if no one else is (or the one who was has gone quiet), else waits
// for the one who is.
func (q *Redis) listed(ctx context.Context) (DrawStatus, error) {
	token := strconv.FormatUint(rand.Uint64(), 36)
	for {
		st, err := q.DrawStatus(ctx)
		if err != nil || st.State == DrawDrawing || st.State == DrawDone {
			return st, err
		}
		ok, err := drawListScript.Run(ctx, q.rdb, []string{q.keys.Draw(), q.keys.DrawList()}, "claim", token, listStale.Milliseconds()).Bool()
		if err != nil {
			return st, fmt.Errorf("draw: claim the listing: %w", err)
		}
		if ok {
			if err := q.listDraw(ctx, st.Seed, token); err != nil && !errors.Is(err, errListingLost) {
				return st, err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("draw: wait for the listing: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errListingLost = errors.New("draw: another drawer took the listing over")

// listDraw writes the drawn order as the listing's owner (token): the
// pre-queued students shuffled with seed, each student's waiting entries in
// the order they were sent.
func (q *Redis) listDraw(ctx context.Context, seed uint64, token string) error {
	keys := []string{q.keys.Draw(), q.keys.DrawList()}
	owned := func(mode string, args ...any) error {
		ok, err := drawListScript.Run(ctx, q.rdb, keys, append([]any{mode, token}, args...)...).Bool()
		if err != nil {
			return fmt.Errorf("draw: %s the order: %w", mode, err)
		}
		if !ok {
			return errListingLost
		}
		return nil
	}
	students, err := q.rdb.ZRange(ctx, q.keys.PreStudents(), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("draw: read the pre-queued students: %w", err)
	}
	ids := make([]int64, len(students))
	for i, s := range students {
		if ids[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("draw: bad student %q in the pre-queue", s)
		}
	}
	Shuffle(ids, seed)
	var total int64
	chunk := q.drawBatch()
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		pipe := q.rdb.Pipeline()
		hs := make([]*redis.MapStringStringCmd, len(part))
		for i, id := range part {
			hs[i] = pipe.HGetAll(ctx, q.keys.Pre(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("draw: read entries: %w", err)
		}
		var order []any
		for i, id := range part {
			for _, course := range waitingEntries(hs[i].Val()) {
				order = append(order, strconv.FormatInt(id, 10)+":"+course)
			}
		}
		if err := owned("push", order...); err != nil {
			return err
		}
		total += int64(len(order))
	}
	return owned("finish", total)
}

func (q *Redis) drawBatch() int {
	if q.DrawBatch > 0 {
		return q.DrawBatch
	}
	return DefaultDrawBatch
}

// waitingEntries returns the courses of a student's pre hash still waiting
// for the draw ("q:<seq>"), in the order the student sent them.
func waitingEntries(h map[string]string) []string {
	type entry struct {
		course string
		seq    int64
	}
	var es []entry
	for course, st := range h {
		if v, ok := strings.CutPrefix(st, "q:"); ok {
			seq, _ := strconv.ParseInt(v, 10, 64)
			es = append(es, entry{course, seq})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return int(a.seq - b.seq) })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.course
	}
	return out
}

// Shuffle permutes ids uniformly (Fisher–Yates) with a generator seeded by
// seed: the same seed gives the same order, so a draw can be replayed and
// audited.
func Shuffle(ids []int64, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
}

// PrequeueEntry is one of a student's pre-queue entries.
type PrequeueEntry struct {
	CourseID int64
	Waiting  bool  // not drawn yet
	Ticket   int64 // drawn and admitted: the request's id and ticket
	Code     int64 // drawn and refused: admit.lua's code (-3 already queued, -4 enrolled, -5 unknown, -6 sold out)
}

// Prequeued returns the student's pre-queue entries (waiting and drawn).
func (q *Redis) Prequeued(ctx context.Context, student int64) ([]PrequeueEntry, error) {
	h, err := q.rdb.HGetAll(ctx, q.keys.Pre(student)).Result()
	if err != nil {
		return nil, fmt.Errorf("read pre-queue entries of student %d: %w", student, err)
	}
	out := make([]PrequeueEntry, 0, len(h))
	for course, st := range h {
		e := PrequeueEntry{}
		e.CourseID, _ = strconv.ParseInt(course, 10, 64)
		kind, rest, _ := strings.Cut(st, ":")
		switch kind {
		case "q":
			e.Waiting = true
		case "t":
			e.Ticket, _ = strconv.ParseInt(rest, 10, 64)
		case "x":
			code, _, _ := strings.Cut(rest, ":")
			e.Code, _ = strconv.ParseInt(code, 10, 64)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b PrequeueEntry) int { return int(a.CourseID - b.CourseID) })
	return out, nil
}

// Opened is the notice queue-ws forwards, as a frame, to the sessions
// waiting for the pre-queue's draw: the window is open, and the drawn
// outcomes can be read (GET /me/requests). SpreadMS is how long clients
// should spread those reads over, so that a large pre-queue does not read
// all at once.
type Opened struct {
	Type     string `json:"type"` // "opened"
	Students int64  `json:"students"`
	SpreadMS int64  `json:"spread_ms"`
	TS       int64  `json:"ts"`
}

// OpenedSpread is how long the reads of students pre-queued are spread
// over: one second per 3,000 students (about what one small machine
// answers per second), at least 1 s and at most 30 s.
func OpenedSpread(students int64) time.Duration {
	return min(max(time.Duration(students)*time.Second/3000, time.Second), 30*time.Second)
}

// PublishOpened publishes the opened notice on the notices channel.
func (q *Redis) PublishOpened(ctx context.Context, students int64) error {
	b, err := json.Marshal(Opened{Type: "opened", Students: students, SpreadMS: OpenedSpread(students).Milliseconds(), TS: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	if err := q.rdb.Publish(ctx, q.keys.Notices(), b).Err(); err != nil {
		return fmt.Errorf("publish the opened notice: %w", err)
	}
	return nil
}

// RefusalCode names a refusal code of admit.lua (a drawn entry's outcome)
// as the API's error code.
func RefusalCode(code int64) string {
	switch code {
	case -3:
		return "already_queued"
	case -4:
		return "already_enrolled"
	case -5:
		return "unknown_course"
	case -6:
		return "sold_out"
	}
	return "refused"
}
