package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wsProc is the run's side of one ws-holder child (wsholder.go): it sends
// the child dials and watches, and applies what the child sends back — the
// received frames to run.handleFrame (a student's own with the student), the
// counts to run.wsCount.
type wsProc struct {
	r     *run
	n     int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lineWriter

	mu      sync.Mutex
	pending map[int32]chan error // dials waiting for O or F
	gone    error                // set once the child's stdout has ended

	// open and sockets the child reported and has not taken back yet (read
	// by the reader goroutine only): a child that dies takes them along.
	open, sockets int64

	stopOnce sync.Once
	readDone chan struct{} // the child's stdout has ended
	exited   chan struct{} // and cmd.Wait has returned
	waitErr  error
}

// remoteWS is a student's connection held by a ws-holder.
type remoteWS struct {
	p   *wsProc
	idx int32
}

func (l *remoteWS) watch(rec *reqRec) {
	rec.mu.Lock()
	rec.Watched = true
	rec.mu.Unlock()
	if err := l.p.out.line("W", strconv.Itoa(int(l.idx)), strconv.FormatInt(rec.ID, 10)); err != nil {
		l.p.r.c.wsWriteErrors.Add(1) // the ws-holder is gone
	}
}

func (l *remoteWS) adopt(rec *reqRec) {
	rec.mu.Lock()
	rec.Watched = true
	rec.mu.Unlock()
	if err := l.p.out.line("A", strconv.Itoa(int(l.idx)), strconv.FormatInt(rec.ID, 10)); err != nil {
		l.p.r.c.wsWriteErrors.Add(1) // the ws-holder is gone
	}
}

// close does nothing: a ws-holder closes all its connections at once when
// the run stops it (stopWSProcs).
func (l *remoteWS) close() {}

// startWSProcs starts n ws-holder children; every queue-ws connection of
// the run is then held by one of them.
func (r *run) startWSProcs(n int) error {
	bin := r.cfg.WSHolderBin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("start ws-holder: find loadgen's executable: %w", err)
		}
		bin = exe
	}
	for i := range n {
		p, err := r.startWSProc(bin, i)
		if err != nil {
			r.stopWSProcs(10 * time.Second)
			r.wsProcs = nil
			return err
		}
		r.wsProcs = append(r.wsProcs, p)
	}
	r.logf("%d ws-holder processes hold the queue-ws connections", n)
	return nil
}

