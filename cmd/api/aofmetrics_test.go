package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/queue"
)

// TestAOFMetrics: each look of the AOF compactor shows in /metrics — the
// file's size and the look's outcome — so an operator sees a rewrite held
// through a burst and started after it.
func TestAOFMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.observeAOF(queue.CompactHeld, queue.AOFState{Enabled: true, Size: 290 << 20, Base: 15 << 20})
	m.observeAOF(queue.CompactHeld, queue.AOFState{Enabled: true, Size: 290 << 20, Base: 15 << 20})
	m.observeAOF(queue.CompactStarted, queue.AOFState{Enabled: true, Size: 291 << 20, Base: 15 << 20})
	m.observeAOF(queue.CompactSmall, queue.AOFState{Enabled: true, Size: 16 << 20, Base: 16 << 20})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case mt.GetGauge() != nil:
				got[key] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				got[key] = mt.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"enrollq_redis_aof_bytes":                                   16 << 20, // the last look's size
		"enrollq_redis_aof_compaction_looks_total{outcome=held}":    2,
		"enrollq_redis_aof_compaction_looks_total{outcome=started}": 1,
		"enrollq_redis_aof_compaction_looks_total{outcome=small}":   1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
