package queue_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestRedisCPUShare: the services script (scripts/services.sh, redis_share)
// gives Redis's session the scheduler weight ENROLLQ_REDIS_NICE (default
// -20). With autogroups the CPU is shared between sessions first, so without
// this a saturated box left Redis — the one thread every admission, draw
// batch and decision goes through — an equal share with each of ~15
// sessions, and its scripts ran 10–15× slower (docs/BENCHMARKS.md). It checks
// the Redis the tests use, as `make up` left it.
func TestRedisCPUShare(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("the kernel shares the CPU without autogroups here; the script leaves the weight to the service manager")
	}
	if !canRaisePriority(t) {
		t.Skip("no CAP_SYS_NICE here: the script can only warn that it could not raise Redis's share")
	}
	rdb, _ := dbtest.Redis(t)
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	m := regexp.MustCompile(`(?m)^process_id:(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("INFO server has no process_id:\n%s", info)
	}
	if comm, err := os.ReadFile("/proc/" + m[1] + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "redis-server" {
		t.Skipf("Redis (pid %s) does not run on this host (%v)", m[1], err)
	}
	ag, err := os.ReadFile("/proc/" + m[1] + "/autogroup")
	if err != nil {
		t.Fatalf("read Redis's autogroup: %v", err)
	}
	g := regexp.MustCompile(`nice (-?\d+)`).FindStringSubmatch(string(ag))
	if g == nil {
		t.Fatalf("/proc/%s/autogroup = %q", m[1], ag)
	}
	want := -20
	if v := os.Getenv("ENROLLQ_REDIS_NICE"); v != "" {
		if want, err = strconv.Atoi(v); err != nil {
			t.Fatalf("ENROLLQ_REDIS_NICE=%q: %v", v, err)
		}
	}
	if got, _ := strconv.Atoi(g[1]); got != want {
		t.Fatalf("Redis's session runs at autogroup nice %d, want %d: scripts/services.sh did not set its CPU share (%s)", got, want, strings.TrimSpace(string(ag)))
	}
}

// canRaisePriority reports whether this process (like the services script
// run by the same user) holds CAP_SYS_NICE, which a negative autogroup nice
// value needs.
func canRaisePriority(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read /proc/self/status: %v", err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s*([0-9a-f]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/proc/self/status has no CapEff line")
	}
	caps, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", m[1], err)
	}
	const capSysNice = 23
	return caps&(1<<capSysNice) != 0
}
