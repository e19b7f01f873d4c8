package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
)

// buildLoadgen builds this command, to be started as the ws-holders (the
// test binary cannot be one).
func buildLoadgen(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "loadgen")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/enrollq/enrollq/cmd/loadgen")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build loadgen: %v\n%s", err, out)
	}
	return bin
}

// fakeQueueWS answers like the API's POST /api/v1/auth/ws-token and like
// queue-ws on /ws: a watch of an even request id gets a position frame and
// a result frame, of an odd one a position frame only (over two lines, as
// JSON may be: it goes up the pipe as B). Tokens starting with "bad" are
// refused at the handshake (HTTP 403).
type fakeQueueWS struct {
	srv *httptest.Server
	up  websocket.Upgrader

	mu      sync.Mutex
	phase   int // kicks so far
	conns   []*fakeConn
	watches []fakeWatch
}

type fakeConn struct {
	c         *websocket.Conn
	wmu       *sync.Mutex // one writer at a time
	token     string
	xff       string
	remoteIP  string
	phase     int
	closeCode int // the client's close frame (0: none yet, -1: closed without one)
}

type fakeWatch struct {
	token string
	id    int64
	phase int
}

func newFakeQueueWS(t *testing.T) *fakeQueueWS {
	f := &fakeQueueWS{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/ws-token", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"ws_token": tok, "ws_url": "/ws?token=" + tok})
	})
	mux.HandleFunc("GET /ws", f.serveWS)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeQueueWS) serveWS(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if strings.HasPrefix(tok, "bad") {
		http.Error(w, `{"error":{"code":"token_invalid"}}`, http.StatusForbidden)
		return
	}
	c, err := f.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	fc := &fakeConn{c: c, wmu: &sync.Mutex{}, token: tok, xff: r.Header.Get("X-Forwarded-For"), remoteIP: host}
	f.mu.Lock()
	fc.phase = f.phase
	f.conns = append(f.conns, fc)
	f.mu.Unlock()
	defer c.Close()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			code := -1
			if ce, ok := err.(*websocket.CloseError); ok {
				code = ce.Code
			}
			f.mu.Lock()
			fc.closeCode = code
			f.mu.Unlock()
			return
		}
		var m struct {
			Type      string `json:"type"`
			RequestID int64  `json:"request_id"`
		}
		if json.Unmarshal(msg, &m) != nil || m.Type != "watch" {
			continue
		}
		f.mu.Lock()
		f.watches = append(f.watches, fakeWatch{token: tok, id: m.RequestID, phase: f.phase})
		f.mu.Unlock()
		fc.frames(m.RequestID)
	}
}

// frames sends what a watch of id gets: a position, and for an even id its
// result.
func (fc *fakeConn) frames(id int64) {
	pos := fmt.Sprintf(`{"type":"position","request_id":%d,"position":50,"ahead":49,"ts":1}`, id)
	if id%2 == 1 {
		pos = fmt.Sprintf("{\"type\":\"position\",\n\"request_id\":%d,\"position\":50,\"ahead\":49,\"ts\":1}", id)
	}
	if fc.write(pos) != nil {
		return
	}
	if id%2 == 0 {
		_ = fc.write(fmt.Sprintf(`{"type":"result","request_id":%d,"status":"enrolled","reason":"","position":0,"ts":2}`, id))
	}
}

func (fc *fakeConn) write(msg string) error {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	return fc.c.WriteMessage(websocket.TextMessage, []byte(msg))
}

// push sends msgs, in order, on the open connections of token (as queue-ws
// tells a student's sessions waiting for the draw). After a drawn frame
// with a request it watches that request itself, as queue-ws does
// (positions.tellDrawn): no watch message is needed.
func (f *fakeQueueWS) push(t *testing.T, token string, msgs ...string) {
	t.Helper()
	f.mu.Lock()
	var open []*fakeConn
	for _, fc := range f.conns {
		if fc.token == token && fc.closeCode == 0 {
			open = append(open, fc)
		}
	}
	f.mu.Unlock()
	if len(open) == 0 {
		t.Fatalf("no open connection of %s", token)
	}
	for _, fc := range open {
		for _, m := range msgs {
			if err := fc.write(m); err != nil {
				t.Fatalf("push to %s: %v", token, err)
			}
			var d struct {
				Type      string `json:"type"`
				RequestID int64  `json:"request_id"`
			}
			if json.Unmarshal([]byte(m), &d) == nil && d.Type == "drawn" && d.RequestID > 0 {
				fc.frames(d.RequestID)
			}
		}
	}
}

