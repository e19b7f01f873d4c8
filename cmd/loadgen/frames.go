package main

import (
	"encoding/json"
	"errors"
	"strconv"
)

// frame is what loadgen reads from a queue-ws message:
// {"type":"position","request_id":N,"position":N,"ahead":N,"eta_seconds":N}
// {"type":"result","request_id":N,"status":"...","reason":"..."}
// {"type":"error","request_id":N,"code":"..."}
// {"type":"drawn","course_id":N,"request_id":N,"ts":N} or {"type":"drawn","course_id":N,"error":"...","ts":N}
// {"type":"opened","students":N,"spread_ms":N,"ts":N}
type frame struct {
	Type      string
	RequestID int64
	Position  int64
	HasPos    bool
	Ahead     int64
	ETA       int64
	HasETA    bool
	Status    string
	Reason    string
	Code      string
	CourseID  int64  // drawn: the entry's section
	Error     string // drawn: the refusal (sold_out, ...)
	Students  int64  // opened: pre-queued students
	SpreadMS  int64  // opened: how long the pages' reads are spread
	TS        int64  // when queue-ws sent it (Unix ms), where the frame says
}

var errBadFrame = errors.New("bad frame")

// parseFrame decodes one flat JSON object frame. Every message queue-ws sends
// is a flat object of strings and integers, so a small scanner does the job
// at a fraction of encoding/json's cost (a 100k-connection run reads more
// than 100,000 frames a second on the same two cores as the servers).
// Anything it does not expect (nested values, floats) falls back to
// encoding/json.
func parseFrame(b []byte) (frame, error) {
	var f frame
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return f, errBadFrame
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return f, nil
		}
		key, j, ok := scanString(b, i)
		if !ok {
			return slowFrame(b)
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return f, errBadFrame
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return f, errBadFrame
		}
		switch c := b[i]; {
		case c == '"':
			v, j, ok := scanString(b, i)
			if !ok {
				return slowFrame(b)
			}
			i = j
			switch key {
			case "type":
				f.Type = v
			case "status":
				f.Status = v
			case "reason":
				f.Reason = v
			case "code":
				f.Code = v
			case "error":
				f.Error = v
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
				return slowFrame(b)
			}
			n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
			if err != nil {
				return f, errBadFrame
			}
			i = j
			switch key {
			case "request_id":
				f.RequestID = n
			case "position":
				f.Position, f.HasPos = n, true
			case "ahead":
				f.Ahead = n
			case "eta_seconds":
				f.ETA, f.HasETA = n, true
			case "course_id":
				f.CourseID = n
			case "students":
				f.Students = n
			case "spread_ms":
				f.SpreadMS = n
			case "ts":
				f.TS = n
			}
		case c == 'n' || c == 't' || c == 'f': // null, true, false
			j := i
			for j < len(b) && b[j] >= 'a' && b[j] <= 'z' {
				j++
			}
			i = j
		default:
			return slowFrame(b)
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return f, nil
		}
		return f, errBadFrame
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string at b[i] without escapes; ok is false for
// anything else (the caller falls back to encoding/json).
func scanString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			return "", i, false
		case '"':
			return string(b[i+1 : j]), j + 1, true
		}
	}
	return "", i, false
}

// slowFrame decodes b with encoding/json.
func slowFrame(b []byte) (frame, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return frame{}, errBadFrame
	}
	var f frame
	str := func(k string) string { s, _ := m[k].(string); return s }
	num := func(k string) (int64, bool) {
		x, ok := m[k].(float64)
		return int64(x), ok
	}
	f.Type, f.Status, f.Reason, f.Code, f.Error = str("type"), str("status"), str("reason"), str("code"), str("error")
	f.RequestID, _ = num("request_id")
	f.Position, f.HasPos = num("position")
	f.Ahead, _ = num("ahead")
	f.ETA, f.HasETA = num("eta_seconds")
	f.CourseID, _ = num("course_id")
	f.Students, _ = num("students")
	f.SpreadMS, _ = num("spread_ms")
	f.TS, _ = num("ts")
	return f, nil
}
