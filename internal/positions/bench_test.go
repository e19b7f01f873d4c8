package positions

import (
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/queue"
)

// benchBroadcast measures one tick's local half (position arithmetic,
// encoding, handing frames to sinks) for n sessions, each watching its own
// request, with discarding sinks. The head moves every tick and a few
// cancellations sit above it, as during a real drain.
func benchBroadcast(b *testing.B, n int) {
	e := New(Config{Tick: time.Hour})
	const first = 1_000_000
	for i := range n {
		id := int64(first + 1000 + i)
		s := e.Open(id, discardSink{})
		if !s.reserve(id, false) {
			b.Fatal("reserve failed")
		}
		e.register(s, id, id, 0)
	}
	done := []int64{first + 1500, first + 1700, first + 4000, first + 9000}
	at := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w := queue.Watermark{Head: first + int64(i%1000), Last: first + 1000 + int64(n), Decided: int64(i * 50), Done: done}
		e.ApplyWatermark(w, at.Add(time.Duration(i)*time.Second))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/session")
	if st := e.Stats(); st.PositionFrames < int64(n) {
		b.Fatalf("sent %d position frames for %d sessions", st.PositionFrames, n)
	}
}

func BenchmarkBroadcast_100Sessions(b *testing.B)   { benchBroadcast(b, 100) }
func BenchmarkBroadcast_1000Sessions(b *testing.B)  { benchBroadcast(b, 1000) }
func BenchmarkBroadcast_10000Sessions(b *testing.B) { benchBroadcast(b, 10000) }
