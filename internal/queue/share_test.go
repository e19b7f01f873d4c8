package queue_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestRedisCPUShare: the services script gives Redis's session the
// scheduler weight ENROLLQ_REDIS_NICE (default -20; scripts/cpushare.sh).
// With autogroups the CPU is shared between sessions first, so without this
// a saturated box left Redis — the one thread that every admission, draw
// batch and decision goes through — an equal share with each of ~15
// sessions, and its scripts ran 10–15× slower (docs/BENCHMARKS.md). It
// checks the Redis the tests use, as `make up` left it.
func TestRedisCPUShare(t *testing.T) {
	rdb, _ := dbtest.Redis(t)
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	m := regexp.MustCompile(`(?m)^process_id:(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("INFO server has no process_id:\n%s", info)
	}
	pid, _ := strconv.Atoi(m[1])
	dbtest.CheckCPUShare(t, "Redis", pid, "redis-server", "ENROLLQ_REDIS_NICE", -20)
}
