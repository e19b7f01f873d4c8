package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sourceAddrs hands out local source addresses round-robin. One source IP
// has about 28k ephemeral ports (32768-60999) towards one destination
// (nginx's 127.0.0.1:8080), so 100,000 WebSockets need several: 127.0.0.2..9
// give eight times that. The ports are taken at connect(), not at bind()
// (bindNoPort), so they stay shareable with nginx's own connections to the
// api and queue-ws instances, which come from 127.0.0.1, left out here.
type sourceAddrs struct {
	addrs []netip.Addr
	next  atomic.Uint64
}

func (s *sourceAddrs) pick() *net.TCPAddr {
	if len(s.addrs) == 0 {
		return nil
	}
	a := s.addrs[s.next.Add(1)%uint64(len(s.addrs))]
	return &net.TCPAddr{IP: a.AsSlice()}
}

// dialContext dials from the next source address and counts open sockets.
func (s *sourceAddrs) dialContext(open *atomic.Int64, peak *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		// No TCP keep-alive probes: queue-ws pings every session itself, and
		// 100,000 sockets probing every 30 s are traffic a browser's single
		// socket does not make.
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
		if la := s.pick(); la != nil {
			d.LocalAddr = la
			d.Control = bindNoPort
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n := open.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		return &countedConn{Conn: c, open: open}, nil
	}
}

type countedConn struct {
	net.Conn
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return c.Conn.Close()
}

// parseSourceRange parses "127.0.0.1-127.0.0.8" or a single address.
func parseSourceRange(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	lo, hi, ok := cutByte(s, '-')
	a, err := netip.ParseAddr(lo)
	if err != nil {
		return nil, fmt.Errorf("source address %q: %w", lo, err)
	}
	if !ok {
		return []netip.Addr{a}, nil
	}
	b, err := netip.ParseAddr(hi)
	if err != nil {
		return nil, fmt.Errorf("source address %q: %w", hi, err)
	}
	if !a.Is4() || !b.Is4() || b.Less(a) {
		return nil, fmt.Errorf("source range %q: want IPv4 lo-hi with lo <= hi", s)
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		out = append(out, x)
		if x == b || len(out) >= 256 {
			break
		}
	}
	return out, nil
}

