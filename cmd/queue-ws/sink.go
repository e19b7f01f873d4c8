package main

import (
	"sync"
	"sync/atomic"

	"github.com/olahol/melody"

	"github.com/enrollq/enrollq/internal/positions"
)

// positionHeadroom is how many buffer slots position frames leave free, so a
// result frame and a close frame always fit behind them.
const positionHeadroom = 4

// wsSink adapts a melody session to positions.Sink.
//
// melody's Session.Write never blocks: when the session's buffer
// (Config.MessageBufferSize) is full it drops the message and reports
// ErrMessageBufferFull to the error handler, and returns nil. So the sink
// keeps its own count of queued frames (incremented here, decremented by the
// sent-message handler) and decides before writing: a position is refused
// when fewer than positionHeadroom slots are free, a result when only the
// slot for the close frame is left. The error handler's full flag is a
// second check in case the count is ever behind.
type wsSink struct {
	sess   *melody.Session
	limit  int32 // MessageBufferSize
	queued atomic.Int32
	full   atomic.Bool
	closed atomic.Bool
	mu     sync.Mutex // one writer at a time, so full belongs to our Write
}

var _ positions.Sink = (*wsSink)(nil)

func newSink(s *melody.Session, bufferSize int) *wsSink {
	return &wsSink{sess: s, limit: int32(bufferSize)}
}

// Send implements positions.Sink.
func (k *wsSink) Send(frame []byte, droppable bool) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed.Load() {
		return false
	}
	if k.sess.IsClosed() {
		// The connection is gone and the disconnect handler is on its way.
		// A result is moot here (the client reads it on reconnect), so it
		// is not reported as refused: that would count a slow consumer.
		return !droppable
	}
	room := k.limit - 1 // the last slot is the close frame's
	if droppable {
		room = k.limit - positionHeadroom
	}
	if k.queued.Load() >= room {
		return false
	}
	k.queued.Add(1)
	k.full.Store(false)
	if err := k.sess.Write(frame); err != nil || k.full.Load() {
		k.queued.Add(-1)
		return false
	}
	return true
}

// Close implements positions.Sink: it queues a close frame (there is always
// room for it) and melody closes the connection once it is written.
func (k *wsSink) Close(code int, reason string) {
	if k.closed.Swap(true) {
		return
	}
	_ = k.sess.CloseWithMsg(melody.FormatCloseMessage(code, reason))
}

// sent is called by melody after a text frame was written.
func (k *wsSink) sent() { k.queued.Add(-1) }
