// Package positions is the fan-out engine behind cmd/queue-ws: it keeps the
// registry of WebSocket sessions of one instance, tells every waiting student
// their live position and ETA once per tick, and routes each decision to the
// sessions watching that request, exactly once. It knows nothing of melody,
// Gin or HTTP: a session writes through a Sink, which cmd/queue-ws implements
// over a melody session and tests and benchmarks implement with plain slices
// or discarding sinks.
//
// # Cost per tick
//
// Whatever the number of sessions, one tick makes one Redis call: Line.
// ReadWatermark (watermark.lua) returns the lowest undecided ticket (head),
// the last ticket, the decided counter and the few tickets that left the line
// out of order above the head. Every watched ticket's position is then local
// arithmetic (queue.Watermark.Ahead): a binary search in that short list. The
// frame of a request is encoded once (append-style, into a chunked arena: no
// encoding/json, about one allocation per few hundred frames) and handed to
// every session watching it (several tabs share it).
//
// # Honest positions
//
// For an undecided ticket t, ahead(t) = (t − head) − |done ∩ [head, t)|. Read
// at two moments r1 < r2 (Redis executes scripts one at a time, so reads are
// totally ordered), ahead(t) at r2 ≤ ahead(t) at r1: tickets are handed out
// in increasing order (INCR), so no ticket lower than t can appear after t
// was admitted; undecided requests only ever leave the line (ack, cancel) and
// nothing re-enters it (a requeue puts an in-flight request back at its own
// ticket, but it never left the pending set, so it was counted all along).
// ahead(t) is exactly the number of pending requests below t, and that set
// only shrinks. So the formula alone is monotonic, for any single reader.
//
// The engine still clamps: it keeps the lowest position computed per request
// and sends min(last, new). The clamp covers what the formula cannot see: a
// done list truncated at Config.MaxDone (Ahead then over-counts), tickets
// skipped when the counter was raised by reconciliation after Redis lost
// data, and the ordering between two sources of reads (a Lookup answered
// after a tick's read started).
//
// Across instances (a client reconnecting to another queue-ws) there is no
// shared clamp, so the engine makes sure that every frame a new watcher gets
// comes from a read that started after the watch was registered: a watch
// records the tick sequence number at registration (since) and a tick only
// writes to watchers with since < its own number; the first frame comes from
// the Lookup made while registering (a fresh read). A client therefore never
// sees a value read before a value it has already seen: positions never
// increase, even across a reconnect, and reach the result frame when decided.
//
// # ETA
//
// The drain rate is measured from the decided counter of successive
// watermarks, as an exponentially weighted moving average with a time
// constant of Config.RateWindow (5 s). eta_seconds = ceil(ahead / rate); it is
// omitted while the rate is unknown or zero (before the first two ticks, or
// while nothing is decided). The ETA is honest rather than monotonic: if the
// drain slows down, it grows.
//
// # Results
//
// One Redis Pub/Sub subscription per instance (RunEvents) receives the JSON
// arrays of queue.ResultEvent that ack.lua publishes, and routes each event
// to the local sessions watching that request id (unknown ids are skipped).
// It reconnects with exponential backoff. Messages published while it was
// disconnected are lost, so a safety net watches the watermark: a watched
// ticket below the head (or in the done list) for Config.SafetyGrace ticks
// without a result is looked up in MariaDB (Decisions, batched, one query in
// flight, retried with backoff) and delivered from there. A client that
// watches a request already decided gets the durable decision at once.
//
// A request's entry is removed from the registry under its shard lock when
// its result is routed, and every session records which ids it has been
// given a result for, so a session gets exactly one result per request no
// matter how many paths (Pub/Sub, safety net, a replayed ack) report it.
//
// # Slow consumers
//
// Sinks never block. Position frames are droppable: a sink may refuse one
// when the session's buffer is nearly full; the engine counts it and moves on
// (the next tick carries a fresher value). Result frames are not: when a sink
// refuses a result, the engine closes the session with CloseSlowConsumer, and
// the client reconnects and reads the durable result.
//
// # Concurrency contract
//
// The registry is split in shards (request id modulo 64), each behind a
// mutex. Lock order is shard, then session; sinks are called with a shard
// lock held and must therefore return quickly and never call back into the
// engine. Ticks are serialised by one mutex. Every exported method of Engine
// and Session is safe for concurrent use. Run (or RunEvents, RunTicks, ...)
// returns when its context ends, after every goroutine it started is done.
package positions
