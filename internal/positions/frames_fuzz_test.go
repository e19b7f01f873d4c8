package positions

import (
	"testing"
	"time"
)

// FuzzHandleMessage: any client frame — valid, malformed, oversized ids,
// unknown types — is handled without a panic, and whatever the session
// sends back is a JSON frame (recSink checks) and an error frame names a
// known code.
func FuzzHandleMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"watch","request_id":1}`, `{"type":"unwatch","request_id":1}`, `{"type":"draw"}`,
		`{"type":"watch","request_id":-1}`, `{"type":"watch","request_id":9223372036854775807}`,
		`{"type":"watch","request_id":1e30}`, `{"type":"watch","request_id":"1"}`, `{"type":"nope"}`,
		`{"type":"watch"}`, `{}`, `[]`, `null`, `"watch"`, ``, `{`, `{"type":"watch","request_id":1}{"type":"draw"}`,
		"\xff\xfe", `{"type":"watch","request_id":1,"extra":[1,2,3]}`,
	} {
		f.Add([]byte(s))
	}
	b := setupLine(f)
	withDB(f, b, 2)
	e := New(Config{Line: b.q, Decisions: b.store, Redis: b.rdb, Keys: b.q.Keys(), Tick: time.Hour})
	f.Fuzz(func(t *testing.T, msg []byte) {
		sink := &recSink{}
		s := e.Open(1, sink)
		defer s.Close()
		s.HandleMessage(b.ctx, msg)
		for _, fr := range sink.all() {
			if fr.Type == "error" {
				if _, ok := errorMessages[fr.Code]; !ok {
					t.Fatalf("message %q: error frame with unknown code %q", msg, fr.Code)
				}
			}
		}
	})
}
