package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestNginxBudget(t *testing.T) {
	conf := `
user root root;
worker_processes 2;   # two cores
worker_rlimit_nofile 20000;
events {
    worker_connections 10000;
    multi_accept on;
}`
	l, err := parseNginxLimits(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if l != (nginxLimits{Workers: 2, WorkerConnections: 10000}) {
		t.Fatalf("limits = %+v", l)
	}
	// 20000 connections − 512 (HTTP clients) − 512 (upstream keep-alive) − 512,
	// two per WebSocket, 85% of that.
	if b := l.budget(256); b.Max != (20000-512-512-512)/2*85/100 || !strings.Contains(b.Reason, "worker_connections 10000") {
		t.Errorf("budget = %+v", b)
	}
	if l, _ := parseNginxLimits(strings.NewReader("events {}")); l.WorkerConnections != 512 || l.Workers != 1 {
		t.Errorf("defaults = %+v", l)
	}
	if b := ownBudget(20000, 256); b.Max != 20000-512-1024 {
		t.Errorf("own budget = %+v", b)
	}
	if b := ownBudget(1000, 256); b.Max != 0 {
		t.Errorf("own budget below zero = %+v", b)
	}
}

func TestCapWS(t *testing.T) {
	sts := make([]*student, 10)
	for i := range sts {
		sts[i] = &student{idx: int32(i), withWS: i%2 == 0}
	}
	if n := capWS(sts, wsBudget{Max: 3}); n != 3 {
		t.Fatalf("kept %d, want 3", n)
	}
	var kept []int32
	for _, st := range sts {
		if st.withWS {
			kept = append(kept, st.idx)
		}
	}
	if len(kept) != 3 || kept[0] != 0 || kept[1] != 2 || kept[2] != 4 {
		t.Errorf("kept %v, want [0 2 4]", kept)
	}
}

func TestParseUpstreamWS(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf string
		want nginxLimits
	}{
		{"rendered by services.sh", `
worker_processes 13;
events {
    worker_connections 18976;   # NOFILE - 1024
}
http {
    upstream api {
        server 127.0.0.1:8081 max_fails=3 fail_timeout=5s;
        server 127.0.0.1:8083 max_fails=3 fail_timeout=5s;
        keepalive 256;
    }
    # WebSocket push (cmd/queue-ws)
    upstream ws {
        zone ws 256k;
        least_conn;
        server 127.0.0.1:8082 max_fails=3 fail_timeout=5s;
        server 127.0.0.1:8084 max_fails=3 fail_timeout=5s;
        server 127.0.0.1:8086 max_fails=3 fail_timeout=5s;
        # server 127.0.0.1:8088;  commented out
    }
    server {
        listen 127.0.0.1:8080;
        server_name _;
        location /ws { return 200 "server x; upstream ws { server y; }"; }
    }
}`, nginxLimits{Workers: 13, WorkerConnections: 18976, WSInstances: 3}},
		{"several directives on a line", `events { worker_connections 4000; } http { upstream ws { least_conn; server a:1; server b:2;server c:3; } upstream api { server d:4; } }`,
			nginxLimits{Workers: 1, WorkerConnections: 4000, WSInstances: 3}},
		{"the template's WS_MORE on the line of WS_2", "worker_processes 2;\nhttp {\n upstream ws {\n  server a:1;\n  server b:2;server c:3;\n  server d:4;\n }\n}\n",
			nginxLimits{Workers: 2, WorkerConnections: 512, WSInstances: 4}},
		{"no upstream ws", "worker_processes 4;\nhttp { upstream wsx { server a:1; } server { listen 80; } }\n",
			nginxLimits{Workers: 4, WorkerConnections: 512}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseNginxLimits(strings.NewReader(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			if l != tc.want {
				t.Errorf("limits = %+v, want %+v", l, tc.want)
			}
		})
	}
}

func TestQueueWSBudget(t *testing.T) {
	for _, tc := range []struct {
		instances int
		nofile    uint64
		max       int
		reason    string
	}{
		{7, 20000, 112907, "queue-ws: 7 instances × open-files limit 20000"}, // 7 × 18,976 × 85%
		{2, 20000, 32259, "queue-ws: 2 instances × open-files limit 20000"},  // 2 × 18,976 × 85%
		{1, 1024, 0, "queue-ws: 1 instances × open-files limit 1024"},
		{3, 1000, 0, "queue-ws: 3 instances × open-files limit 1000"}, // below the reserve
		{0, 20000, 0, "queue-ws: 0 instances × open-files limit 20000"},
	} {
		b := nginxLimits{WSInstances: tc.instances}.queueWSBudget(tc.nofile)
		if b.Max != tc.max || b.Reason != tc.reason {
			t.Errorf("%d instances, nofile %d: budget %+v, want %d %q", tc.instances, tc.nofile, b, tc.max, tc.reason)
		}
	}
}

func TestPlanWS(t *testing.T) {
	nginx := wsBudget{Max: 103_000, Reason: "nginx"}
	qws := wsBudget{Max: 112_907, Reason: "queue-ws"}
	for _, tc := range []struct {
		name     string
		procs    int
		want     int
		nofile   uint64
		limits   []wsBudget
		children int
		max      int
		reason   string
	}{
		// 20,000 − 2×256 − 1,024 = 18,464 fit in loadgen itself.
		{"auto, fits in loadgen", 0, 7847, 20000, nil, 0, 18464, "loadgen's open-files limit 20000"},
		{"auto, exactly fits", 0, 18464, 20000, nil, 0, 18464, "loadgen's open-files limit 20000"},
		// 18,465 do not: one ws-holder of 20,000 − 1,024 = 18,976.
		{"auto, one more", 0, 18465, 20000, nil, 1, 18976, "loadgen: 1 ws-holder processes × open-files limit 20000"},
		// 100,000 / 18,976 → 6 ws-holders (113,856), bound by nginx.
		{"auto, 100k", 0, 100_000, 20000, []wsBudget{nginx, qws}, 6, 103_000, "nginx"},
		{"auto, 100k without server limits", 0, 100_000, 20000, nil, 6, 6 * 18976, "loadgen: 6 ws-holder processes × open-files limit 20000"},
		{"auto, bounded by maxWSProcs", 0, 10_000_000, 20000, nil, maxWSProcs, maxWSProcs * 18976, "loadgen: 64 ws-holder processes × open-files limit 20000"},
		{"-ws-procs 1 keeps them here", 1, 100_000, 20000, []wsBudget{nginx}, 0, 18464, "loadgen's open-files limit 20000"},
		{"-ws-procs 2", 2, 300, 20000, []wsBudget{nginx, qws}, 2, 2 * 18976, "loadgen: 2 ws-holder processes × open-files limit 20000"},
		{"-ws-procs 3, queue-ws smaller", 3, 300, 20000, []wsBudget{{Max: 500, Reason: "queue-ws"}}, 3, 500, "queue-ws"},
		{"low limit", 0, 100, 1024, nil, 0, 0, "loadgen's open-files limit 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			children, b := planWS(tc.procs, tc.want, tc.nofile, 256, tc.limits)
			if children != tc.children || b.Max != tc.max || b.Reason != tc.reason {
				t.Errorf("planWS = %d children, %+v; want %d, {%d %q}", children, b, tc.children, tc.max, tc.reason)
			}
		})
	}
}

