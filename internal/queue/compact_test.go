package queue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
)

func TestParseAOFInfo(t *testing.T) {
	info := "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n" +
		"aof_rewrite_scheduled:1\r\naof_rewrites:9\r\naof_current_size:43831629\r\naof_base_size:19824432\r\n"
	st, err := parseAOFInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	want := AOFState{Enabled: true, Rewriting: true, Size: 43831629, Base: 19824432, Rewrites: 9}
	if st != want {
		t.Fatalf("parsed %+v, want %+v", st, want)
	}
	// appendonly no: Redis prints aof_enabled:0 and no sizes.
	if st, err := parseAOFInfo("# Persistence\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n"); err != nil || st.Enabled {
		t.Fatalf("appendonly no: %+v, %v", st, err)
	}
	for _, bad := range []string{"", "# Persistence\r\nloading:0\r\n", "aof_current_size:12x\r\n"} {
		if _, err := parseAOFInfo(bad); err == nil {
			t.Errorf("parseAOFInfo(%q): no error", bad)
		}
	}
}

func FuzzParseAOFInfo(f *testing.F) {
	f.Add("aof_enabled:1\r\naof_current_size:10\r\naof_base_size:5\r\n")
	f.Add("aof_rewrites:-1\naof_enabled:0")
	f.Add("aof_rewrite_scheduled:1\r\naof_current_size:+7")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseAOFInfo(s)
		if err != nil {
			return
		}
		// Each field comes from its own line: a state the text does not name
		// is a parser reading one field into another.
		if st.Enabled && !strings.Contains(s, "aof_enabled:") {
			t.Fatalf("enabled without aof_enabled in %q", s)
		}
		if st.Rewriting && !strings.Contains(s, "aof_rewrite_in_progress:") && !strings.Contains(s, "aof_rewrite_scheduled:") {
			t.Fatalf("rewriting without a rewrite field in %q", s)
		}
		for name, v := range map[string]int64{"aof_current_size:": st.Size, "aof_base_size:": st.Base, "aof_rewrites:": st.Rewrites} {
			if v != 0 && !strings.Contains(s, name) {
				t.Fatalf("%s%d read from %q", name, v, s)
			}
		}
	})
}

