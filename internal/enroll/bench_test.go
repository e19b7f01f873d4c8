package enroll_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/enroll"
)

// BenchmarkDrain measures decisions per second through the whole drain path
// (pop → one MariaDB transaction per batch → ack) against the real services,
// for several batch sizes. Each run queues 20,000 requests from 10,000
// students over 1,000 sections, then drains them all with the timer on.
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./internal/enroll/
func BenchmarkDrain(b *testing.B) {
	for _, bs := range []int{50, 200, 500, 1000, 2000} {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				h := newHarness(b, 1000, 40, 10000)
				ctx := context.Background()
				// Generous hints so every request reaches MariaDB.
				var seats []enroll.SeatCount
				for _, id := range h.courses {
					seats = append(seats, enroll.SeatCount{ID: id, Capacity: 1000, Open: true})
				}
				if err := h.q.Reconcile(ctx, seats, 0); err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				for w := 0; w < 16; w++ {
					wg.Add(1)
					go func(w int) {
						defer wg.Done()
						for k := w; k < 20000; k += 16 {
							s := h.students[k%len(h.students)]
							c := h.courses[(k*7919)%len(h.courses)]
							_, _ = h.q.Admit(ctx, s, c)
						}
					}(w)
				}
				wg.Wait()
				queued, _ := h.rdb.ZCard(ctx, h.q.Keys().Waiting()).Result()
				s := h.scheduler(enroll.SchedulerConfig{BatchSize: bs})
				b.StartTimer()
				start := time.Now()
				total := 0
				for {
					n, err := s.DrainOnce(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
					total += n
				}
				el := time.Since(start)
				b.StopTimer()
				if int64(total) != queued {
					b.Fatalf("decided %d of %d", total, queued)
				}
				b.ReportMetric(float64(total)/el.Seconds(), "decisions/s")
				rep := h.checkLaws(b, nil)
				_ = rep
			}
		})
	}
}
