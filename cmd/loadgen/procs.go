package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// procGroups are the processes whose memory and CPU the report shows. They
// are found by the pid files `make run` and scripts/services.sh write under
// the state directory ($ENROLLQ_STATE_DIR or .state), with their children
// (nginx workers), so that other programs on a shared machine — a second
// queue-ws of a benchmark, a test's api — are not counted; without pid files,
// by the name the kernel knows them by (/proc/<pid>/comm). The api and
// queue-ws run as two instances each, nginx as a master and workers, MariaDB
// as primary and replica: a group's figure is the sum over its processes.
// loadgen's ws-holder children (-ws-procs) are the group "loadgen-ws", apart
// from loadgen itself, so that the cost of holding the queue-ws connections
// reads on its own.
var procGroups = []struct {
	name     string
	pidFiles []string // globs under the state directory
	comms    []string
}{
	{"api", []string{"app/api-*.pid"}, []string{"api"}},
	{"queue-ws", []string{"app/queue-ws-*.pid"}, []string{"queue-ws"}},
	{"redis", []string{"redis/*.pid"}, []string{"redis-server"}},
	{"mariadb", []string{"mariadb/*/*.pid"}, []string{"mariadbd", "mysqld"}},
	{"nginx", []string{"nginx/nginx.pid"}, []string{"nginx"}},
	{"opensearch", []string{"opensearch/*.pid"}, nil},
	{"loadgen", nil, nil},    // this process
	{"loadgen-ws", nil, nil}, // its ws-holder children, when they hold the queue-ws connections
}

// groupPids returns the pids of each group: from pid files (plus their
// children of the same name), else by comm.
func (m *rssMonitor) groupPids() map[string][]int {
	byComm := map[string][]int{}
	ppid := map[int]int{}
	ents, err := os.ReadDir(m.proc)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(m.proc, e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		byComm[c] = append(byComm[c], pid)
		if c == "nginx" {
			if st, err := os.ReadFile(filepath.Join(m.proc, e.Name(), "stat")); err == nil {
				if i := bytes.LastIndexByte(st, ')'); i >= 0 {
					if f := strings.Fields(string(st[i+1:])); len(f) > 1 {
						ppid[pid], _ = strconv.Atoi(f[1])
					}
				}
			}
		}
	}
	out := map[string][]int{}
	for _, g := range procGroups {
		switch g.name {
		case "loadgen":
			out[g.name] = []int{m.self}
			continue
		case "loadgen-ws":
			m.mu.Lock()
			for _, pid := range m.children {
				if !m.exited[pid] {
					out[g.name] = append(out[g.name], pid)
				}
			}
			m.mu.Unlock()
			continue
		}
		var pids []int
		for _, pat := range g.pidFiles {
			files, _ := filepath.Glob(filepath.Join(m.state, pat))
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil {
					continue
				}
				if _, err := os.Stat(filepath.Join(m.proc, strconv.Itoa(pid))); err != nil {
					continue // stale pid file
				}
				pids = append(pids, pid)
				for child, parent := range ppid {
					if parent == pid {
						pids = append(pids, child)
					}
				}
			}
		}
		if len(pids) == 0 {
			for _, c := range g.comms {
				pids = append(pids, byComm[c]...)
			}
		}
		out[g.name] = pids
	}
	return out
}

// rssMonitor samples the resident memory of procGroups.
type rssMonitor struct {
	proc  string // /proc
	state string // the state directory of `make run`
	self  int

	mu       sync.Mutex
	children []int              // ws-holder pids
	exited   map[int]bool       // ws-holders that have exited: not read again (their pid may be reused)
	cpu      map[int]cpuSpan    // per pid: CPU time at the first and the last sample
	machine0 uint64             // busy ticks of the host at resetCPU
	pidGr    map[int]string     // pid → group
	peak     map[string]float64 // MB, peak of the group's summed VmRSS
	hwm      map[string]float64 // MB, sum of the processes' VmHWM at the last sample
	count    map[string]int     // processes in the group at the last sample
}

