package main

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1) // 1..100
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.95, 95}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := percentile(xs, tc.q); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile([]float64{7}, 0.99); got != 7 {
		t.Errorf("percentile([7], .99) = %v, want 7", got)
	}
}

func TestSummarize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = float64(i) / 10 // 0 .. 99.9
	}
	rng.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	got := summarize(xs)
	want := Percentiles{P50: 49.9, P95: 94.9, P99: 98.9, Max: 99.9, N: 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
	if !slices.IsSorted(xs) {
		t.Error("summarize must sort its input")
	}
	if got := summarize(nil); got != (Percentiles{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
}

func TestHistogram(t *testing.T) {
	xs := []float64{0.3, 0.6, 1.5, 1.9, 2, 4.9, 7, 12, 480}
	got := histogram(xs)
	var total int
	for i, b := range got {
		total += b.Count
		if b.Lo >= b.Hi {
			t.Errorf("bucket %d: lo %v >= hi %v", i, b.Lo, b.Hi)
		}
		if i > 0 && got[i-1].Hi != b.Lo {
			t.Errorf("bucket %d does not start where %d ends", i, i-1)
		}
	}
	if total != len(xs) {
		t.Errorf("histogram holds %d values, want %d", total, len(xs))
	}
	if got[0].Lo > xs[0] || got[len(got)-1].Hi <= xs[len(xs)-1] {
		t.Errorf("histogram [%v, %v) does not cover [%v, %v]", got[0].Lo, got[len(got)-1].Hi, xs[0], xs[len(xs)-1])
	}
	// 1-2-5 edges: 0.2 0.5 1 2 5 10 20 50 100 200 500
	want := []Bucket{{0.2, 0.5, 1}, {0.5, 1, 1}, {1, 2, 2}, {2, 5, 2}, {5, 10, 1}, {10, 20, 1}, {20, 50, 0}, {50, 100, 0}, {100, 200, 0}, {200, 500, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("histogram (-want +got):\n%s", diff)
	}
	if h := histogram([]float64{0, 0}); len(h) != 1 || h[0].Count != 2 {
		t.Errorf("histogram of zeros = %+v", h)
	}
	if histogram(nil) != nil {
		t.Error("histogram(nil) should be nil")
	}
}

func TestCDF(t *testing.T) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = float64(i)
	}
	got := cdf(xs, 10)
	if len(got) != 10 {
		t.Fatalf("cdf points = %d, want 10", len(got))
	}
	if last := got[len(got)-1]; last.P != 1 || last.X != 999 {
		t.Errorf("last point = %+v, want {999 1}", last)
	}
	for i := 1; i < len(got); i++ {
		if got[i].X < got[i-1].X || got[i].P <= got[i-1].P {
			t.Errorf("cdf not increasing at %d: %+v %+v", i, got[i-1], got[i])
		}
	}
	if got := cdf(xs[:3], 10); len(got) != 3 || got[2].P != 1 {
		t.Errorf("cdf of 3 values = %+v", got)
	}
}

func TestArrivalShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ramp := 5 * time.Second
	var early int
	for range 10000 {
		d := arrival(rng, "burst", ramp)
		if d < 0 || d >= ramp {
			t.Fatalf("burst arrival %v outside [0, %v)", d, ramp)
		}
		if d < ramp/5 {
			early++
		}
	}
	// Exponential with mean ramp/5: P(d < mean) ≈ 63%.
	if early < 6000 || early > 6700 {
		t.Errorf("burst: %d of 10000 in the first fifth, want about 6300", early)
	}
	if d := arrival(rng, "step", ramp); d != 0 {
		t.Errorf("step arrival = %v", d)
	}
	if d := arrival(rng, "uniform", 0); d != 0 {
		t.Errorf("no ramp: arrival = %v", d)
	}
}

