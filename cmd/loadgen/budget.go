package main

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// How many queue-ws connections fit, and how many processes of loadgen hold
// them. Every process on a machine has an open-files limit; where the hard
// limit cannot be raised (no CAP_SYS_RESOURCE, as on our CI machines:
// 20,000), one process can hold about that many sockets. loadgen therefore
// spreads its connections over ws-holder child processes (-ws-procs,
// wsholder.go) when they do not fit in its own process: each child holds up
// to its open-files limit less a reserve, so loadgen's own budget is the
// number of processes times that. On the server side, nginx holds two
// connections per proxied WebSocket in one of its workers (worker_processes
// × worker_connections) and every queue-ws instance of `upstream ws` one,
// within the same open-files limit. loadgen opens at most what fits in all
// of them (and says which limit bound it in the report) instead of letting
// nginx start closing keep-alive connections under the burst.

// wsBudget is the number of queue-ws connections this run may open and
// what limits it.
type wsBudget struct {
	Max    int
	Reason string
}

// fdReserve is what a process keeps of its open-files limit for everything
// but queue-ws sockets (binaries, pipes, listeners, MariaDB, Redis).
const fdReserve = 1024

// maxWSProcs bounds the ws-holders of -ws-procs 0 (auto) and of -ws-procs N.
const maxWSProcs = 64

// ownBudget: sockets this process can hold besides the HTTP pool and
// MariaDB/Redis/polling connections.
func ownBudget(nofile uint64, concurrency int) wsBudget {
	n := holderBudget(nofile) - 2*concurrency
	return wsBudget{Max: max(n, 0), Reason: fmt.Sprintf("loadgen's open-files limit %d", nofile)}
}

// holderBudget: sockets one ws-holder child can hold. It has no HTTP pool
// and inherits loadgen's limits, so loadgen computes it from its own.
func holderBudget(nofile uint64) int {
	return max(int(nofile)-fdReserve, 0)
}

// planWS decides where the queue-ws connections live and how many fit.
// procs is -ws-procs: 1 keeps them in this process (children 0), N > 1
// spreads them over N ws-holder children, 0 (auto) keeps them here while
// the connections wanted fit in ownBudget and otherwise starts as many
// children as they need, at most maxWSProcs. want is what the run would
// open (the planned connections, within -ws-max or else within limits);
// limits are the server side's budgets. The budget returned is the
// smallest of loadgen's own and the limits.
func planWS(procs, want int, nofile uint64, concurrency int, limits []wsBudget) (children int, b wsBudget) {
	own := ownBudget(nofile, concurrency)
	per := holderBudget(nofile)
	switch {
	case procs == 1:
	case procs > 1:
		children = min(procs, maxWSProcs)
	case want > own.Max && per > 0:
		children = min((want+per-1)/per, maxWSProcs)
	}
	if children > 0 {
		own = wsBudget{Max: children * per,
			Reason: fmt.Sprintf("loadgen: %d ws-holder processes × open-files limit %d", children, nofile)}
	}
	b = own
	for _, l := range limits {
		if l.Max < b.Max {
			b = l
		}
	}
	return children, b
}

// nginxLimits are the settings of a rendered nginx.conf that bound proxied
// connections.
type nginxLimits struct {
	Workers           int
	WorkerConnections int
	WSInstances       int // server lines of `upstream ws { ... }`: queue-ws instances
}

// parseNginxLimits reads worker_processes, worker_connections and the
// servers of upstream ws. It splits the file into directives (ending in
// ';') and blocks ('{' ... '}'), comments removed and quoted text kept
// whole.
func parseNginxLimits(r io.Reader) (nginxLimits, error) {
	var l nginxLimits
	var blocks []string // open blocks, innermost last: "events", "upstream ws", ...
	var stmt strings.Builder
	directive := func(f []string) {
		switch {
		case len(f) == 2 && f[0] == "worker_processes":
			if f[1] == "auto" {
				l.Workers = runtime.NumCPU()
			} else if n, err := strconv.Atoi(f[1]); err == nil {
				l.Workers = n
			}
		case len(f) == 2 && f[0] == "worker_connections":
			if n, err := strconv.Atoi(f[1]); err == nil {
				l.WorkerConnections = n
			}
		case len(f) >= 2 && f[0] == "server" && len(blocks) > 0 && blocks[len(blocks)-1] == "upstream ws":
			l.WSInstances++
		}
	}
	sc := bufio.NewScanner(r)
	var quote rune // inside '...' or "...": nothing is syntax
	for sc.Scan() {
	line:
		for _, c := range sc.Text() + "\n" {
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
				stmt.WriteRune(c)
				continue
			case c == '\'' || c == '"':
				quote = c
				stmt.WriteRune(c)
				continue
			}
			switch c {
			case '#':
				stmt.WriteRune('\n')
				break line
			case ';':
				directive(strings.Fields(stmt.String()))
				stmt.Reset()
			case '{':
				blocks = append(blocks, strings.Join(strings.Fields(stmt.String()), " "))
				stmt.Reset()
			case '}':
				if len(blocks) > 0 {
					blocks = blocks[:len(blocks)-1]
				}
				stmt.Reset()
			default:
				stmt.WriteRune(c)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return l, err
	}
	if l.Workers == 0 {
		l.Workers = 1
	}
	if l.WorkerConnections == 0 {
		l.WorkerConnections = 512 // nginx's default
	}
	return l, nil
}

// budget: every proxied WebSocket holds two connections in one worker; the
// HTTP burst needs its client connections plus the upstream keep-alive pool
// (256 per worker in deploy/nginx); workers are not filled evenly (accept
// balancing), so keep 15% spare.
func (l nginxLimits) budget(concurrency int) wsBudget {
	total := l.Workers * l.WorkerConnections
	free := total - 2*concurrency - l.Workers*256 - 512
	return wsBudget{Max: max(free/2*85/100, 0),
		Reason: fmt.Sprintf("nginx: %d workers × worker_connections %d, two per proxied WebSocket", l.Workers, l.WorkerConnections)}
}

// queueWSBudget: every queue-ws instance holds one socket per session
// within its open-files limit, taken to be loadgen's (the same machine and
// user); nginx's least_conn does not fill them evenly, so keep 15% spare.
func (l nginxLimits) queueWSBudget(nofile uint64) wsBudget {
	return wsBudget{Max: l.WSInstances * holderBudget(nofile) * 85 / 100,
		Reason: fmt.Sprintf("queue-ws: %d instances × open-files limit %d", l.WSInstances, nofile)}
}

// nginxConfFor finds the rendered nginx.conf of `make run` when base is its
// front door (127.0.0.1:8080): $ENROLLQ_STATE_DIR/nginx/nginx.conf or
// .state/nginx/nginx.conf.
func nginxConfFor(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Port() != "8080" {
		return ""
	}
	dirs := []string{".state"}
	if d := os.Getenv("ENROLLQ_STATE_DIR"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		p := filepath.Join(d, "nginx", "nginx.conf")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// capWS limits the students with a queue-ws connection to b.Max (the
// earliest students by index keep theirs) and returns how many have one.
func capWS(sts []*student, b wsBudget) int {
	n := 0
	for _, st := range sts {
		if !st.withWS {
			continue
		}
		if n >= b.Max {
			st.withWS = false
			continue
		}
		n++
	}
	return n
}
