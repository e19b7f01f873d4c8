package main

import (
	"sync"
	"sync/atomic"
)

// Where a result came from.
const (
	srcWS     = "ws"     // a queue-ws result frame
	srcPoll   = "poll"   // GET /api/v1/requests/{id}
	srcCancel = "cancel" // the answer to our own DELETE /api/v1/requests/{id}
)

// reqRec is one admitted request as loadgen saw it. Times are nanoseconds
// since the run's clock started (run.now).
type reqRec struct {
	mu sync.Mutex

	ID, Student, Course, Ticket int64
	st                          *student

	SentAt, AdmittedAt int64

	// Positions shown to the student: the admission answer's, then every
	// position frame. Increases counts frames showing more than the one
	// before (law 4: never).
	FirstPos, LastPos int64
	Frames            int32
	Increases         int32
	AfterResult       int32 // position frames after the result (should not happen)

	// The decision, from the first source that told us.
	ResultAt    int64
	Status      string
	Reason      string
	Source      string
	WSResults   int32 // result frames received for this request (1 expected with ws)
	Mismatch    bool  // two sources disagreed about the decision
	Watched     bool  // a watch was sent on a queue-ws connection
	DecidedSeen int64 // when the queue first showed it decided (polling fallback)
	Polling     bool
	Dropped     bool
}

// observePosition records a shown position; it reports whether it was higher
// than the one shown before.
func (r *reqRec) observePosition(pos int64) (increased bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Status != "" {
		r.AfterResult++
		return false
	}
	r.Frames++
	if pos > r.LastPos {
		r.Increases++
		increased = true
	}
	r.LastPos = pos
	return increased
}

// observeResult records a decision from src at time at. It reports whether
// this was the first decision known for the request.
func (r *reqRec) observeResult(status, reason, src string, at int64) (first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if src == srcWS {
		r.WSResults++
	}
	if r.Status == "" {
		r.Status, r.Reason, r.Source, r.ResultAt = status, reason, src, at
		return true
	}
	if r.Status != status || r.Reason != reason {
		r.Mismatch = true
	}
	return false
}

func (r *reqRec) resolved() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Status != ""
}

// tracker holds every admitted request, by id.
type tracker struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[int64]*reqRec
	}
	all   []*reqRec // admission order
	allMu sync.Mutex
	dups  atomic.Int64 // request ids handed out twice at admission
}

func newTracker() *tracker {
	t := &tracker{}
	for i := range t.shards {
		t.shards[i].m = map[int64]*reqRec{}
	}
	return t
}

// add records an admitted request; a request id seen before counts as a
// duplicate admission and the first record is kept.
func (t *tracker) add(r *reqRec) bool {
	s := &t.shards[uint64(r.ID)%uint64(len(t.shards))]
	s.mu.Lock()
	if _, ok := s.m[r.ID]; ok {
		s.mu.Unlock()
		t.dups.Add(1)
		return false
	}
	s.m[r.ID] = r
	s.mu.Unlock()
	t.allMu.Lock()
	t.all = append(t.all, r)
	t.allMu.Unlock()
	return true
}

func (t *tracker) get(id int64) *reqRec {
	s := &t.shards[uint64(id)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// snapshot returns the admitted requests so far.
func (t *tracker) snapshot() []*reqRec {
	t.allMu.Lock()
	defer t.allMu.Unlock()
	return t.all[:len(t.all):len(t.all)]
}
