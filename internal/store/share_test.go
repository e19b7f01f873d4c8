package store_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestPrimaryCPUShare: the services script gives the MariaDB primary's
// session the scheduler weight ENROLLQ_DB_NICE (default -10;
// scripts/cpushare.sh): every decision is a transaction there, and with the
// crowd's sessions on the box an equal share per session held the drain to
// ~1,000 decisions/s (docs/BENCHMARKS.md). It checks the primary the tests
// use, as `make up` left it.
func TestPrimaryCPUShare(t *testing.T) {
	db := dbtest.New(t)
	var pidFile string
	if err := db.GetContext(context.Background(), &pidFile, "SELECT @@pid_file"); err != nil {
		t.Fatalf("read the primary's pid file name: %v", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Skipf("the primary's pid file %s is not on this host: %v", pidFile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %q: %v", pidFile, b, err)
	}
	dbtest.CheckCPUShare(t, "the MariaDB primary", pid, "mariadbd", "ENROLLQ_DB_NICE", -10)
}