func (r *run) startWSProc(bin string, n int) (*wsProc, error) {
	cmd := exec.Command(bin, "ws-holder", "-sources", r.cfg.Sources, "-n", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start ws-holder %d: %w", n, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start ws-holder %d: %w", n, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ws-holder %d (%s): %w", n, bin, err)
	}
	p := &wsProc{r: r, n: n, cmd: cmd, stdin: stdin, out: newLineWriter(stdin), pending: map[int32]chan error{},
		readDone: make(chan struct{}), exited: make(chan struct{})}
	if r.rss != nil {
		r.rss.addChild(cmd.Process.Pid)
	}
	go p.read(stdout)
	go func() {
		<-p.readDone // Wait closes stdout: only once it is read to the end
		if r.rss != nil {
			r.rss.childExited(cmd.Process.Pid) // before Wait frees the pid
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// dial asks the ws-holder to open student idx's connection and waits for
// the answer. A failed dial's error has the text the ws-holder saw, so that
// connect errors read as they do in process.
func (p *wsProc) dial(ctx context.Context, idx int32, url, ip string) (wsLink, error) {
	if strings.ContainsAny(url, " \n") || strings.ContainsAny(ip, " \n") {
		return nil, fmt.Errorf("ws dial %q: a space or newline in the URL or address", url)
	}
	if ip == "" {
		ip = "-"
	}
	ch := make(chan error, 1)
	p.mu.Lock()
	if p.gone != nil {
		p.mu.Unlock()
		return nil, p.gone
	}
	p.pending[idx] = ch
	p.mu.Unlock()
	if err := p.out.line("D", strconv.Itoa(int(idx)), url, ip); err != nil {
		p.forget(idx)
		return nil, fmt.Errorf("ws-holder %d: send dial: %w", p.n, err)
	}
	select {
	case err := <-ch:
		if err != nil {
			return nil, err
		}
		return &remoteWS{p: p, idx: idx}, nil
	case <-ctx.Done():
		p.forget(idx)
		return nil, ctx.Err()
	}
}

func (p *wsProc) forget(idx int32) {
	p.mu.Lock()
	delete(p.pending, idx)
	p.mu.Unlock()
}

func (p *wsProc) answer(idx int32, err error) {
	p.mu.Lock()
	ch := p.pending[idx]
	delete(p.pending, idx)
	p.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// read applies the child's lines until its stdout ends. It never waits for
// the run's writes to the child, so a child is always drained.
func (p *wsProc) read(stdout io.Reader) {
	defer close(p.readDone)
	sc := newLineScanner(stdout)
	for sc.Scan() {
		p.handle(sc.Bytes())
	}
	gone := fmt.Errorf("ws-holder %d exited", p.n)
	if err := sc.Err(); err != nil {
		gone = fmt.Errorf("ws-holder %d: read: %w", p.n, err)
		_ = p.cmd.Process.Kill() // its lines can no longer be followed
	}
	// Connections and sockets the child did not report closed went with it.
	if p.open != 0 {
		p.r.wsCount(cntOpen, -p.open)
	}
	if p.sockets != 0 {
		p.r.wsCount(cntSockets, -p.sockets)
	}
	p.mu.Lock()
	p.gone = gone
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, ch := range pending {
		ch <- gone
	}
}

var errBadLine = errors.New("unexpected line")

// handle applies one line from the child.
func (p *wsProc) handle(line []byte) {
	tag, rest, _ := bytes.Cut(line, []byte{' '})
	var err error
	switch string(tag) {
	case "M":
		p.r.handleFrame(-1, rest)
	case "B":
		msg, derr := base64.StdEncoding.DecodeString(string(rest))
		if derr != nil {
			p.r.c.badFrames.Add(1)
			return
		}
		p.r.handleFrame(-1, msg)
	case "S", "T":
		idx, msg, _ := bytes.Cut(rest, []byte{' '})
		n, perr := strconv.ParseInt(string(idx), 10, 32)
		if perr != nil {
			err = errBadLine
			break
		}
		if string(tag) == "T" {
			b, derr := base64.StdEncoding.DecodeString(string(msg))
			if derr != nil {
				p.r.c.badFrames.Add(1)
				return
			}
			msg = b
		}
		p.r.handleFrame(int32(n), msg)
	case "K":
		name, v, _ := bytes.Cut(rest, []byte{' '})
		d, perr := strconv.ParseInt(string(v), 10, 64)
		c, ok := counterByName(string(name))
		if perr != nil || !ok {
			err = errBadLine
			break
		}
		p.r.wsCount(c, d)
		switch c {
		case cntOpen:
			p.open += d
		case cntSockets:
			p.sockets += d
		}
	case "O", "F":
		idx, text, _ := bytes.Cut(rest, []byte{' '})
		n, perr := strconv.ParseInt(string(idx), 10, 32)
		if perr != nil {
			err = errBadLine
			break
		}
		if string(tag) == "O" {
			p.answer(int32(n), nil)
		} else {
			p.answer(int32(n), errors.New(string(text)))
		}
	default:
		err = errBadLine
	}
	if err != nil {
		p.r.logf("warning: ws-holder %d: %v %q", p.n, err, truncate(string(line), 80))
	}
}

func counterByName(name string) (wsCounter, bool) {
	for i, n := range wsCounterNames {
		if n == name {
			return wsCounter(i), true
		}
	}
	return 0, false
}

// stopWSProcs asks every ws-holder to close its connections and exit (C),
// and waits for them, at most timeout in all; any still running then is
// killed. It may be called more than once: the run has no ws-holders
// afterwards.
func (r *run) stopWSProcs(timeout time.Duration) {
	for _, p := range r.wsProcs {
		p.stopOnce.Do(func() {
			go func() { // writing waits while a stuck child does not read
				_ = p.out.line("C")
				_ = p.out.close()
				_ = p.stdin.Close()
			}()
		})
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	expired := false
	for _, p := range r.wsProcs {
		if !expired {
			select {
			case <-p.exited:
			case <-t.C:
				expired = true
			}
		}
		select {
		case <-p.exited:
			if p.waitErr != nil {
				r.logf("warning: ws-holder %d: %v", p.n, p.waitErr)
			}
		default:
			r.logf("warning: ws-holder %d did not exit within %s: killed", p.n, timeout)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	r.wsProcs = nil
}

// closeWS closes every queue-ws connection, in this process and in the
// ws-holders, and waits until they are closed.
func (r *run) closeWS() {
	for _, st := range r.students {
		if st.ws != nil {
			st.ws.close()
		}
	}
	r.stopWSProcs(30 * time.Second)
	r.wsWG.Wait()
}
