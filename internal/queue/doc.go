// Package queue owns the Redis side of EnrollQ's registration line: tickets,
// the waiting sorted set, reliable pop with leases, recovery, cancellation,
// positions and the seat hints that let a burst be told "sold out" early.
//
// # Keys
//
// Every key of a term's queue carries the hash tag {eq:<term>} (see Keys), so
// each Lua script touches a single Redis Cluster slot. Each script lives in
// lua/ with a KEYS/ARGV/Returns header and runs as one round trip.
//
// # Life of a request
//
//	admit.lua    window flag, per-student rate limit, duplicate check, seat
//	             hint; INCR seq → ticket (arrival order at Redis, never a
//	             host clock); ZADD waiting+pending; hint -1.
//	pop.lua      ZPOPMIN waiting → ZADD inflight (lease deadline). The record
//	             stays in req until ack.
//	(decide)     the enroll package commits the decision in MariaDB.
//	ack.lua      remove from inflight/pending/req/dup, add to done, give the
//	             hint back unless enrolled, PUBLISH the results. Idempotent.
//	requeue.lua  recovery: inflight → waiting at the original ticket.
//	cancel.lua   waiting → inflight flagged "C"; decided as cancelled.
//
// # The pre-queue (prequeue.go)
//
//	admit.lua    window closed, pre-queue open: an entry in the student's
//	             pre hash ("q:<seq>"), no ticket.
//	drawlist.lua at the opening, one drawer at a time writes the drawn order
//	             (students shuffled with a recorded seed, each student's
//	             entries in the order sent).
//	admit.lua    with the draw's cursor: admits a batch of that order as
//	             above, records each entry's outcome, moves the cursor; a
//	             batch at a stale cursor does nothing, so each entry is
//	             drawn once whoever runs the draw and however often.
//
// # Guarantees
//
// Nothing is removed from the books before its decision is committed, so a
// drainer killed at any point loses nothing (at-least-once delivery; the
// MariaDB write is idempotent by request id, which makes it exactly-once).
// Tickets are dense: a ticket is taken only by an admitted request.
//
// # Positions in O(1) Redis calls
//
// For an undecided ticket t, ahead(t) = (t − head) − |done ∩ [head, t)|, where
// head is the lowest undecided ticket and done holds the tickets that left the
// line at or above the head (cancellations, out-of-order recoveries; ack.lua
// trims everything below the head). watermark.lua returns head, the last
// ticket and done-above-head in one call; every watcher's position is then
// local arithmetic (Watermark.Ahead). Because no ticket lower than t is ever
// handed out again and undecided requests only leave, ahead(t) never grows.
//
// The seat hint of a course is capacity − enrolled − pending requests. It only
// saves work: MariaDB decides, and reconcile.lua resets hints from it.
package queue
