package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/store"
)

// maxReplicaLag bounds how long a committed write may take to be readable on
// the replica on this machine (loopback, GTID replication).
const maxReplicaLag = 5 * time.Second

// TestReplicaReadsPrimaryWrites writes rows on the primary and reads each one
// back on the replica, failing if any takes longer than maxReplicaLag.
func TestReplicaReadsPrimaryWrites(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	rep, err := store.Open(ctx, dbtest.WithDatabase(dbtest.ReplicaDSN(), db.Name))
	if err != nil {
		// the database may not have replicated yet
		deadline := time.Now().Add(maxReplicaLag)
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			rep, err = store.Open(ctx, dbtest.WithDatabase(dbtest.ReplicaDSN(), db.Name))
		}
		if err != nil {
			t.Fatalf("open replica: %v", err)
		}
	}
	defer rep.Close()

	var worst time.Duration
	for i := 0; i < 20; i++ {
		no := fmt.Sprintf("99%07d", i)
		start := time.Now()
		if _, err := db.ExecContext(ctx, `INSERT INTO students (student_no, name, year, department) VALUES (?, ?, 1, '복제학과')`, no, "복제 확인"); err != nil {
			t.Fatal(err)
		}
		for {
			var name string
			err := rep.GetContext(ctx, &name, `SELECT name FROM students WHERE student_no = ?`, no)
			if err == nil {
				if name != "복제 확인" {
					t.Fatalf("replica returned %q", name)
				}
				break
			}
			if time.Since(start) > maxReplicaLag {
				t.Fatalf("row %s not on the replica after %v: %v", no, maxReplicaLag, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("worst primary→replica lag over 20 writes: %v", worst)

	// The replica refuses writes from the application user.
	if _, err := rep.ExecContext(ctx, `INSERT INTO students (student_no, name, year, department) VALUES ('1', 'x', 1, 'x')`); err == nil {
		t.Fatal("the replica accepted a write")
	}
}
