package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lowerPriority adds n to the nice value of every thread of this process.
// Linux keeps the nice value per thread, and a thread (and a child process,
// such as a ws-holder) starts with its creator's: so after this the whole
// harness runs below the stack under test.
func lowerPriority(n int) error {
	if n <= 0 {
		return nil
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("lower loadgen's priority: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
		if err != nil {
			continue // the thread has ended
		}
		// getpriority(2) returns 20 - nice.
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, min(20-cur+n, 19)); err != nil {
			return fmt.Errorf("lower loadgen's priority (thread %d): %w", tid, err)
		}
	}
	return nil
}
