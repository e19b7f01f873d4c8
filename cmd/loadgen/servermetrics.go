package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// admissionRoute is the route whose server-side latency loadgen reads from
// each api's enrollq_http_request_duration_seconds histogram.
const admissionMethod, admissionRoute = "POST", "/api/v1/enrollments"

// histSnap is a cumulative histogram summed over the api instances: count
// of observations at or below each upper bound (seconds).
type histSnap map[float64]uint64

// scrapeAdmissionHist reads POST /api/v1/enrollments's latency histogram
// (every status code) from each api's /metrics and sums them.
func scrapeAdmissionHist(ctx context.Context, hc *http.Client, urls []string) (histSnap, error) {
	sum := histSnap{}
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", u, err)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", u, err)
		}
		fam := fams["enrollq_http_request_duration_seconds"]
		if fam == nil {
			return nil, fmt.Errorf("%s has no enrollq_http_request_duration_seconds", u)
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] != admissionMethod || labels["route"] != admissionRoute || m.GetHistogram() == nil {
				continue
			}
			for _, b := range m.GetHistogram().GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) { // the +Inf bucket is the count, added once below
					sum[b.GetUpperBound()] += b.GetCumulativeCount()
				}
			}
			sum[math.Inf(1)] += m.GetHistogram().GetSampleCount()
		}
	}
	return sum, nil
}

// histQuantiles returns p50/p95/p99 (ms) and the count of the observations
// between two snapshots, each quantile interpolated linearly within its
// bucket as Prometheus's histogram_quantile does (so within a factor of
// the bucket width, 2 here); one in the last, unbounded bucket is reported
// as the highest finite bound.
func histQuantiles(before, after histSnap) Percentiles {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	cum := make([]float64, len(bounds))
	for i, b := range bounds {
		cum[i] = float64(after[b]) - float64(before[b])
	}
	if len(bounds) == 0 || cum[len(cum)-1] <= 0 {
		return Percentiles{}
	}
	total := cum[len(cum)-1]
	q := func(p float64) float64 {
		rank := p * total
		for i, c := range cum {
			if c < rank {
				continue
			}
			lo, below := 0.0, 0.0
			if i > 0 {
				lo, below = bounds[i-1], cum[i-1]
			}
			hi := bounds[i]
			if math.IsInf(hi, 1) {
				return lo * 1000
			}
			if c == below {
				return hi * 1000
			}
			return (lo + (hi-lo)*(rank-below)/(c-below)) * 1000
		}
		return bounds[len(bounds)-1] * 1000
	}
	r3 := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	return Percentiles{P50: r3(q(0.50)), P95: r3(q(0.95)), P99: r3(q(0.99)), N: int(total)}
}

// apiMetricsURLs turns -api-metrics (host:port,...) into /metrics URLs.
func apiMetricsURLs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, "http://"+a+"/metrics")
		}
	}
	return out
}
