package dbtest

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// CheckCPUShare fails t unless the local process pid (whose command name
// must be comm) runs in a scheduler autogroup of nice value env's (or def
// when env is unset): the CPU share scripts/cpushare.sh gives the decision
// path's services. It skips where the kernel has no autogroups, where this
// user may not raise an autogroup's share (the scripts can only warn), and
// where pid is not comm on this host (the service runs elsewhere).
func CheckCPUShare(t testing.TB, name string, pid int, comm, env string, def int) {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("the kernel shares the CPU without autogroups here; the scripts leave the weight to the service manager")
	}
	if !canRaisePriority(t) {
		t.Skip("this user may not raise an autogroup's share here (no CAP_SYS_NICE): the scripts can only warn")
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

// canRaisePriority reports whether this user may give an autogroup a
// negative nice value, as the scripts do: it tries on a process of its own
// in a new session (a new autogroup), so nothing else is touched.
func canRaisePriority(t testing.TB) bool {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a probe process: %v", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	err := os.WriteFile("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/autogroup", []byte("-1"), 0)
	if err != nil {
		t.Logf("setting an autogroup's nice value to -1: %v", err)
	}
	return err == nil
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