// kick closes every open connection from the server side, as a queue-ws
// going away does.
func (f *fakeQueueWS) kick() {
	f.mu.Lock()
	f.phase++
	var open []*fakeConn
	for _, fc := range f.conns {
		if fc.closeCode == 0 {
			open = append(open, fc)
		}
	}
	f.mu.Unlock()
	for _, fc := range open {
		_ = fc.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down: reconnect"), time.Now().Add(time.Second))
		_ = fc.c.Close()
	}
}

func (f *fakeQueueWS) snapshot() ([]fakeConn, []fakeWatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	conns := make([]fakeConn, len(f.conns))
	for i, fc := range f.conns {
		conns[i] = *fc
	}
	return conns, slices.Clone(f.watches)
}

func (f *fakeQueueWS) wsURL(tok string) string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws?token=" + tok
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHoldWSProtocol runs the ws-holder's side of the protocol in process,
// over pipes: dial answers, frames forwarded byte for byte (M) or base64
// (B), the draw's frames with their student (S, T), counts, re-watching after a server close, the end of stdin closing
// every connection, and no goroutine left behind.
func TestHoldWSProtocol(t *testing.T) {
	srv := newFakeQueueWS(t)
	before := runtime.NumGoroutine()

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := holdWS(inR, outW, nil)
		outW.Close()
		done <- err
	}()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := newLineScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	counts := map[string]int64{}
	var got []string
	// next returns the next line that is not a K line (counted meanwhile).
	next := func() string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return ""
				}
				if k, ok := strings.CutPrefix(l, "K "); ok {
					name, v, _ := strings.Cut(k, " ")
					d, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						t.Fatalf("bad K line %q", l)
					}
					counts[name] += d
					continue
				}
				got = append(got, l)
				return l
			case <-time.After(20 * time.Second):
				t.Fatalf("no line from the ws-holder; so far %q", got)
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(inW, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	send("D 7 " + srv.wsURL("tok-7") + " 10.0.0.7")
	if l := next(); l != "O 7" {
		t.Fatalf("dial answer %q, want O 7", l)
	}
	send("D 8 " + srv.wsURL("bad-8") + " -")
	if l := next(); l != "F 8 ws dial: HTTP 403" {
		t.Fatalf("failed dial answer %q", l)
	}
	send("W 7 4") // even: position and result
	if l := next(); l != `M {"type":"position","request_id":4,"position":50,"ahead":49,"ts":1}` {
		t.Fatalf("frame line %q", l)
	}
	if l := next(); l != `M {"type":"result","request_id":4,"status":"enrolled","reason":"","position":0,"ts":2}` {
		t.Fatalf("frame line %q", l)
	}
	send("W 7 5") // odd: a position over two lines
	l := next()
	if b64, ok := strings.CutPrefix(l, "B "); !ok || b64 != "eyJ0eXBlIjoicG9zaXRpb24iLAoicmVxdWVzdF9pZCI6NSwicG9zaXRpb24iOjUwLCJhaGVhZCI6NDksInRzIjoxfQ==" {
		t.Fatalf("frame line %q, want B and the frame in base64", l)
	}
	// The draw's frames are the student's own: they go up with it (S, T).
	srv.push(t, "tok-7", `{"type":"drawn","course_id":12,"request_id":3051}`, `{"type":"drawn","course_id":14,"error":"sold_out"}`,
		"{\"type\":\"drawn\",\n\"course_id\":15,\"error\":\"sold_out\"}", `{"type":"opened","students":3,"spread_ms":1000,"ts":1}`)
	// The server watches the drawn request 3051 itself: its position (odd:
	// over two lines) follows the drawn frame.
	pos3051 := "B " + base64.StdEncoding.EncodeToString([]byte("{\"type\":\"position\",\n\"request_id\":3051,\"position\":50,\"ahead\":49,\"ts\":1}"))
	for _, want := range []string{`S 7 {"type":"drawn","course_id":12,"request_id":3051}`, pos3051, `S 7 {"type":"drawn","course_id":14,"error":"sold_out"}`,
		"T 7 " + base64.StdEncoding.EncodeToString([]byte("{\"type\":\"drawn\",\n\"course_id\":15,\"error\":\"sold_out\"}")),
		`S 7 {"type":"opened","students":3,"spread_ms":1000,"ts":1}`} {
		if l := next(); l != want {
			t.Fatalf("draw frame line %q, want %q", l, want)
		}
	}

	srv.kick()
	// After the reconnect only 5 is watched again (4 has its result).
	if l := next(); !strings.HasPrefix(l, "B ") {
		t.Fatalf("after the reconnect %q, want the position of 5 again", l)
	}
	_, watches := srv.snapshot()
	var rewatched []int64
	for _, w := range watches {
		if w.phase == 1 {
			rewatched = append(rewatched, w.id)
		}
	}
	if !slices.Equal(rewatched, []int64{5}) {
		t.Errorf("watched again after the server close: %v, want [5]", rewatched)
	}

	inW.Close() // the run went away: close everything and exit
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("holdWS: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("holdWS did not return after its stdin ended")
	}
	for next() != "" {
	}
	want := map[string]int64{"dials": 3, "dial_errors": 1, "drops": 1, "reconnects": 1, "open": 0, "sockets": 0}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("count %s = %d, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	waitFor(t, "the server to see the close", func() bool {
		conns, _ := srv.snapshot()
		return len(conns) == 2 && conns[1].closeCode != 0
	})
	conns, _ := srv.snapshot()
	if conns[0].xff != "10.0.0.7" || conns[1].xff != "10.0.0.7" || conns[1].closeCode != websocket.CloseNormalClosure {
		t.Errorf("server saw %+v: want two connections with X-Forwarded-For 10.0.0.7, the second closed normally", conns)
	}

	srv.srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHoldWSBadCommand(t *testing.T) {
	err := holdWS(strings.NewReader("W 1\n"), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), `bad command "W 1"`) {
		t.Errorf("holdWS = %v, want a bad command error", err)
	}
	if err := holdWS(strings.NewReader("C\nW 1\n"), io.Discard, nil); err != nil {
		t.Errorf("holdWS after C = %v, want nil (nothing is read after C)", err)
	}
}

