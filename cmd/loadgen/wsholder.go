package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// A ws-holder is a child process of loadgen (`loadgen ws-holder`, started by
// the run, never by hand) that holds queue-ws connections for the run, so
// that a run can hold more of them than one process's open-files limit
// allows. It dials, watches, reconnects and re-watches exactly as wsConn does
// in the run's own process (it runs wsConn), and hands every message it
// receives up to the run unchanged: the bookkeeping — requests, positions,
// results, the laws — stays in the run (run.handleFrame).
//
// The protocol is one line per message over the child's stdin and stdout;
// fields are separated by one space, numbers are decimal.
//
//	run → ws-holder
//	  D <student> <url> <ip>   dial student's connection (ip: X-Forwarded-For, "-" for none)
//	  W <student> <request>    watch a request on student's connection
//	  A <student> <request>    the server watches the request already (a drawn one): re-watch it on reconnect only
//	  C                        close every connection (normal close frame) and exit
//
//	ws-holder → run
//	  O <student>              the dial asked by D succeeded
//	  F <student> <error>      the dial asked by D failed (error text to the end of the line)
//	  M <json>                 a received message, byte for byte (it holds no newline)
//	  B <base64>               a received message that holds a newline (standard base64)
//	  S <student> <json>       a received message of the student's own (drawn, opened:
//	                           the pre-queue's draw), byte for byte
//	  T <student> <base64>     the same, holding a newline
//	  K <counter> <delta>      a count of wsConn's (wsCounterNames): dials, dial_errors,
//	                           drops, reconnects, write_errors, open, sockets
//
// queue-ws frames are single-line JSON (internal/positions escapes control
// characters in strings), so B and T are for anything unexpected. Position,
// result and error frames name their request, which the run knows the
// student of; drawn and opened frames do not, so they go up with the
// student whose connection received them. A ws-holder exits
// when it reads C or its stdin ends, after closing its connections and
// writing out what they reported; stderr is the run's.

// holderMain is `loadgen ws-holder`: it returns the exit status.
func holderMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen ws-holder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sources := fs.String("sources", "", "local source addresses (range) for client sockets")
	n := fs.Int("n", 0, "which ws-holder of the run this is (for messages)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Ctrl-C reaches the whole process group: the run closes its ws-holders
	// in order (C), so the signal is for the run alone.
	signal.Ignore(syscall.SIGINT)
	if _, err := raiseNoFile(1 << 20); err != nil {
		fmt.Fprintf(stderr, "loadgen ws-holder %d: warning: %v\n", *n, err)
	}
	srcs, err := parseSourceRange(*sources)
	if err == nil {
		err = holdWS(stdin, stdout, srcs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen ws-holder %d: %v\n", *n, err)
		return 2
	}
	return 0
}

// holder is the state of a ws-holder: its connections by student, and the
// requests whose result frame it has passed on (not watched again after a
// reconnect).
type holder struct {
	ctx context.Context
	d   *websocket.Dialer
	out *lineWriter
	wg  sync.WaitGroup // dials, watches, read loops and reconnects in flight

	mu      sync.Mutex
	conns   map[int32]*wsConn
	closing bool

	resMu   sync.Mutex
	results map[int64]struct{}

	sockets, socketsPeak atomic.Int64 // counted by the dialer; reported as K sockets
}

// holdWS serves the protocol on in and out until C or the end of in; it
// returns once every connection is closed and every goroutine it started
// has returned.
func holdWS(in io.Reader, out io.Writer, srcs []netip.Addr) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &holder{ctx: ctx, out: newLineWriter(out), conns: map[int32]*wsConn{}, results: map[int64]struct{}{}}
	src := &sourceAddrs{addrs: srcs}
	h.d = &websocket.Dialer{
		NetDialContext:   h.dialContext(src.dialContext(&h.sockets, &h.socketsPeak)),
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  256,
		WriteBufferPool:  wsBufPool,
	}
	sc := newLineScanner(in)
	var err error
	for sc.Scan() {
		var done bool
		if done, err = h.command(sc.Bytes()); err != nil || done {
			break
		}
	}
	if err == nil {
		if err = sc.Err(); err != nil {
			err = fmt.Errorf("read commands: %w", err)
		}
	}
	cancel() // dials in flight fail, reconnects stop
	h.closeAll()
	h.wg.Wait()
	if werr := h.out.close(); werr != nil && err == nil {
		err = fmt.Errorf("write to the run: %w", werr)
	}
	return err
}