func TestReadJTL(t *testing.T) {
	jtl := `timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect
1,12,POST /api/v1/enrollments,202,Accepted,t 1-1,text,true,,10,10,1,1,http://x,12,0,1
2,30,POST /api/v1/enrollments,409,Conflict,t 1-1,text,true,,10,10,1,1,http://x,30,0,1
3,5,POST /api/v1/enrollments,503,"Service Unavailable, retry",t 1-2,text,false,"expected 202 (admitted) or 409, got 503",10,10,1,1,http://x,5,0,1
4,900,WS read frame,200,OK,t 1-2,text,true,,10,10,1,1,,900,0,0
`
	s, err := readJTL(strings.NewReader(jtl))
	if err != nil {
		t.Fatal(err)
	}
	if s.Samples != 4 || s.Failures != 1 || s.ByLabel["POST /api/v1/enrollments"].Codes["503"] != 1 || len(s.Messages) != 1 {
		t.Errorf("summary = %+v", s)
	}
	if !strings.Contains(s.Messages[0], "got 503") {
		t.Errorf("message = %q", s.Messages[0])
	}
	if _, err := readJTL(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Error("a JTL without label/success columns: want an error")
	}
}

// TestHistQuantiles: quantiles of the observations between two cumulative
// snapshots, interpolated within buckets as histogram_quantile does.
func TestHistQuantiles(t *testing.T) {
	inf := math.Inf(1)
	before := histSnap{0.001: 10, 0.002: 10, 0.004: 10, inf: 10}
	// 100 new observations: 50 in (0, 1 ms], 40 in (1, 2 ms], 9 in (2, 4 ms], 1 above 4 ms.
	after := histSnap{0.001: 60, 0.002: 100, 0.004: 109, inf: 110}
	got := histQuantiles(before, after)
	want := Percentiles{P50: 1, P95: 3.111, P99: 4, N: 100}
	if got != want {
		t.Errorf("histQuantiles = %+v, want %+v", got, want)
	}
	if got := histQuantiles(after, after); got != (Percentiles{}) {
		t.Errorf("no new observations: %+v, want zero", got)
	}
	// A snapshot taken before the route had any observation (no buckets yet).
	if got := histQuantiles(histSnap{}, histSnap{0.5: 4, inf: 4}); got.N != 4 || got.P50 != 250 {
		t.Errorf("from an empty snapshot: %+v", got)
	}
}

// TestScrapeAdmissionHist reads the api's histogram as client_golang
// writes it (the +Inf bucket and _count both carry the total): every
// observation is counted once, other routes and methods are left out, and
// two instances add up.
func TestScrapeAdmissionHist(t *testing.T) {
	serve := func(obs ...float64) string {
		reg := prometheus.NewRegistry()
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "enrollq_http_request_duration_seconds", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route", "code"})
		reg.MustRegister(h)
		for i, v := range obs {
			code := "202"
			if i%2 == 1 {
				code = "409"
			}
			h.WithLabelValues("POST", "/api/v1/enrollments", code).Observe(v)
		}
		h.WithLabelValues("GET", "/api/v1/enrollments", "200").Observe(9) // not an admission
		h.WithLabelValues("POST", "/api/v1/cart", "200").Observe(9)       // nor this
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.Cleanup(srv.Close)
		return srv.URL + "/metrics"
	}
	a := serve(0.0004, 0.0004, 0.003)
	b := serve(0.0004, 5) // 5 s: above the last bound
	got, err := scrapeAdmissionHist(context.Background(), http.DefaultClient, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if n := got[math.Inf(1)]; n != 5 {
		t.Errorf("%d admissions counted, want 5 (%v)", n, got)
	}
	if n := got[0.0005]; n != 3 {
		t.Errorf("%d at or below 0.5 ms, want 3", n)
	}
	// p50: rank 2.5 of 5, in the first bucket (3 of them at or below 0.5 ms).
	if p := histQuantiles(histSnap{}, got); p.N != 5 || p.P50 > 0.5 || p.P50 <= 0 {
		t.Errorf("quantiles %+v, want 5 observations with p50 within (0, 0.5] ms", p)
	}
}
