package queue

import "strconv"

// Keys names every Redis key of one term's queue. All of them share the hash
// tag {eq:<term>} so one script only touches one Redis Cluster slot.
type Keys struct {
	tag string
}

// KeysFor returns the key names of term's queue.
func KeysFor(term string) Keys { return Keys{tag: "eq:{" + term + "}:"} }

// Open is "1" while the registration window is open.
func (k Keys) Open() string { return k.tag + "open" }

// Seq is the ticket counter.
func (k Keys) Seq() string { return k.tag + "seq" }

// Waiting holds requests not yet popped, scored by ticket.
func (k Keys) Waiting() string { return k.tag + "waiting" }

// Inflight holds popped, undecided requests scored by lease deadline (ms).
func (k Keys) Inflight() string { return k.tag + "inflight" }

// Pending holds every undecided request (waiting or in flight) by ticket.
func (k Keys) Pending() string { return k.tag + "pending" }

// Done holds tickets that left the queue at or above the head.
func (k Keys) Done() string { return k.tag + "done" }

// Req maps request id to its record.
func (k Keys) Req() string { return k.tag + "req" }

// Dup maps "student:course" to the pending request id.
func (k Keys) Dup() string { return k.tag + "dup" }

// Seats maps course id to the free-seat hint.
func (k Keys) Seats() string { return k.tag + "seats" }

// PCount maps course id to its number of pending requests.
func (k Keys) PCount() string { return k.tag + "pcount" }

// Stats holds counters (admitted, sold_out, decided, decided_<status>).
func (k Keys) Stats() string { return k.tag + "stats" }

// Fence is the current drain fence: a number the leader takes when it gets
// the drain lock (fence.lua); pop, pre-ack, ack and requeue refuse any other.
func (k Keys) Fence() string { return k.tag + "fence" }

// PreAck maps a request id to how its seat-hint claim was settled before its
// decision committed ('E' enrolled, 'R' released; see lua/_release.lua).
func (k Keys) PreAck() string { return k.tag + "preack" }

// DroppedReqs marks requests whose enrollment was dropped before their ack
// (their ack must not put the course back into the student's enrolled hint).
func (k Keys) DroppedReqs() string { return k.tag + "dropped" }

// Gen maps course id to its generation: moved by every drop and capacity
// raise that reaches the hint, so a reconcile with older numbers skips it.
func (k Keys) Gen() string { return k.tag + "gen" }

// Refusals maps course id to "<ticket counter>:<Redis time in us>" of the
// latest "sold out" answer admission gave for it (law 7).
func (k Keys) Refusals() string { return k.tag + "refusals" }

// Idem holds the answer admission gave under a student's Idempotency-Key for a course (a key reused for another course is another request).
func (k Keys) Idem(student, course int64, key string) string {
	return k.tag + "idem:" + strconv.FormatInt(student, 10) + ":" + strconv.FormatInt(course, 10) + ":" + key
}

// Enrolled is the set of courses a student is enrolled in (a hint).
func (k Keys) Enrolled(student int64) string {
	return k.tag + "enr:" + strconv.FormatInt(student, 10)
}

// Mine is the set of a student's admitted request ids, written by
// admission so "my requests" can list those still waiting. It expires a day
// after the student's last admission; decided requests live in MariaDB.
func (k Keys) Mine(student int64) string {
	return k.tag + "mine:" + strconv.FormatInt(student, 10)
}

// RateLimit counts a student's admission attempts in the current window.
func (k Keys) RateLimit(student int64) string {
	return k.tag + "rl:" + strconv.FormatInt(student, 10)
}

// PreOpen is "1" while the pre-queue takes requests (window still closed).
func (k Keys) PreOpen() string { return k.tag + "preopen" }

// PreStudents holds the pre-queued students, scored by their first entry.
func (k Keys) PreStudents() string { return k.tag + "prestu" }

// Pre is a student's pre-queue entries: course -> "q:<seq>" before the draw,
// "t:<ticket>" or "x:<code>:<a>" after it.
func (k Keys) Pre(student int64) string {
	return k.tag + "pre:" + strconv.FormatInt(student, 10)
}

// Draw is the pre-queue's draw: entries, seed, total, cursor, state, times.
func (k Keys) Draw() string { return k.tag + "draw" }

// DrawList is the drawn order, "student:course" per entry.
func (k Keys) DrawList() string { return k.tag + "drawlist" }

// Lock is the redsync mutex name electing the drainer.
func (k Keys) Lock() string { return k.tag + "drainer" }

// Events is the Pub/Sub channel carrying decision results.
func (k Keys) Events() string { return k.tag + "events" }

// Notices is the Pub/Sub channel carrying notices for every queue-ws
// session that asked for them: the window opened (the pre-queue was drawn).
func (k Keys) Notices() string { return k.tag + "notices" }