// command carries out one line from the run; done is true after C.
func (h *holder) command(line []byte) (done bool, err error) {
	f := bytes.Fields(line)
	if len(f) == 0 {
		return false, nil
	}
	switch {
	case string(f[0]) == "C" && len(f) == 1:
		return true, nil
	case string(f[0]) == "D" && len(f) == 4:
		idx, err := strconv.ParseInt(string(f[1]), 10, 32)
		if err != nil {
			break
		}
		ip := string(f[3])
		if ip == "-" {
			ip = ""
		}
		h.wg.Add(1)
		go h.dial(int32(idx), string(f[2]), ip)
		return false, nil
	case (string(f[0]) == "A" || string(f[0]) == "W") && len(f) == 3:
		idx, err1 := strconv.ParseInt(string(f[1]), 10, 32)
		id, err2 := strconv.ParseInt(string(f[2]), 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		h.mu.Lock()
		w := h.conns[int32(idx)]
		h.mu.Unlock()
		if w == nil { // the run watches only on connections that were dialed
			h.wsCount(cntWriteErrors, 1)
			return false, nil
		}
		if string(f[0]) == "A" { // adopt: the server watches it already
			w.adoptID(id)
			return false, nil
		}
		// A write may wait for a slow server (10s deadline): not in the
		// command loop, which serves every connection.
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			w.watchID(id)
		}()
		return false, nil
	}
	return false, fmt.Errorf("bad command %q", truncate(string(line), 80))
}

// dial opens student idx's connection and answers O or F.
func (h *holder) dial(idx int32, url, ip string) {
	defer h.wg.Done()
	w := &wsConn{ev: h, wg: &h.wg, idx: idx, url: url, ip: ip}
	h.mu.Lock()
	if h.closing || h.conns[idx] != nil {
		h.mu.Unlock()
		h.out.line("F", strconv.Itoa(int(idx)), "ws-holder: closing or dialed twice")
		return
	}
	h.conns[idx] = w // before the dial: closeAll reaches a handshake in flight
	h.mu.Unlock()
	if err := w.dial(h.ctx, h.d); err != nil {
		h.mu.Lock()
		delete(h.conns, idx)
		h.mu.Unlock()
		h.out.line("F", strconv.Itoa(int(idx)), oneLine(err.Error()))
		return
	}
	h.out.line("O", strconv.Itoa(int(idx)))
}

// closeAll closes every connection as wsConn.close does, 64 at a time (a
// close frame waits up to a second for a stuck connection).
func (h *holder) closeAll() {
	h.mu.Lock()
	h.closing = true
	conns := make([]*wsConn, 0, len(h.conns))
	for _, w := range h.conns {
		conns = append(conns, w)
	}
	h.mu.Unlock()
	ch := make(chan *wsConn)
	var wg sync.WaitGroup
	for range min(64, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range ch {
				w.close()
			}
		}()
	}
	for _, w := range conns {
		ch <- w
	}
	close(ch)
	wg.Wait()
}

// wsCount, wsFrame and wsDone make the holder the wsEvents of its wsConns.
func (h *holder) wsCount(c wsCounter, delta int64) {
	h.out.line("K", wsCounterNames[c], strconv.FormatInt(delta, 10))
}

func (h *holder) wsFrame(idx int32, msg []byte) {
	f, err := parseFrame(msg)
	if err == nil && f.Type == "result" && f.RequestID != 0 {
		h.resMu.Lock()
		h.results[f.RequestID] = struct{}{}
		h.resMu.Unlock()
	}
	if err == nil && (f.Type == "drawn" || f.Type == "opened") {
		if bytes.IndexByte(msg, '\n') < 0 {
			h.out.raw("S "+strconv.Itoa(int(idx)), msg)
			return
		}
		h.out.line("T", strconv.Itoa(int(idx)), base64.StdEncoding.EncodeToString(msg))
		return
	}
	if bytes.IndexByte(msg, '\n') < 0 {
		h.out.raw("M", msg)
		return
	}
	h.out.line("B", base64.StdEncoding.EncodeToString(msg))
}