// TestLimitWSFromNginxConf reads the budgets from a rendered nginx.conf as a
// run through nginx does, and sizes the ws-holders to what the server side
// takes.
func TestLimitWSFromNginxConf(t *testing.T) {
	state := t.TempDir()
	t.Setenv("ENROLLQ_STATE_DIR", state)
	conf := "worker_processes 13;\nevents { worker_connections 18976; }\nhttp {\n upstream ws {\n  least_conn;\n  server 127.0.0.1:8082;\n  server 127.0.0.1:8084;\n }\n}\n"
	if err := os.MkdirAll(filepath.Join(state, "nginx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "nginx", "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		procs, students, wsMax int
		kept, children         int
		why                    string
	}{
		// nginx: (13 × 18,976 − 512 − 13 × 256 − 512) / 2 × 85% = 102,992;
		// queue-ws: 2 × 18,976 × 85% = 32,259; two ws-holders hold that.
		{0, 40_000, 0, 32_259, 2, "32259 of 40000 planned queue-ws connections: limited by queue-ws: 2 instances × open-files limit 20000"},
		{0, 10_000, 0, 10_000, 0, ""},
		{1, 40_000, 0, 18_464, 0, "18464 of 40000 planned queue-ws connections: limited by loadgen's open-files limit 20000"},
		{3, 40_000, 0, 32_259, 3, "32259 of 40000 planned queue-ws connections: limited by queue-ws: 2 instances × open-files limit 20000"},
		{2, 1, 0, 1, 1, ""}, // no more ws-holders than connections
		{0, 40_000, 20_000, 20_000, 2, "20000 of 40000 planned queue-ws connections: limited by -ws-max"},
	} {
		r, err := newRun(config{BaseURL: "http://127.0.0.1:8080", Concurrency: 256, WSProcs: tc.procs, WSMax: tc.wsMax, Quiet: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range tc.students {
			r.students = append(r.students, &student{idx: int32(i), withWS: true})
		}
		planned, kept, why, children := r.limitWS(20000)
		if planned != tc.students || kept != tc.kept || children != tc.children || why != tc.why {
			t.Errorf("-ws-procs %d, %d students, -ws-max %d: planned %d kept %d children %d why %q; want kept %d children %d why %q",
				tc.procs, tc.students, tc.wsMax, planned, kept, children, why, tc.kept, tc.children, tc.why)
		}
	}
}

// TestSizingHoldsTheSessions: the process counts scripts/sizing.sh gives
// `make run` (queue-ws instances, nginx workers and worker_connections)
// hold ENROLLQ_WS_SESSIONS WebSockets by loadgen's own arithmetic, whatever
// the host's open-files limit, so a 100k run is never capped by the stack.
func TestSizingHoldsTheSessions(t *testing.T) {
	script, err := filepath.Abs("../../scripts/sizing.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		nofile   uint64
		sessions int
	}{{20000, 100000}, {65536, 100000}, {1048576, 100000}, {20000, 250000}, {4096, 30000}} {
		cmd := exec.Command("bash", "-c", `F=$1; source "$0"; fd_limit() { echo "$F"; }; echo "$(ws_instances) $(nginx_workers) $(nginx_worker_connections)"`,
			script, strconv.FormatUint(c.nofile, 10))
		cmd.Env = append(os.Environ(), "ENROLLQ_WS_SESSIONS="+strconv.Itoa(c.sessions))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sizing.sh with %d open files: %v", c.nofile, err)
		}
		var inst, workers, wc int
		if _, err := fmt.Sscan(string(out), &inst, &workers, &wc); err != nil {
			t.Fatalf("sizing.sh printed %q: %v", out, err)
		}
		l := nginxLimits{Workers: workers, WorkerConnections: wc, WSInstances: inst}
		nb, qb := l.budget(256), l.queueWSBudget(c.nofile)
		if nb.Max < c.sessions || qb.Max < c.sessions {
			t.Errorf("%d open files, %d sessions: sizing gives %d instances, %d workers × %d connections; loadgen's budgets %d (nginx), %d (queue-ws)",
				c.nofile, c.sessions, inst, workers, wc, nb.Max, qb.Max)
		}
		if inst < 2 {
			t.Errorf("%d open files: %d queue-ws instances, want at least DESIGN's two", c.nofile, inst)
		}
		t.Logf("%7d open files, %6d sessions: %d queue-ws, %2d nginx workers × %d; budgets %d / %d",
			c.nofile, c.sessions, inst, workers, wc, nb.Max, qb.Max)
	}
}
