package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsLink is where a student's queue-ws connection lives: a wsConn in this
// process, or one that a ws-holder child process holds (wsprocs.go).
type wsLink interface {
	watch(rec *reqRec) // ask for positions and the result of rec
	adopt(rec *reqRec) // rec is watched already (the server watches a drawn request itself): re-watch it on reconnect only
	close()            // close the connection with a normal close frame
}

// wsCounter names what a wsConn counts; the run keeps the counters
// (run.wsCount), and a ws-holder child sends them up its pipe by name.
type wsCounter int

const (
	cntDials       wsCounter = iota // dial attempts, first and reconnects
	cntDialErrors                   // dial attempts that failed
	cntDrops                        // connections the server closed
	cntReconnects                   // reconnect attempts
	cntWriteErrors                  // watch messages that could not be written
	cntOpen                         // open connections (±1)
	cntSockets                      // open client sockets, handshakes included (±1)
)

var wsCounterNames = [...]string{"dials", "dial_errors", "drops", "reconnects", "write_errors", "open", "sockets"}

// wsEvents is what a wsConn reports to: the run itself when the connection
// is held in this process, the pipe to the run in a ws-holder child.
type wsEvents interface {
	wsCount(c wsCounter, delta int64)
	wsFrame(idx int32, msg []byte) // one message as received on student idx's connection
	wsDone(id int64) bool          // id needs no watch after a reconnect (decided, or unknown)
}

// wsConn is one student's queue-ws connection. It is opened before the
// burst (like a registration page left open before 10:00), watches each
// request of the student as it is admitted, and reconnects (re-watching
// what is still undecided) if the server closes it.
type wsConn struct {
	ev  wsEvents
	wg  *sync.WaitGroup // counts the read loop
	idx int32           // the student's (the frames of its draw are its own)
	url string
	ip  string // X-Forwarded-For, "" for none

	mu      sync.Mutex // serialises writes and swaps of c
	c       *websocket.Conn
	ids     []int64 // watched request ids, for re-watching after a reconnect
	closing bool
}

var wsBufPool = &sync.Pool{}

func (r *run) wsDialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   r.src.dialContext(&r.wsSockets, &r.wsSocketsPeak),
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  256,
		WriteBufferPool:  wsBufPool,
	}
}

// wsEndpoint returns the URL a student's connection dials: one of the
// -ws-direct endpoints (round-robin by student) or the API's ws_url resolved
// against the base URL (through nginx).
func (r *run) wsEndpoint(st *student, apiWSURL string) (string, error) {
	if len(r.cfg.WSDirect) > 0 {
		base := r.cfg.WSDirect[int(st.idx)%len(r.cfg.WSDirect)]
		u, err := url.Parse(apiWSURL)
		if err != nil {
			return "", err
		}
		b, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		b.RawQuery = u.RawQuery
		return b.String(), nil
	}
	base, err := url.Parse(r.cfg.BaseURL)
	if err != nil {
		return "", err
	}
	u, err := base.Parse(apiWSURL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	return u.String(), nil
}

// connectWS gets a queue-ws token for st and opens its connection. With
// -prequeue the connection waits for the draw (draw=1), as the page of a
// student with pre-queue entries does: the outcome of each entry comes as a
// drawn frame, then an opened frame (prequeue.go).
func (r *run) connectWS(ctx context.Context, st *student, d *websocket.Dialer) error {
	_, wsURL, err := r.api.wsToken(ctx, st.who())
	if err != nil {
		return err
	}
	endpoint, err := r.wsEndpoint(st, wsURL)
	if err != nil {
		return err
	}
	if r.cfg.Prequeue > 0 {
		if endpoint, err = withQuery(endpoint, "draw", "1"); err != nil {
			return err
		}
	}
	return r.openWS(ctx, st, endpoint, d)
}

// withQuery sets the query parameter k=v of URL s.
func withQuery(s, k, v string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// openWS opens st's connection to endpoint: in this process, or in one of
// the ws-holder children when the run has them (round-robin).
func (r *run) openWS(ctx context.Context, st *student, endpoint string, d *websocket.Dialer) error {
	if len(r.wsProcs) > 0 {
		p := r.wsProcs[(r.wsNext.Add(1)-1)%uint64(len(r.wsProcs))]
		l, err := p.dial(ctx, st.idx, endpoint, st.ip)
		if err != nil {
			return err
		}
		st.ws = l
		return nil
	}
	w := &wsConn{ev: r, wg: &r.wsWG, idx: st.idx, url: endpoint, ip: st.ip}
	if err := w.dial(ctx, d); err != nil {
		return err
	}
	st.ws = w
	return nil
}

func (w *wsConn) dial(ctx context.Context, d *websocket.Dialer) error {
	w.ev.wsCount(cntDials, 1)
	h := http.Header{}
	if w.ip != "" {
		h.Set("X-Forwarded-For", w.ip)
	}
	c, resp, err := d.DialContext(ctx, w.url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		w.ev.wsCount(cntDialErrors, 1)
		if resp != nil {
			return errors.New("ws dial: HTTP " + strconv.Itoa(resp.StatusCode))
		}
		return err
	}
	c.SetReadLimit(1 << 16)
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		c.Close()
		return errors.New("ws dial: run is ending")
	}
	w.c = c
	w.wg.Add(1) // under mu: close() cannot have started waiting for this one
	w.mu.Unlock()
	w.ev.wsCount(cntOpen, 1)
	go w.readLoop(ctx, c, d)
	return nil
}

// watch asks the server for positions and the result of rec.
func (w *wsConn) watch(rec *reqRec) {
	rec.mu.Lock()
	rec.Watched = true
	rec.mu.Unlock()
	w.watchID(rec.ID)
}

func (w *wsConn) adopt(rec *reqRec) {
	rec.mu.Lock()
	rec.Watched = true
	rec.mu.Unlock()
	w.adoptID(rec.ID)
}

// adoptID records request id as watched without sending a watch: the
// server watches it already; a reconnect names it.
func (w *wsConn) adoptID(id int64) {
	w.mu.Lock()
	w.ids = append(w.ids, id)
	w.mu.Unlock()
}

// watchID sends a watch of request id (or leaves it for the reconnect).
func (w *wsConn) watchID(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ids = append(w.ids, id)
	if w.c == nil || w.closing {
		return // re-watched on reconnect
	}
	if err := w.send(id); err != nil {
		w.ev.wsCount(cntWriteErrors, 1)
	}
}

func (w *wsConn) send(id int64) error {
	_ = w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	msg := `{"type":"watch","request_id":` + strconv.FormatInt(id, 10) + `}`
	return w.c.WriteMessage(websocket.TextMessage, []byte(msg))
}

func (w *wsConn) close() {
	w.mu.Lock()
	w.closing = true
	c := w.c
	w.mu.Unlock()
	if c != nil {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(time.Second))
		_ = c.Close()
	}
}

