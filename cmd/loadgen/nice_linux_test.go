package main

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLowerPriority: every thread of the process ends up the asked number
// of nice levels lower, and threads (and so ws-holders) started afterwards
// inherit it.
func TestLowerPriority(t *testing.T) {
	nice := func(tid int) int {
		p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
		if err != nil {
			t.Fatalf("getpriority %d: %v", tid, err)
		}
		return 20 - p
	}
	before := nice(0)
	if before > 15 {
		t.Skipf("already at nice %d", before)
	}
	if err := lowerPriority(3); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if p, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil && 20-p < before+3 {
			t.Errorf("thread %d at nice %d, want at least %d", tid, 20-p, before+3)
		}
	}
	done := make(chan int)
	go func() { done <- nice(0) }() // may run on a thread created just now
	if got := <-done; got < before+3 {
		t.Errorf("a thread after lowering: nice %d, want at least %d", got, before+3)
	}
}
