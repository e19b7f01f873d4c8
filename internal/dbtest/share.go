package dbtest

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// CheckCPUShare fails t unless the local process pid (whose command name
// must be comm) runs in a scheduler autogroup of nice value env's (or def
// when env is unset): the CPU share scripts/cpushare.sh gives the decision
// path's services. It skips where the kernel has no autogroups, where this
// user could not have raised the share (no CAP_SYS_NICE: the script can only
// warn), and where pid is not comm on this host (the service runs elsewhere).
func CheckCPUShare(t testing.TB, name string, pid int, comm, env string, def int) {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("the kernel shares the CPU without autogroups here; the scripts leave the weight to the service manager")
	}
	if !canRaisePriority(t) {
		t.Skip("no CAP_SYS_NICE here: the scripts can only warn that they could not raise the share")
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(proc + "/comm"); err != nil || strings.TrimSpace(string(b)) != comm {
		t.Skipf("%s (pid %d) does not run on this host as %s (%v)", name, pid, comm, err)
	}
	ag, err := os.ReadFile(proc + "/autogroup")
	if err != nil {
		t.Fatalf("read %s's autogroup: %v", name, err)
	}
	g := regexp.MustCompile(`nice (-?\d+)`).FindStringSubmatch(string(ag))
	if g == nil {
		t.Fatalf("%s/autogroup = %q", proc, ag)
	}
	want := def
	if v := os.Getenv(env); v != "" {
		if want, err = strconv.Atoi(v); err != nil {
			t.Fatalf("%s=%q: %v", env, v, err)
		}
	}
	if got, _ := strconv.Atoi(g[1]); got != want {
		t.Fatalf("%s's session runs at autogroup nice %d, want %d (%s): the scripts did not set its CPU share (%s)",
			name, got, want, env, strings.TrimSpace(string(ag)))
	}
}

// canRaisePriority reports whether this process (like the scripts run by
// the same user) holds CAP_SYS_NICE, which a negative nice value needs.
func canRaisePriority(t testing.TB) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read /proc/self/status: %v", err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s*([0-9a-f]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("/proc/self/status has no CapEff line")
	}
	caps, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", m[1], err)
	}
	const capSysNice = 23
	return caps&(1<<capSysNice) != 0
}

// ListenerPID returns the pid of a local process holding the TCP socket
// that listens on 127.0.0.1:port (or on every address), found through
// /proc/net/tcp and the processes' descriptors; ok is false if there is
// none this user can see.
func ListenerPID(t testing.TB, port int) (pid int, ok bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("read /proc/net/tcp: %v", err)
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		local := strings.Split(f[1], ":")
		p, err := strconv.ParseUint(local[len(local)-1], 16, 32)
		if err != nil || int(p) != port || (local[0] != "0100007F" && local[0] != "00000000") {
			continue
		}
		inodes["socket:["+f[9]+"]"] = true
	}
	if len(inodes) == 0 {
		return 0, false
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		n, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + p.Name() + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name()); err == nil && inodes[l] {
				return n, true
			}
		}
	}
	return 0, false
}
