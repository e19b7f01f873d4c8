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

// How many queue-ws connections fit. Every process on a machine has an
// open-files limit; where the hard limit cannot be raised (no
// CAP_SYS_RESOURCE, as on our CI machines: 20,000), one loadgen process can
// hold about that many sockets, and nginx — two workers, each limited to
// worker_connections, two connections per proxied WebSocket — fewer still.
// loadgen opens at most what fits (and says so in the report) instead of
// letting nginx start closing keep-alive connections under the burst.

// wsBudget is the number of queue-ws connections this run may open and
// what limits it.
type wsBudget struct {
	Max    int
	Reason string
}

// ownBudget: sockets this process can hold besides the HTTP pool and
// MariaDB/Redis/polling connections.
func ownBudget(nofile uint64, concurrency int) wsBudget {
	n := int(nofile) - 2*concurrency - 1024
	return wsBudget{Max: max(n, 0), Reason: fmt.Sprintf("loadgen's open-files limit %d", nofile)}
}

// nginxLimits are the settings of a rendered nginx.conf that bound proxied
// connections.
type nginxLimits struct {
	Workers           int
	WorkerConnections int
}

// parseNginxLimits reads worker_processes and worker_connections.
func parseNginxLimits(r io.Reader) (nginxLimits, error) {
	var l nginxLimits
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		f := strings.Fields(strings.TrimSuffix(line, ";"))
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "worker_processes":
			if f[1] == "auto" {
				l.Workers = runtime.NumCPU()
			} else if n, err := strconv.Atoi(f[1]); err == nil {
				l.Workers = n
			}
		case "worker_connections":
			if n, err := strconv.Atoi(f[1]); err == nil {
				l.WorkerConnections = n
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