// wsDone: the holder knows of a decision only by the result frames it
// passed on (a decision the run learned by polling is watched again, and
// queue-ws answers it with the result).
func (h *holder) wsDone(id int64) bool {
	h.resMu.Lock()
	defer h.resMu.Unlock()
	_, ok := h.results[id]
	return ok
}

// dialContext reports every client socket the dialer opens and closes.
func (h *holder) dialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		h.wsCount(cntSockets, 1)
		return &reportedConn{Conn: c, h: h}, nil
	}
}

type reportedConn struct {
	net.Conn
	h      *holder
	closed atomic.Bool
}

func (c *reportedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.h.wsCount(cntSockets, -1)
	}
	return c.Conn.Close()
}

// oneLine makes an error text fit on a protocol line.
func oneLine(s string) string {
	s = truncate(s, 200)
	return string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, []byte(s)))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// lineWriter writes protocol lines from many goroutines. Lines go into a
// buffer and one goroutine writes out whatever is buffered whenever there
// is something: a line goes out at once when the pipe is idle, and lines
// are batched when it is busy. A writer waits while maxPending bytes are
// buffered, so a reader that stops reading slows the writers down instead
// of growing the buffer.
type lineWriter struct {
	w io.Writer

	mu     sync.Mutex
	more   *sync.Cond // the flusher waits for lines
	room   *sync.Cond // writers wait for room
	buf    []byte
	closed bool
	err    error
	done   chan struct{}
}

const maxPending = 1 << 20

func newLineWriter(w io.Writer) *lineWriter {
	l := &lineWriter{w: w, done: make(chan struct{})}
	l.more, l.room = sync.NewCond(&l.mu), sync.NewCond(&l.mu)
	go l.flush()
	return l
}

// line writes the fields separated by spaces, and a newline.
func (l *lineWriter) line(fields ...string) error {
	n := len(fields)
	for _, f := range fields {
		n += len(f)
	}
	return l.put(n, func(b []byte) []byte {
		for i, f := range fields {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, f...)
		}
		return append(b, '\n')
	})
}

// raw writes "<tag> <msg>\n"; msg must hold no newline.
func (l *lineWriter) raw(tag string, msg []byte) error {
	return l.put(len(tag)+len(msg)+2, func(b []byte) []byte {
		b = append(b, tag...)
		b = append(b, ' ')
		b = append(b, msg...)
		return append(b, '\n')
	})
}

func (l *lineWriter) put(n int, add func([]byte) []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.buf) > 0 && len(l.buf)+n > maxPending && l.err == nil && !l.closed {
		l.room.Wait()
	}
	if l.err != nil {
		return l.err
	}
	if l.closed {
		return errors.New("line writer closed")
	}
	l.buf = add(l.buf)
	l.more.Signal()
	return nil
}

func (l *lineWriter) flush() {
	defer close(l.done)
	var spare []byte
	for {
		l.mu.Lock()
		for len(l.buf) == 0 && !l.closed {
			l.more.Wait()
		}
		if len(l.buf) == 0 { // closed and written out
			l.mu.Unlock()
			return
		}
		b := l.buf
		l.buf = spare[:0]
		l.room.Broadcast()
		l.mu.Unlock()
		if _, err := l.w.Write(b); err != nil {
			l.mu.Lock()
			l.err, l.buf = err, nil
			l.room.Broadcast()
			l.mu.Unlock()
			return
		}
		spare = b
	}
}

// close writes out what is buffered and stops the flusher; it returns the
// first write error.
func (l *lineWriter) close() error {
	l.mu.Lock()
	l.closed = true
	l.more.Signal()
	l.room.Broadcast()
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// newLineScanner reads protocol lines: split at '\n' only (a '\r' belongs
// to the line), up to 1 MiB each.
func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	return sc
}