func (w *wsConn) readLoop(ctx context.Context, c *websocket.Conn, d *websocket.Dialer) {
	defer w.wg.Done()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			c.Close()
			w.ev.wsCount(cntOpen, -1)
			w.mu.Lock()
			closing := w.closing
			if w.c == c {
				w.c = nil
			}
			w.mu.Unlock()
			if closing || ctx.Err() != nil {
				return
			}
			w.ev.wsCount(cntDrops, 1)
			w.reconnect(ctx, d)
			return
		}
		w.ev.wsFrame(w.idx, msg)
	}
}

// reconnect dials again with backoff and re-watches every undecided request.
func (w *wsConn) reconnect(ctx context.Context, d *websocket.Dialer) {
	for attempt := 1; attempt <= 8; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
		}
		w.mu.Lock()
		closing := w.closing
		w.mu.Unlock()
		if closing {
			return
		}
		w.ev.wsCount(cntReconnects, 1)
		if err := w.dial(ctx, d); err != nil {
			continue
		}
		w.mu.Lock()
		for _, id := range w.ids {
			if !w.ev.wsDone(id) && w.c != nil {
				if err := w.send(id); err != nil {
					w.ev.wsCount(cntWriteErrors, 1)
				}
			}
		}
		w.mu.Unlock()
		return
	}
}

// wsCount applies a wsConn's count, of this process or of a ws-holder child.
func (r *run) wsCount(c wsCounter, delta int64) {
	switch c {
	case cntDials:
		r.c.wsDials.Add(delta)
	case cntDialErrors:
		r.c.wsDialErrors.Add(delta)
	case cntDrops:
		r.c.wsDrops.Add(delta)
	case cntReconnects:
		r.c.wsReconnects.Add(delta)
	case cntWriteErrors:
		r.c.wsWriteErrors.Add(delta)
	case cntOpen:
		r.noteWSOpen(delta)
	case cntSockets:
		storeMax(&r.wsSocketsPeak, r.wsSockets.Add(delta))
	}
}

func (r *run) wsFrame(idx int32, msg []byte) { r.handleFrame(idx, msg) }

// wsDone: a request loadgen does not track, or whose decision it knows
// from any source, is not watched again after a reconnect.
func (r *run) wsDone(id int64) bool {
	rec := r.tr.get(id)
	return rec == nil || rec.resolved()
}

// handleFrame applies one queue-ws message, received on student idx's
// connection (-1: unknown), to the bookkeeping.
func (r *run) handleFrame(idx int32, msg []byte) {
	f, err := parseFrame(msg)
	if err != nil {
		r.c.badFrames.Add(1)
		return
	}
	switch f.Type {
	case "position":
		r.c.positionFrames.Add(1)
		rec := r.tr.get(f.RequestID)
		if rec == nil || !f.HasPos {
			r.c.unknownFrames.Add(1)
			return
		}
		rec.observePosition(f.Position)
	case "result":
		r.c.resultFrames.Add(1)
		rec := r.tr.get(f.RequestID)
		if rec == nil {
			r.c.unknownFrames.Add(1)
			return
		}
		if rec.observeResult(f.Status, f.Reason, srcWS, r.now()) {
			r.afterResult(rec)
		}
	case "drawn", "opened": // the pre-queue's draw: the frames of one student
		var st *student
		if idx >= 0 && int(idx) < len(r.students) {
			st = r.students[idx]
		}
		r.drawFrame(st, &f)
	case "error":
		r.c.errorFrames.Add(1)
		r.c.refusedMu.Lock()
		r.c.wsErrors[strings.ToLower(f.Code)]++
		r.c.refusedMu.Unlock()
	default:
		r.c.otherFrames.Add(1)
	}
}
