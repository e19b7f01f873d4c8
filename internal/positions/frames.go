package positions

import (
	"strconv"
	"unicode/utf8"
)

// WebSocket close codes the engine and cmd/queue-ws use. 1001 is RFC 6455's
// "going away"; 4000-4999 are private to the application.
const (
	// CloseGoingAway: the instance is shutting down; reconnect (nginx sends
	// the new connection to another instance).
	CloseGoingAway = 1001
	// CloseSlowConsumer: the client did not read fast enough to take a
	// result frame; reconnect and the durable result is sent on watch.
	CloseSlowConsumer = 4001
	// CloseInvalidToken: the token was refused (used in-band only by clients
	// that could not see the HTTP 401 of the handshake).
	CloseInvalidToken = 4401
	// CloseTooManySessions: the student already holds the most sockets one
	// instance allows (cmd/queue-ws, default 5); the new socket is closed at
	// once. Close another tab, or wait: do not reconnect in a loop.
	CloseTooManySessions = 4008
	// CloseTooManyMessages: the client sent more messages than the
	// per-session budget (default 10 a second, bursts of 40); reconnect
	// after a pause.
	CloseTooManyMessages = 4009
	// CloseRevoked: the session's token was revoked (a password change or a
	// registrar's revoke since it was issued); log in again for a new one.
	CloseRevoked = 4010
)

// Close reasons sent with the codes above.
const (
	ReasonGoingAway       = "shutting down: reconnect"
	ReasonSlowConsumer    = "slow consumer: reconnect to read your result"
	ReasonTooManySessions = "too many sessions for this student"
	ReasonTooManyMessages = "too many messages: slow down"
	ReasonRevoked         = "session revoked: log in again"
)

// Error codes of {"type":"error"} frames.
const (
	ErrCodeForbidden   = "forbidden"        // the request belongs to another student
	ErrCodeNotFound    = "not_found"        // no such request (never admitted)
	ErrCodeTooMany     = "too_many_watches" // Config.MaxWatches active watches already
	ErrCodeBadMessage  = "bad_message"      // the client message is not understood
	ErrCodeUnavailable = "unavailable"      // Redis or MariaDB did not answer; retry
	ErrCodeBadRequest  = "bad_request_id"   // request_id must be a positive integer
	errCodeUnknown     = "internal"         // never expected
)

const (
	maxPositionFrame = 160      // upper bound of a position frame's length
	arenaChunk       = 32 << 10 // bytes per arena chunk
	jsonHex          = "0123456789abcdef"
)

var errorMessages = map[string][2]string{ // code → {Korean, English}
	ErrCodeForbidden:   {"다른 학생의 신청입니다.", "This request belongs to another student."},
	ErrCodeNotFound:    {"신청을 찾을 수 없습니다.", "No such request."},
	ErrCodeTooMany:     {"한 연결에서 지켜볼 수 있는 신청 수를 넘었습니다.", "Too many requests watched on one connection."},
	ErrCodeBadMessage:  {"메시지 형식이 올바르지 않습니다.", `The message is not understood; send {"type":"watch","request_id":N}.`},
	ErrCodeUnavailable: {"일시적으로 확인할 수 없습니다. 다시 연결하세요.", "Temporarily unavailable; reconnect shortly."},
	ErrCodeBadRequest:  {"잘못된 신청 번호입니다.", "request_id must be a positive integer."},
	errCodeUnknown:     {"서버 오류가 발생했습니다.", "Internal server error."},
}

// appendPosition appends a position frame. eta < 0 omits eta_seconds.
func appendPosition(b []byte, id, pos, eta, ts int64) []byte {
	b = append(b, `{"type":"position","request_id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, pos, 10)
	b = append(b, `,"ahead":`...)
	b = strconv.AppendInt(b, pos-1, 10)
	if eta >= 0 {
		b = append(b, `,"eta_seconds":`...)
		b = strconv.AppendInt(b, eta, 10)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}

// appendResult appends a result frame; position 0 marks the end of the wait.
func appendResult(b []byte, id int64, status, reason string, ts int64) []byte {
	b = append(b, `{"type":"result","request_id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"status":`...)
	b = appendString(b, status)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `,"position":0,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}

// appendError appends an error frame about request id (0: none).
func appendError(b []byte, id int64, code string) []byte {
	msg, ok := errorMessages[code]
	if !ok {
		msg = errorMessages[errCodeUnknown]
	}
	b = append(b, `{"type":"error"`...)
	if id != 0 {
		b = append(b, `,"request_id":`...)
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg[0])
	b = append(b, `,"message_en":`...)
	b = appendString(b, msg[1])
	return append(b, '}')
}

// appendString appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// arena hands out frames carved from shared chunks, so a tick allocates one
// chunk per few hundred frames instead of one slice per frame. A frame is
// never written again once handed out, so sinks may keep it; a chunk is
// freed by the GC when the last frame in it has been written.
type arena struct {
	chunk []byte
}

// next returns an empty slice with room for at least n bytes.
func (a *arena) next(n int) []byte {
	if cap(a.chunk)-len(a.chunk) < n {
		a.chunk = make([]byte, 0, max(arenaChunk, n))
	}
	return a.chunk[len(a.chunk):len(a.chunk)]
}

// keep seals b, which was appended to a slice from next, and returns it with
// its capacity clipped so that no later append can reach the next frame.
func (a *arena) keep(b []byte) []byte {
	if len(b) > cap(a.chunk)-len(a.chunk) {
		return b // outgrew the room asked for: append gave it its own array
	}
	a.chunk = a.chunk[:len(a.chunk)+len(b)]
	return b[:len(b):len(b)]
}