func newRSSMonitor() *rssMonitor {
	state := os.Getenv("ENROLLQ_STATE_DIR")
	if state == "" {
		state = ".state"
	}
	return &rssMonitor{proc: "/proc", state: state, self: os.Getpid(), peak: map[string]float64{}, hwm: map[string]float64{}, count: map[string]int{},
		cpu: map[int]cpuSpan{}, pidGr: map[int]string{}}
}

// addChild adds a ws-holder's pid to the "loadgen-ws" group; childExited
// stops reading it (call it before the child is waited for). The group's
// peak RSS and CPU seconds stay as last sampled, and its process count is
// every ws-holder the run started.
func (m *rssMonitor) addChild(pid int) {
	m.mu.Lock()
	m.children = append(m.children, pid)
	m.mu.Unlock()
}

func (m *rssMonitor) childExited(pid int) {
	m.mu.Lock()
	if m.exited == nil {
		m.exited = map[int]bool{}
	}
	m.exited[pid] = true
	m.mu.Unlock()
}

// sample reads every process once and updates the peaks.
func (m *rssMonitor) sample() {
	groups := m.groupPids()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range procGroups {
		pids := groups[g.name]
		var rss, hwm float64
		read := 0
		for _, pid := range pids {
			r, h, ok := readStatusMem(filepath.Join(m.proc, strconv.Itoa(pid), "status"))
			if ok {
				rss += r
				hwm += h
				read++
			}
			if t, ok := readCPUTicks(filepath.Join(m.proc, strconv.Itoa(pid), "stat")); ok {
				span, seen := m.cpu[pid]
				if !seen {
					span.first = t
				}
				span.last = t
				m.cpu[pid] = span
				m.pidGr[pid] = g.name
			}
		}
		m.count[g.name] = len(pids)
		if g.name == "loadgen-ws" {
			m.count[g.name] = len(m.children)
		}
		if read == 0 { // none, or none alive (ws-holders after the run): keep what was seen
			continue
		}
		m.peak[g.name] = max(m.peak[g.name], round1(rss))
		m.hwm[g.name] = round1(hwm)
	}
}

// readStatusMem returns VmRSS and VmHWM of a /proc/<pid>/status file in MB.
func readStatusMem(path string) (rss, hwm float64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err == nil {
				*dst = kb / 1024
				ok = true
			}
		}
	}
	return rss, hwm, ok
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// cpuSpan is a process's CPU time (clock ticks) at two samples.
type cpuSpan struct{ first, last uint64 }

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// readCPUTicks returns utime+stime of a /proc/<pid>/stat file.
func readCPUTicks(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: fields count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // state is f[0]; utime and stime are fields 14 and 15, f[11] and f[12]
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + s, true
}

// resetCPU starts CPU accounting afresh (at the window opening).
func (m *rssMonitor) resetCPU() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for pid, span := range m.cpu {
		span.first = span.last
		m.cpu[pid] = span
	}
	m.machine0, _ = readMachineBusy(filepath.Join(m.proc, "stat"))
}

// readMachineBusy returns the busy (non-idle, non-iowait) clock ticks of
// all CPUs from /proc/stat.
func readMachineBusy(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, true
}

// cpuSeconds returns the CPU seconds each group used between the first (or
// resetCPU) and the last sample, and "machine": every process on the host.
func (m *rssMonitor) cpuSeconds() map[string]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]float64{}
	for pid, span := range m.cpu {
		if span.last >= span.first {
			out[m.pidGr[pid]] += float64(span.last-span.first) / clockTicks
		}
	}
	if m.machine0 > 0 {
		if now, ok := readMachineBusy(filepath.Join(m.proc, "stat")); ok {
			out["machine"] = float64(now-m.machine0) / clockTicks
		}
	}
	for k, v := range out {
		out[k] = round1(v)
	}
	return out
}

// result returns the peak RSS per group, the VmHWM sums and process counts.
func (m *rssMonitor) result() (peak, hwm map[string]float64, count map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	peak, hwm, count = map[string]float64{}, map[string]float64{}, map[string]int{}
	for k, v := range m.peak {
		peak[k] = v
	}
	for k, v := range m.hwm {
		hwm[k] = v
	}
	for k, v := range m.count {
		count[k] = v
	}
	return peak, hwm, count
}
