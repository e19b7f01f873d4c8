package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fakeProc writes /proc/<pid>/{comm,status,stat} for a process.
func fakeProc(t *testing.T, root string, pid, ppid int, comm string, rssKB, ticks int) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"comm":   comm + "\n",
		"status": fmt.Sprintf("Name:\t%s\nVmHWM:\t%d kB\nVmRSS:\t%d kB\n", comm, rssKB*2, rssKB),
		// pid (comm) state ppid ... utime(14) stime(15)
		"stat": fmt.Sprintf("%d (%s x) S %d 1 1 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 1 0 1 1 1\n", pid, comm, ppid, ticks, ticks),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProcessGroups(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	fakeProc(t, root, 100, 1, "api", 1024, 10)
	fakeProc(t, root, 101, 1, "api", 2048, 10)
	fakeProc(t, root, 102, 1, "api", 4096, 10) // a test's api, not make run's
	fakeProc(t, root, 200, 1, "nginx", 1024, 5)
	fakeProc(t, root, 201, 200, "nginx", 1024, 5)
	fakeProc(t, root, 300, 1, "redis-server", 3072, 7)
	fakeProc(t, root, 400, 1, "mariadbd", 1024, 1)
	for f, pid := range map[string]int{"app/api-8081.pid": 100, "app/api-8083.pid": 101, "nginx/nginx.pid": 200, "app/queue-ws-1.pid": 999} {
		p := filepath.Join(state, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(fmt.Sprintln(pid)), 0o644)
	}
	os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 1 1 1 1\n"), 0o644)

	m := newRSSMonitor()
	m.proc, m.state, m.self = root, state, 300 // loadgen "is" the redis pid here
	g := m.groupPids()
	slices.Sort(g["api"])
	slices.Sort(g["nginx"])
	if !slices.Equal(g["api"], []int{100, 101}) {
		t.Errorf("api pids = %v, want the pid files' [100 101]", g["api"])
	}
	if !slices.Equal(g["nginx"], []int{200, 201}) {
		t.Errorf("nginx pids = %v, want master and worker", g["nginx"])
	}
	if len(g["queue-ws"]) != 0 {
		t.Errorf("queue-ws pids = %v: a stale pid file and no queue-ws process", g["queue-ws"])
	}
	if !slices.Equal(g["mariadb"], []int{400}) || !slices.Equal(g["redis"], []int{300}) {
		t.Errorf("by name: mariadb %v redis %v", g["mariadb"], g["redis"])
	}
	m.sample()
	m.resetCPU()
	fakeProc(t, root, 100, 1, "api", 8192, 60) // +100 ticks
	os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  300 0 200 5000 0 0 0 0 0 0\n"), 0o644)
	m.sample()
	peak, _, count := m.result()
	if peak["api"] != 10 || count["api"] != 2 || peak["nginx"] != 2 {
		t.Errorf("peak %v count %v", peak, count)
	}
	cpu := m.cpuSeconds()
	if cpu["api"] != 1 || cpu["nginx"] != 0 || cpu["machine"] != 3 {
		t.Errorf("cpu seconds = %v, want api 1, machine 3", cpu)
	}
}