// TestCompactorWaitsForQuiet: the AOF rewrite that Redis's own policy would
// start in the middle of a burst waits until the AOF stopped growing for one
// look; then it runs. It writes 8 MiB to the test Redis between two looks
// (busy: no rewrite), then looks twice without writing (quiet: a rewrite).
func TestCompactorWaitsForQuiet(t *testing.T) {
	rdb, prefix := dbtest.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := waitNoRewrite(ctx, t, rdb)
	if !st.Enabled {
		t.Fatal("the services' Redis runs with appendonly yes (deploy/redis/redis.conf); INFO says aof_enabled:0")
	}
	// Due as soon as the AOF grew 1% over the last rewrite; quiet is less than
	// 2 MiB between looks (other test packages write far less than that in
	// the moment between two looks here). Each write() adds 8 MiB.
	hold := "prequeue_open"
	var seen []string
	c := NewCompactor(rdb, CompactConfig{QuietBytes: 2 << 20, MinSize: 1, Growth: 0.01,
		Hold:    func(context.Context) (string, error) { return hold, nil },
		Observe: func(outcome string, st AOFState) { seen = append(seen, outcome) }})
	write := func() {
		val := strings.Repeat("x", 64<<10)
		for i := range 128 {
			if err := rdb.Set(ctx, fmt.Sprintf("%s:aof:%d", prefix, i), val, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write()
	if got, err := c.Check(ctx); err != nil || got != CompactBusy {
		t.Fatalf("first look: %q, %v; want %q (no earlier size to compare)", got, err, CompactBusy)
	}
	write()
	if got, err := c.Check(ctx); err != nil || got != CompactBusy {
		t.Fatalf("look after 8 MiB written: %q, %v; want %q", got, err, CompactBusy)
	}
	if now, err := ReadAOF(ctx, rdb); err != nil || now.Rewrites != st.Rewrites || now.Rewriting {
		t.Fatalf("a rewrite ran while Redis was being written to: before %+v, now %+v (%v)", st, now, err)
	}
	if got, err := c.Check(ctx); err != nil || got != CompactHeld {
		t.Fatalf("quiet look with a hold: %q, %v; want %q", got, err, CompactHeld)
	}
	if now, err := ReadAOF(ctx, rdb); err != nil || now.Rewrites != st.Rewrites || now.Rewriting {
		t.Fatalf("a rewrite ran while held: before %+v, now %+v (%v)", st, now, err)
	}
	hold = ""
	if got, err := c.Check(ctx); err != nil || got != CompactStarted {
		t.Fatalf("quiet look: %q, %v; want %q", got, err, CompactStarted)
	}
	if after := waitNoRewrite(ctx, t, rdb); after.Rewrites <= st.Rewrites {
		t.Fatalf("no rewrite finished: before %+v, after %+v", st, after)
	}
	// The file shrank: the next look has no growth to go by and starts over,
	// even where the AOF counts as due (a Redis restarted in a burst reloads
	// a smaller file too).
	c.cfg.Growth = 1e-9
	if err := rdb.Set(ctx, prefix+":aof:after", "x", 0).Err(); err != nil { // past the new base
		t.Fatal(err)
	}
	if got, err := c.Check(ctx); err != nil || got != CompactBusy {
		t.Fatalf("look after the file shrank: %q, %v; want %q", got, err, CompactBusy)
	}
	if want := []string{CompactBusy, CompactBusy, CompactHeld, CompactStarted, CompactBusy}; !slices.Equal(seen, want) {
		t.Fatalf("observed %v, want %v", seen, want)
	}
}

// TestRedisLeavesRewritesToCompactor: the services' Redis (as `make up`
// rendered deploy/redis/redis.conf) starts a rewrite by itself only past
// 1 GB; at Redis's default 64 MB it rewrote two or three times inside every
// 100,000-student opening.
func TestRedisLeavesRewritesToCompactor(t *testing.T) {
	rdb, _ := dbtest.Redis(t)
	v, err := rdb.ConfigGet(context.Background(), "auto-aof-rewrite-min-size").Result()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(v["auto-aof-rewrite-min-size"], 10, 64)
	if err != nil || n < 1<<30 {
		t.Fatalf("auto-aof-rewrite-min-size = %q (%v); want at least 1gb (deploy/redis/redis.conf)", v["auto-aof-rewrite-min-size"], err)
	}
}

// TestCompactHold: the rewrite waits while the pre-queue is open (its
// opening is coming) and while requests wait to be decided.
func TestCompactHold(t *testing.T) {
	rdb, term := dbtest.Redis(t)
	ctx := context.Background()
	q := prequeueSetup(t, rdb, term, 2, 10)
	if why, err := q.CompactHold(ctx); err != nil || why != "prequeue_open" {
		t.Fatalf("pre-queue open: hold %q, %v; want prequeue_open", why, err)
	}
	if err := q.SetPrequeue(ctx, false); err != nil {
		t.Fatal(err)
	}
	if why, err := q.CompactHold(ctx); err != nil || why != "" {
		t.Fatalf("nothing going on: hold %q, %v; want none", why, err)
	}
	if err := q.SetOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Admit(ctx, 7, 1); err != nil {
		t.Fatal(err)
	}
	if why, err := q.CompactHold(ctx); err != nil || why != "requests_waiting" {
		t.Fatalf("a request waiting: hold %q, %v; want requests_waiting", why, err)
	}
}

// waitNoRewrite waits until no AOF rewrite runs and returns the state.
func waitNoRewrite(ctx context.Context, t *testing.T, rdb redis.UniversalClient) AOFState {
	t.Helper()
	for {
		st, err := ReadAOF(ctx, rdb)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Rewriting {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("an AOF rewrite still runs: %+v", st)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
