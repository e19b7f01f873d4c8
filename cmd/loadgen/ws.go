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

// wsConn is one student's queue-ws connection. It is opened before the
// burst (like a registration page left open before 10:00), watches each
// request of the student as it is admitted, and reconnects (re-watching
// what is still undecided) if the server closes it.
type wsConn struct {
	r   *run
	st  *student
	url string

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

// connectWS gets a queue-ws token for st and opens its connection.
func (r *run) connectWS(ctx context.Context, st *student, d *websocket.Dialer) error {
	_, wsURL, err := r.api.wsToken(ctx, st.who())
	if err != nil {
		return err
	}
	endpoint, err := r.wsEndpoint(st, wsURL)
	if err != nil {
		return err
	}
	w := &wsConn{r: r, st: st, url: endpoint}
	if err := w.dial(ctx, d); err != nil {
		return err
	}
	st.ws = w
	return nil
}

func (w *wsConn) dial(ctx context.Context, d *websocket.Dialer) error {
	w.r.c.wsDials.Add(1)
	h := http.Header{}
	if w.st.ip != "" {
		h.Set("X-Forwarded-For", w.st.ip)
	}
	c, resp, err := d.DialContext(ctx, w.url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		w.r.c.wsDialErrors.Add(1)
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
	w.r.wsWG.Add(1) // under mu: close() cannot have started waiting for this one
	w.mu.Unlock()
	w.r.noteWSOpen(1)
	go w.readLoop(ctx, c, d)
	return nil
}

// watch asks the server for positions and the result of rec.
func (w *wsConn) watch(rec *reqRec) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ids = append(w.ids, rec.ID)
	rec.mu.Lock()
	rec.Watched = true
	rec.mu.Unlock()
	if w.c == nil || w.closing {
		return // re-watched on reconnect
	}
	if err := w.send(rec.ID); err != nil {
		w.r.c.wsWriteErrors.Add(1)
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
	defer w.r.wsWG.Done()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			c.Close()
			w.r.noteWSOpen(-1)
			w.mu.Lock()
			closing := w.closing
			if w.c == c {
				w.c = nil
			}
			w.mu.Unlock()
			if closing || ctx.Err() != nil {
				return
			}
			w.r.c.wsDrops.Add(1)
			w.reconnect(ctx, d)
			return
		}
		w.r.handleFrame(msg)
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
		w.r.c.wsReconnects.Add(1)
		if err := w.dial(ctx, d); err != nil {
			continue
		}
		w.mu.Lock()
		for _, id := range w.ids {
			if rec := w.r.tr.get(id); rec != nil && !rec.resolved() && w.c != nil {
				if err := w.send(id); err != nil {
					w.r.c.wsWriteErrors.Add(1)
				}
			}
		}
		w.mu.Unlock()
		return
	}
}

// handleFrame applies one queue-ws message to the bookkeeping.
func (r *run) handleFrame(msg []byte) {
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
	case "error":
		r.c.errorFrames.Add(1)
		r.c.refusedMu.Lock()
		r.c.wsErrors[strings.ToLower(f.Code)]++
		r.c.refusedMu.Unlock()
	default:
		r.c.otherFrames.Add(1)
	}
}
