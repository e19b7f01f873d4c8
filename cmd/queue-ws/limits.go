package main

// Per-student socket cap and per-session message budget (issue #16): a ws
// token is valid for 15 minutes, so without a cap one token opens any number
// of sockets; and each client message (a watch of an unknown id costs a
// Redis lookup and a MariaDB query) would be free.

import (
	"net/http"
	"sync"
	"time"
)

// Defaults of options.MaxSocketsPerStudent, MsgRate and MsgBurst. A student
// has one registration page open, perhaps a few tabs; the web client sends
// a handful of watch frames when it opens a socket and one per new request.
const (
	defaultMaxSockets = 5
	defaultMsgRate    = 10 // messages a second, sustained
	defaultMsgBurst   = 40 // a page watching its every pending request (at most 32 a session) at once
)

// Timeouts of queue-ws's http.Server. They bound the handshake and the
// plain HTTP routes (/healthz, /metrics); a WebSocket is hijacked, and the
// upgrader clears the server's deadlines (melody then keeps its own: the
// pong wait for reads, WriteWait for writes).
const (
	wsReadHeaderTimeout = 5 * time.Second
	wsReadTimeout       = 10 * time.Second
	wsWriteTimeout      = 10 * time.Second
	wsIdleTimeout       = 90 * time.Second
	wsMaxHeaderBytes    = 16 << 10
)

// applyTimeouts sets the timeouts above on srv.
func applyTimeouts(srv *http.Server) {
	srv.ReadHeaderTimeout = wsReadHeaderTimeout
	srv.ReadTimeout = wsReadTimeout
	srv.WriteTimeout = wsWriteTimeout
	srv.IdleTimeout = wsIdleTimeout
	srv.MaxHeaderBytes = wsMaxHeaderBytes
}

// studentSockets counts the sockets each student holds on this instance.
type studentSockets struct {
	mu  sync.Mutex
	n   map[int64]int
	max int
}

func newStudentSockets(max int) *studentSockets {
	return &studentSockets{n: map[int64]int{}, max: max}
}

// acquire takes a socket slot for student; false when the cap is reached.
func (s *studentSockets) acquire(student int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[student] >= s.max {
		return false
	}
	s.n[student]++
	return true
}

// release gives back a slot acquire took.
func (s *studentSockets) release(student int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[student] <= 1 {
		delete(s.n, student)
		return
	}
	s.n[student]--
}

// held is how many sockets student holds.
func (s *studentSockets) held(student int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[student]
}

// msgBucket is a token bucket: rate tokens a second up to burst. A
// session's messages are handled one at a time (melody's read pump), so it
// needs no lock.
type msgBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newMsgBucket(rate, burst int) *msgBucket {
	return &msgBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token at now; false when the bucket is empty.
func (b *msgBucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
