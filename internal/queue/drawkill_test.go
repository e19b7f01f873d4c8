package queue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestDrawChild is not a test on its own: TestDrawKilled runs the test
// binary again with ENROLLQ_DRAW_CHILD=1 to get a drawing process it can
// SIGKILL. It prints "BATCH <done>" after each batch of the draw.
func TestDrawChild(t *testing.T) {
	if os.Getenv("ENROLLQ_DRAW_CHILD") != "1" {
		t.Skip("helper process for TestDrawKilled")
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("ENROLLQ_DRAW_REDIS")})
	q := New(rdb, os.Getenv("ENROLLQ_DRAW_TERM"))
	q.DrawBatch = 500 // many batches, to be killed between and within
	out := bufio.NewWriter(os.Stdout)
	_, err := q.Draw(context.Background(), 7, func(done, total int64) {
		fmt.Fprintf(out, "BATCH %d\n", done)
		out.Flush()
		time.Sleep(15 * time.Millisecond)
	})
	fmt.Fprintln(out, "END", err)
	out.Flush()
}

// TestDrawKilled kills drawing processes with SIGKILL three times in the
// middle of a draw (each resumes where the last one died, at a random
// moment after a few batches), then finishes the draw in this process with
// another seed: every entry's outcome is the one an uninterrupted draw with
// the first seed gives, and every seat hint was taken once.
func TestDrawKilled(t *testing.T) {
	if os.Getenv("ENROLLQ_DRAW_CHILD") == "1" {
		t.Skip()
	}
	const students, courses, seats = 5000, 50, 120
	carts := randomCarts(students, courses, 21)
	rdb, term := dbtest.Redis(t)
	ref := prequeueSetup(t, rdb, term, courses, seats)
	prequeueAll(t, ref, carts)
	if _, err := ref.Draw(context.Background(), 7, nil); err != nil {
		t.Fatal(err)
	}

	rdb2, term2 := dbtest.Redis(t)
	q := prequeueSetup(t, rdb2, term2, courses, seats)
	prequeueAll(t, q, carts)
	var last int64
	for kill := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDrawChild$", "-test.v")
		cmd.Env = append(os.Environ(), "ENROLLQ_DRAW_CHILD=1", "ENROLLQ_DRAW_REDIS="+rdb2.Options().Addr, "ENROLLQ_DRAW_TERM="+term2)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		batches := 0
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "END") {
				t.Fatalf("child %d finished the draw before it was killed: %s", kill, line)
			}
			if strings.HasPrefix(line, "BATCH") {
				if batches++; batches == 3 {
					time.Sleep(time.Duration(kill*5) * time.Millisecond) // land at different points of a batch
					break
				}
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		st, err := q.DrawStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.State != DrawDrawing || st.Cursor <= last || st.Cursor >= st.Total {
			t.Fatalf("after kill %d: %+v; want a draw in progress past %d", kill, st, last)
		}
		last = st.Cursor
	}
	st, err := q.Draw(context.Background(), 99, nil)
	if err != nil || st.State != DrawDone || st.Seed != 7 {
		t.Fatalf("finishing draw = %+v, %v; want done with the first seed", st, err)
	}
	a, b := outcomes(t, ref, students), outcomes(t, q, students)
	for s := int64(1); s <= students; s++ {
		if !slices.Equal(a[s], b[s]) {
			t.Fatalf("student %d: uninterrupted %+v, killed thrice %+v", s, a[s], b[s])
		}
	}
	rst, _ := ref.Stats(context.Background())
	qst, _ := q.Stats(context.Background())
	if qst.Pending != rst.Pending || qst.Pending != courses*seats {
		t.Fatalf("pending: killed %d, uninterrupted %d, want %d", qst.Pending, rst.Pending, courses*seats)
	}
}
