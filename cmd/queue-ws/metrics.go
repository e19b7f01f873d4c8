package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/enrollq/enrollq/internal/positions"
)

type metrics struct {
	reg  *prometheus.Registry
	tick prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{reg: reg, tick: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "enrollq_ws_tick_seconds",
		Help:    "Time of one positions tick: the watermark read plus every session's frame.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})}
	reg.MustRegister(m.tick, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watch exposes the engine's counters, read at scrape time.
func (m *metrics) watch(e *positions.Engine) {
	gauge := func(name, help string, f func(positions.Stats) float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(e.Stats()) }))
	}
	counter := func(name, help string, labels prometheus.Labels, f func(positions.Stats) int64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(e.Stats())) }))
	}
	gauge("enrollq_ws_connections", "Open WebSocket sessions.",
		func(s positions.Stats) float64 { return float64(s.Sessions) })
	gauge("enrollq_ws_watched_requests", "Requests watched by at least one session of this instance.",
		func(s positions.Stats) float64 { return float64(s.Watches) })
	gauge("enrollq_ws_drain_rate", "Measured drain rate (decisions per second) behind the ETAs.",
		func(s positions.Stats) float64 { return s.DrainRate })
	gauge("enrollq_ws_events_subscribed", "1 while the results subscription is up.",
		func(s positions.Stats) float64 {
			if s.Subscribed {
				return 1
			}
			return 0
		})
	const frames = "enrollq_ws_frames_total"
	const framesHelp = "Frames queued to sessions, by type."
	counter(frames, framesHelp, prometheus.Labels{"type": "position"}, func(s positions.Stats) int64 { return s.PositionFrames })
	counter(frames, framesHelp, prometheus.Labels{"type": "result"}, func(s positions.Stats) int64 { return s.ResultFrames })
	counter(frames, framesHelp, prometheus.Labels{"type": "error"}, func(s positions.Stats) int64 { return s.ErrorFrames })
	counter(frames, framesHelp, prometheus.Labels{"type": "opened"}, func(s positions.Stats) int64 { return s.OpenedFrames })
	counter(frames, framesHelp, prometheus.Labels{"type": "drawn"}, func(s positions.Stats) int64 { return s.DrawnFrames })
	gauge("enrollq_ws_draw_waiters", "Sessions waiting for the pre-queue's draw (they get an opened frame).",
		func(s positions.Stats) float64 { return float64(s.DrawWaiters) })
	counter("enrollq_ws_dropped_positions_total", "Position frames skipped because a session's buffer was full.", nil,
		func(s positions.Stats) int64 { return s.DroppedPositions })
	counter("enrollq_ws_slow_consumer_closes_total", "Sessions closed because a result frame did not fit.", nil,
		func(s positions.Stats) int64 { return s.SlowClosed })
	counter("enrollq_ws_tick_errors_total", "Watermark reads that failed.", nil,
		func(s positions.Stats) int64 { return s.TickErrors })
	counter("enrollq_ws_events_total", "Result events received over Redis Pub/Sub.", nil,
		func(s positions.Stats) int64 { return s.Events })
	counter("enrollq_ws_safety_net_results_total", "Results delivered from MariaDB because no event arrived.", nil,
		func(s positions.Stats) int64 { return s.SafetyNetResults })
	counter("enrollq_ws_pubsub_reconnects_total", "Times the results subscription was re-established.", nil,
		func(s positions.Stats) int64 { return s.PubSubReconnects })
}
