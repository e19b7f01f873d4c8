package queue

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/enrollq/enrollq/internal/dbtest"
	"github.com/enrollq/enrollq/internal/enroll"
)

// BenchmarkAdmit measures admit.lua through go-redis from parallel callers
// against the real Redis (appendfsync always). Compare with redis-benchmark
// running the same script (scripts/bench-admission.sh prints both).
func BenchmarkAdmit(b *testing.B) {
	rdb, term := dbtest.Redis(b)
	q := New(rdb, term)
	q.RateLimit = 0
	ctx := context.Background()
	var seats []enroll.SeatCount
	for c := int64(1); c <= 100; c++ {
		seats = append(seats, enroll.SeatCount{ID: c, Capacity: 1 << 30, Open: true})
	}
	if err := q.Reconcile(ctx, seats, 0); err != nil {
		b.Fatal(err)
	}
	if err := q.SetOpen(ctx, true); err != nil {
		b.Fatal(err)
	}
	var student atomic.Int64
	// 256 callers on 2 cores: as many as loadgen keeps in flight, so
	// admissions group as they do under the real burst.
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := student.Add(1)
			if _, err := q.Admit(ctx, s, s%100+1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
}

// BenchmarkPop measures reliable pop of batches of 500.
func BenchmarkPop(b *testing.B) {
	rdb, term := dbtest.Redis(b)
	q := New(rdb, term)
	q.RateLimit = 0
	ctx := context.Background()
	if err := q.Reconcile(ctx, []enroll.SeatCount{{ID: 1, Capacity: 1 << 30, Open: true}}, 0); err != nil {
		b.Fatal(err)
	}
	_ = q.SetOpen(ctx, true)
	for i := 0; i < b.N*500; i++ {
		if _, err := q.Admit(ctx, int64(i+1), 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := q.Pop(ctx, 500, 60e9); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "popped/s")
}

// BenchmarkDraw measures the pre-queue's draw alone (no drain beside it):
// 2·N students with two entries each over 2,400 sections of 40 seats, so
// about half the entries are refused as sold out, as in the 100k run.
// Report: entries drawn per second (listing included).
func BenchmarkDraw(b *testing.B) {
	rdb, term := dbtest.Redis(b)
	q := New(rdb, term)
	q.RateLimit = 0
	ctx := context.Background()
	var seats []enroll.SeatCount
	for c := int64(1); c <= 2400; c++ {
		seats = append(seats, enroll.SeatCount{ID: c, Capacity: 40, Open: true})
	}
	if err := q.Reconcile(ctx, seats, 0); err != nil {
		b.Fatal(err)
	}
	if err := q.SetPrequeue(ctx, true); err != nil {
		b.Fatal(err)
	}
	students := int64(2 * b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 128 {
		wg.Go(func() {
			for s := next.Add(1); s <= students; s = next.Add(1) {
				for j := int64(0); j < 2; j++ {
					if _, err := q.Admit(ctx, s, (s*7+j*1201)%2400+1); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	st, err := q.Draw(ctx, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Total)/b.Elapsed().Seconds(), "entries/s")
}
