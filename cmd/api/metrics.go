package main

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
)

type metrics struct {
	admissions *prometheus.CounterVec
	decisions  *prometheus.CounterVec
	batchTime  prometheus.Histogram
	batchSize  prometheus.Histogram
	queueDepth *prometheus.GaugeVec
	httpTime   *prometheus.HistogramVec
	leader     prometheus.Gauge
	aofBytes   prometheus.Gauge
	aofLooks   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollq_admissions_total", Help: "Enrollment requests by admission result.",
		}, []string{"result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollq_decisions_total", Help: "Decisions recorded by this instance's scheduler.",
		}, []string{"status", "reason"}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "enrollq_drain_batch_seconds", Help: "Time to decide and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "enrollq_drain_batch_size", Help: "Requests per decided batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "enrollq_queue_depth", Help: "Requests in the line by state.",
		}, []string{"state"}),
		httpTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "enrollq_http_request_duration_seconds", Help: "HTTP request latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route", "code"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "enrollq_scheduler_leader", Help: "1 while this instance drains the queue.",
		}),
		aofBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "enrollq_redis_aof_bytes", Help: "Redis's append-only file size at the AOF compactor's last look.",
		}),
		aofLooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollq_redis_aof_compaction_looks_total",
			Help: "The AOF compactor's looks by outcome (started: a rewrite was sent; busy, held, small, rewriting, aof_off: not).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.admissions, m.decisions, m.batchTime, m.batchSize, m.queueDepth, m.httpTime, m.leader, m.aofBytes, m.aofLooks)
	return m
}

// observeAOF records one look of the AOF compactor (queue.Compactor).
func (m *metrics) observeAOF(outcome string, st queue.AOFState) {
	m.aofBytes.Set(float64(st.Size))
	m.aofLooks.WithLabelValues(outcome).Inc()
}

func (m *metrics) observeBatch(ds []enroll.Decision, took time.Duration) {
	m.batchTime.Observe(took.Seconds())
	m.batchSize.Observe(float64(len(ds)))
	for _, d := range ds {
		m.decisions.WithLabelValues(string(d.Status), string(d.Reason)).Inc()
	}
}

func (m *metrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.httpTime.WithLabelValues(methodLabel(c.Request.Method), route, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
	}
}