func cutByte(s string, c byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// api is a small client of EnrollQ's HTTP API.
type api struct {
	base string // http://127.0.0.1:8080
	hc   *http.Client
}

// apiError is a non-2xx answer: status and the error code of the body.
type apiError struct {
	Status     int
	Code       string
	RequestID  int64 // already_queued carries the pending request id
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d %s", e.Status, e.Code) }

// cred is who sends a request: a bearer token and, optionally, the client
// address the request claims to come from (X-Forwarded-For; nginx appends the
// real peer and the API trusts loopback proxies, so the API sees this one).
type cred struct {
	Token string
	IP    string
}

// do sends one request and decodes a 2xx JSON body into out (may be nil).
func (a *api) do(ctx context.Context, method, path string, who cred, in, out any) (int, error) {
	code, _, err := a.send(ctx, method, path, who, nil, in, out)
	return code, err
}

// send is do with extra request headers (hdr, may be nil); it also returns
// the response's headers.
func (a *api) send(ctx context.Context, method, path string, who cred, hdr http.Header, in, out any) (int, http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who.Token != "" {
		req.Header.Set("Authorization", "Bearer "+who.Token)
	}
	if who.IP != "" {
		req.Header.Set("X-Forwarded-For", who.IP)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code      string `json:"code"`
				RequestID int64  `json:"request_id"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		ae := &apiError{Status: resp.StatusCode, Code: e.Error.Code, RequestID: e.Error.RequestID}
		if ae.Code == "" {
			ae.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		return resp.StatusCode, resp.Header, ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

func (a *api) adminLogin(ctx context.Context, user, password string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	in := map[string]string{"username": user, "password": password}
	if _, err := a.do(ctx, http.MethodPost, "/api/v1/admin/login", cred{}, in, &out); err != nil {
		return "", fmt.Errorf("admin login: %w", err)
	}
	return out.Token, nil
}

func (a *api) setWindow(ctx context.Context, adminToken string, open bool) error {
	if _, err := a.do(ctx, http.MethodPost, "/api/v1/admin/window", cred{Token: adminToken}, map[string]bool{"open": open}, nil); err != nil {
		return fmt.Errorf("set window open=%v: %w", open, err)
	}
	return nil
}

// drawStatus is GET /api/v1/admin/prequeue: the pre-queue and its draw.
type drawStatus struct {
	Open      bool      `json:"open"`
	Students  int64     `json:"students"`
	Entries   int64     `json:"entries"`
	State     string    `json:"state"`
	Seed      drawSeed  `json:"seed"`
	Total     int64     `json:"total"`
	Cursor    int64     `json:"cursor"`
	StartedAt time.Time `json:"started_at"`
	DoneAt    time.Time `json:"done_at"`
}

// drawSeed is the draw's seed: a JSON string (the API's, since JavaScript
// numbers cannot hold every uint64) or a number.
type drawSeed uint64

func (d *drawSeed) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	if err != nil {
		return fmt.Errorf("draw seed %s: %w", b, err)
	}
	*d = drawSeed(v)
	return nil
}

func (a *api) setPrequeue(ctx context.Context, adminToken string, open bool) (drawStatus, error) {
	var out drawStatus
	if _, err := a.do(ctx, http.MethodPost, "/api/v1/admin/prequeue", cred{Token: adminToken}, map[string]bool{"open": open}, &out); err != nil {
		return out, fmt.Errorf("set pre-queue open=%v: %w", open, err)
	}
	return out, nil
}

func (a *api) prequeue(ctx context.Context, adminToken string) (drawStatus, error) {
	var out drawStatus
	if _, err := a.do(ctx, http.MethodGet, "/api/v1/admin/prequeue", cred{Token: adminToken}, nil, &out); err != nil {
		return out, fmt.Errorf("read the pre-queue: %w", err)
	}
	return out, nil
}

// myRequests is GET /api/v1/me/requests: the student's requests (with a
// position while queued) and pre-queue entries (prequeued, drawn with a
// request id, or refused with an error code).
type myRequests struct {
	Requests []struct {
		RequestID int64  `json:"request_id"`
		CourseID  int64  `json:"course_id"`
		Status    string `json:"status"`
		Position  int64  `json:"position"`
	} `json:"requests"`
	Prequeue []struct {
		CourseID  int64  `json:"course_id"`
		Status    string `json:"status"`
		RequestID int64  `json:"request_id"`
		Error     string `json:"error"`
	} `json:"prequeue"`
}

func (a *api) myRequests(ctx context.Context, who cred) (myRequests, error) {
	var out myRequests
	_, err := a.do(ctx, http.MethodGet, "/api/v1/me/requests", who, nil, &out)
	return out, err
}

// wsToken asks for a queue-ws token; wsURL is as the API gives it (often
// relative, "/ws?token=...").
func (a *api) wsToken(ctx context.Context, who cred) (tok, wsURL string, err error) {
	var out struct {
		WSToken string `json:"ws_token"`
		WSURL   string `json:"ws_url"`
	}
	if _, err := a.do(ctx, http.MethodPost, "/api/v1/auth/ws-token", who, struct{}{}, &out); err != nil {
		return "", "", fmt.Errorf("ws token: %w", err)
	}
	return out.WSToken, out.WSURL, nil
}

// admission is the 202 answer to POST /api/v1/enrollments: "queued" with a
// request id, or, before the opening with the pre-queue open, "prequeued"
// (an entry without a ticket yet).
type admission struct {
	Status    string `json:"status"`
	RequestID int64  `json:"request_id"`
	Ticket    int64  `json:"ticket"`
	Position  int64  `json:"position"`
	WSToken   string `json:"ws_token"`
	WSURL     string `json:"ws_url"`
	Entries   int64  `json:"entries"`  // prequeued: the student's entries
	Students  int64  `json:"students"` // prequeued: students in the pre-queue

	// Replayed: the answer (this one, or the refusal returned with it) is
	// the one recorded for an earlier request with the same Idempotency-Key
	// (response header Idempotent-Replayed).
	Replayed bool `json:"-"`
}

// enroll asks for a seat; key is the request's Idempotency-Key ("" none).
func (a *api) enroll(ctx context.Context, who cred, course int64, key string) (admission, error) {
	var out admission
	var hdr http.Header
	if key != "" {
		hdr = http.Header{"Idempotency-Key": {key}}
	}
	_, rh, err := a.send(ctx, http.MethodPost, "/api/v1/enrollments", who, hdr, map[string]int64{"course_id": course}, &out)
	out.Replayed = rh.Get("Idempotent-Replayed") == "true"
	return out, err
}

// requestView is GET /api/v1/requests/{id}.
type requestView struct {
	RequestID int64  `json:"request_id"`
	Status    string `json:"status"`
	Position  int64  `json:"position"`
	Reason    string `json:"reason"`
}

func (a *api) request(ctx context.Context, who cred, id int64) (requestView, error) {
	var out requestView
	_, err := a.do(ctx, http.MethodGet, "/api/v1/requests/"+strconv.FormatInt(id, 10), who, nil, &out)
	return out, err
}

func (a *api) cancel(ctx context.Context, who cred, id int64) (requestView, error) {
	var out requestView
	_, err := a.do(ctx, http.MethodDelete, "/api/v1/requests/"+strconv.FormatInt(id, 10), who, nil, &out)
	return out, err
}

func (a *api) drop(ctx context.Context, who cred, course int64) error {
	_, err := a.do(ctx, http.MethodDelete, "/api/v1/enrollments/"+strconv.FormatInt(course, 10), who, nil, nil)
	return err
}

// errCode returns the API error code of err, "transport" for a failure
// without an HTTP answer, or "" for nil.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return "transport"
}
