package main

import (
	"testing"
	"time"
)

// TestRaterSlowQueueRead: the queue's counters come from a Redis call that
// took 1.9 s, and the next tick, queued behind it, came right after. Each
// rate must divide by the time between its own counters' reads; dividing by
// the 3 ms between the two iterations gave the report's 4,000,000/s spikes.
func TestRaterSlowQueueRead(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r := rater{minInterval: 500 * time.Millisecond}

	p1 := point{Answered: 1000, Admitted: 1000, Decided: 0}
	r.add(&p1, sec(1), sec(1.01))
	if p1.AnswerRate != 0 || p1.DrainRate != 0 {
		t.Fatalf("first sample has rates: %+v", p1)
	}
	// Counters at 2 s; the queue read returns at 3.9 s.
	p2 := point{Answered: 2000, Admitted: 2000, Decided: 1900}
	r.add(&p2, sec(2), sec(3.9))
	if p2.AnswerRate != 1000 || p2.DrainRate != 657.4 { // 1900 decisions over 2.89 s
		t.Fatalf("second sample: answer %v/s, drain %v/s; want 1000 and 657.4", p2.AnswerRate, p2.DrainRate)
	}
	// The queued tick: 3.903 s, 1.903 s after the last counters.
	if !r.due(sec(3.903)) {
		t.Fatal("a sample 1.9 s after the last counters was refused")
	}
	p3 := point{Answered: 3903, Admitted: 3903, Decided: 1950}
	r.add(&p3, sec(3.903), sec(3.95))
	if p3.AnswerRate != 1000 || p3.AdmitRate != 1000 || p3.DrainRate != 1000 {
		t.Fatalf("queued tick: answer %v/s, admit %v/s, drain %v/s; want 1000 each", p3.AnswerRate, p3.AdmitRate, p3.DrainRate)
	}
	// A tick 0.1 s after that is skipped, not turned into a rate.
	if r.due(sec(4.003)) {
		t.Fatal("a sample 0.1 s after the last was taken")
	}
	// The queue could not be read: its fields carry over, no drain rate.
	p4 := point{Answered: 4903, Admitted: 4903}
	r.add(&p4, sec(4.903), time.Time{})
	if p4.Decided != 1950 || p4.DrainRate != 0 || p4.AnswerRate != 1000 {
		t.Fatalf("sample without the queue: %+v; want decided 1950 carried, drain 0, answer 1000/s", p4)
	}
	// Next queue read: the rate spans back to the last successful read.
	p5 := point{Answered: 5903, Admitted: 5903, Decided: 2950}
	r.add(&p5, sec(5.903), sec(5.95))
	if p5.DrainRate != 500 {
		t.Fatalf("drain after a missed read: %v/s, want 500 (1000 decisions over the 2 s since the last read)", p5.DrainRate)
	}
}