// TestWSHoldersInChildProcesses runs real ws-holder processes (the loadgen
// binary) under a run against the fake queue-ws: connections, failed dials,
// frames reaching run.handleFrame, a server close followed by reconnects
// that watch the undecided requests again and not the decided ones, the
// draw's frames reaching the student they were sent to, the counters, and
// every ws-holder exiting after the run closes them.
func TestWSHoldersInChildProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds loadgen and starts processes")
	}
	bin := buildLoadgen(t)
	srv := newFakeQueueWS(t)
	r, err := newRun(config{BaseURL: srv.srv.URL, Sources: "127.0.0.1-127.0.0.2", Concurrency: 4, WSHolderBin: bin, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	r.rss = newRSSMonitor()
	const n, bad = 40, 4 // students, of whom the last 4 are refused at the handshake
	for i := range n {
		tok := "tok-" + strconv.Itoa(i)
		if i >= n-bad {
			tok = "bad-" + strconv.Itoa(i)
		}
		r.students = append(r.students, &student{idx: int32(i), withWS: true, ip: clientIP(i, n),
			tok: students.Token{StudentID: int64(i + 1), Token: tok}})
	}
	if err := r.startWSProcs(2); err != nil {
		t.Fatal(err)
	}
	procs := slices.Clone(r.wsProcs)
	t.Cleanup(func() { r.stopWSProcs(10 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r.connectAll(ctx, 8)
	const ok = n - bad
	if got := r.c.wsConnected.Load(); got != ok || r.c.wsConnectFailed.Load() != bad || r.c.connectErrors["HTTP "] != bad {
		t.Fatalf("connected %d failed %d errors %v; want %d, %d HTTP", got, r.c.wsConnectFailed.Load(), r.c.connectErrors, ok, bad)
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"dials", r.c.wsDials.Load(), n}, {"dial errors", r.c.wsDialErrors.Load(), bad}, {"open", r.wsOpen.Load(), ok},
		{"peak open", r.wsPeak.Load(), ok}, {"sockets", r.wsSockets.Load(), ok}} {
		if c.got != c.want {
			t.Errorf("after connecting: %s = %d, want %d", c.name, c.got, c.want)
		}
	}
	conns, _ := srv.snapshot()
	ips := map[string]bool{}
	for _, fc := range conns {
		i, _ := strconv.Atoi(strings.TrimPrefix(fc.token, "tok-"))
		if fc.xff != clientIP(i, n) {
			t.Errorf("%s: X-Forwarded-For %q, want %q", fc.token, fc.xff, clientIP(i, n))
		}
		ips[fc.remoteIP] = true
	}
	if len(ips) != 2 || !ips["127.0.0.1"] || !ips["127.0.0.2"] {
		t.Errorf("source addresses %v, want 127.0.0.1 and 127.0.0.2", ips)
	}
	holders := map[*wsProc]int{}
	for _, st := range r.students {
		if st.ws != nil {
			holders[st.ws.(*remoteWS).p]++
		}
	}
	// Dials alternate between the two; which four fail depends on timing.
	if len(holders) != 2 || holders[procs[0]] < (n-2*bad)/2 || holders[procs[1]] < (n-2*bad)/2 {
		t.Errorf("connections per ws-holder %v, want both in use, about %d each", holders, ok/2)
	}

	// Two requests per student: 1000i+2 is decided at once, 1000i+1 stays in line.
	var decided, waiting []*reqRec
	for _, st := range r.students[:ok] {
		for _, id := range []int64{1000*int64(st.idx) + 2, 1000*int64(st.idx) + 1} {
			rec := &reqRec{ID: id, Student: st.tok.StudentID, st: st, FirstPos: 100, LastPos: 100}
			r.tr.add(rec)
			st.ws.watch(rec)
			if id%2 == 0 {
				decided = append(decided, rec)
			} else {
				waiting = append(waiting, rec)
			}
		}
	}
	frames := func(recs []*reqRec, n int32) func() bool {
		return func() bool {
			for _, rec := range recs {
				rec.mu.Lock()
				f := rec.Frames
				rec.mu.Unlock()
				if f < n {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "every decision", func() bool { return r.unresolved() == len(waiting) })
	waitFor(t, "the positions of the waiting requests", frames(waiting, 1))
	for _, rec := range decided {
		if rec.Status != "enrolled" || rec.Source != srcWS || rec.WSResults != 1 || !rec.Watched {
			t.Fatalf("request %d: %+v", rec.ID, rec.view())
		}
	}

	srv.kick()
	waitFor(t, "the reconnects", func() bool { return r.c.wsReconnects.Load() == ok && r.wsOpen.Load() == ok })
	waitFor(t, "the positions of the re-watched requests", frames(waiting, 2))
	_, watches := srv.snapshot()
	rewatched := map[int64]int{}
	for _, w := range watches {
		if w.phase == 1 {
			rewatched[w.id]++
		}
	}
	for _, rec := range waiting {
		if rewatched[rec.ID] != 1 {
			t.Errorf("request %d watched %d times after the reconnect, want once", rec.ID, rewatched[rec.ID])
		}
	}
	if len(rewatched) != len(waiting) {
		t.Errorf("%d requests watched after the reconnect, want the %d undecided ones", len(rewatched), len(waiting))
	}

	// The pre-queue's draw: each connected student has two entries, told by
	// drawn frames (one admitted, one refused) and then an opened frame,
	// which come up from the ws-holders with the student; queue-ws watches
	// the admitted request on the same connection itself (no watch message
	// is sent for it), and nobody reads GET /me/requests (the fake API has
	// none).
	pq := &prequeueRun{refused: map[string]int64{}, learnErrs: map[string]int64{}}
	for _, st := range r.students {
		st.cart, st.cancel, st.pre = []int64{101, 102}, []bool{false, false}, []uint8{preEntered, preEntered}
	}
	r.prepareLearn(ctx, pq)
	pq.callNs.Store(r.now())
	if len(pq.todo) != n || pq.withSession != ok {
		t.Fatalf("learners %d with session %d, want %d, %d", len(pq.todo), pq.withSession, n, ok)
	}
	for _, st := range r.students[:ok] {
		id := 1000*int64(st.idx) + 4
		srv.push(t, st.tok.Token, fmt.Sprintf(`{"type":"drawn","course_id":101,"request_id":%d}`, id),
			`{"type":"drawn","course_id":102,"error":"sold_out"}`, `{"type":"opened","students":40,"spread_ms":1000,"ts":1}`)
	}
	waitFor(t, "the drawn frames and the opened frames", func() bool {
		return pq.viaWS.Load() == ok && pq.openedFrames.Load() == ok
	})
	var drawn []*reqRec
	for _, st := range r.students[:ok] {
		rec := r.tr.get(1000*int64(st.idx) + 4)
		if rec == nil || rec.Course != 101 || rec.st != st {
			t.Fatalf("student %d: drawn request %+v", st.idx, rec)
		}
		drawn = append(drawn, rec)
	}
	waitFor(t, "the results of the drawn requests, watched on the same connections", func() bool {
		for _, rec := range drawn {
			if !rec.resolved() {
				return false
			}
		}
		return true
	})
	_, watches = srv.snapshot()
	for _, w := range watches {
		for _, rec := range drawn {
			if w.id == rec.ID {
				t.Fatalf("a watch message for drawn request %d: the server watches it itself", w.id)
			}
		}
	}
	if pq.drawnFrames.Load() != 2*ok || pq.byFrame.Load() != 2*ok || pq.drawn.Load() != ok || pq.refusedSnapshot()["sold_out"] != ok ||
		pq.viaGET.Load() != 0 || pq.readsMissing.Load() != 0 || pq.strayFrames.Load() != 0 || pq.pending.Load() != bad {
		t.Errorf("draw: drawn frames %d, told %d, drawn %d, refused %v, via GET %d, reads %d, stray %d, pending %d",
			pq.drawnFrames.Load(), pq.byFrame.Load(), pq.drawn.Load(), pq.refusedSnapshot(), pq.viaGET.Load(),
			pq.readsMissing.Load(), pq.strayFrames.Load(), pq.pending.Load())
	}
	pq.sched.close()

	r.rss.sample()
	r.closeWS()
	for _, p := range procs {
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("ws-holder %d: %v", p.n, p.waitErr)
			}
		default:
			t.Errorf("ws-holder %d still running after closeWS", p.n)
		}
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"dials", r.c.wsDials.Load(), n + ok}, {"dial errors", r.c.wsDialErrors.Load(), bad}, {"drops", r.c.wsDrops.Load(), ok},
		{"reconnects", r.c.wsReconnects.Load(), ok}, {"write errors", r.c.wsWriteErrors.Load(), 0}, {"open", r.wsOpen.Load(), 0},
		{"peak open", r.wsPeak.Load(), ok}, {"sockets", r.wsSockets.Load(), 0},
		{"position frames", r.c.positionFrames.Load(), 4 * ok}, {"result frames", r.c.resultFrames.Load(), 2 * ok},
		{"bad frames", r.c.badFrames.Load(), 0}, {"unknown frames", r.c.unknownFrames.Load(), 0}} {
		if c.got != c.want {
			t.Errorf("at the end: %s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// The refused handshakes' sockets may have been open beside all the others.
	if p := r.wsSocketsPeak.Load(); p < ok || p > n {
		t.Errorf("peak sockets %d, want %d..%d", p, ok, n)
	}
	waitFor(t, "the server to see every close", func() bool {
		conns, _ := srv.snapshot()
		for _, fc := range conns {
			if fc.closeCode == 0 {
				return false
			}
		}
		return true
	})
	conns, _ = srv.snapshot()
	normal := 0
	for _, fc := range conns {
		if fc.phase == 1 && fc.closeCode == websocket.CloseNormalClosure {
			normal++
		}
	}
	if normal != ok {
		t.Errorf("%d connections closed with a normal close frame, want %d", normal, ok)
	}
	_, _, count := r.rss.result()
	if count["loadgen-ws"] != 2 {
		t.Errorf("processes %v, want loadgen-ws 2", count)
	}
}
