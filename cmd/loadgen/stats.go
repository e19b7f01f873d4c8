package main

import (
	"math"
	"slices"
)

// Percentiles of a sample, in the sample's unit.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

// percentile returns the q-th quantile (0..1) of sorted by the nearest-rank
// method: the smallest value with at least q of the sample at or below it.
// An empty sample gives 0.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize sorts xs in place and returns its percentiles.
func summarize(xs []float64) Percentiles {
	slices.Sort(xs)
	if len(xs) == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50: round3(percentile(xs, 0.50)),
		P95: round3(percentile(xs, 0.95)),
		P99: round3(percentile(xs, 0.99)),
		Max: round3(xs[len(xs)-1]),
		N:   len(xs),
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Bucket is one bar of a histogram: values in [Lo, Hi).
type Bucket struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int     `json:"count"`
}

// histogram counts sorted values into buckets with logarithmic edges (1, 2,
// 5 per decade) from the smallest to the largest value, which reads well for
// latencies spanning a few decades. Values ≤ 0 land in the first bucket.
func histogram(sorted []float64) []Bucket {
	if len(sorted) == 0 {
		return nil
	}
	edges := logEdges(sorted[0], sorted[len(sorted)-1])
	out := make([]Bucket, len(edges)-1)
	for i := range out {
		out[i] = Bucket{Lo: edges[i], Hi: edges[i+1]}
	}
	i := 0
	for _, v := range sorted {
		for i < len(out)-1 && v >= out[i].Hi {
			i++
		}
		out[i].Count++
	}
	return out
}

// logEdges returns 1-2-5 edges covering [lo, hi]: the first is the largest
// such edge ≤ lo (0 when lo < 0.01), the last the first edge > hi.
func logEdges(lo, hi float64) []float64 {
	var all []float64
	for mag := 0.01; len(all) == 0 || all[len(all)-1] <= hi; mag *= 10 {
		for _, s := range []float64{1, 2, 5} {
			all = append(all, round3(mag*s))
			if all[len(all)-1] > hi {
				break
			}
		}
	}
	if lo < all[0] {
		return append([]float64{0}, all...)
	}
	first := 0
	for i, e := range all {
		if e <= lo {
			first = i
		}
	}
	return all[first:]
}

// CDFPoint is one point of an empirical distribution function.
type CDFPoint struct {
	X float64 `json:"x"`
	P float64 `json:"p"`
}

// cdf returns at most n points of the empirical CDF of sorted (evenly spaced
// in rank, always including the last value).
func cdf(sorted []float64, n int) []CDFPoint {
	if len(sorted) == 0 || n <= 0 {
		return nil
	}
	step := max(1, len(sorted)/n)
	var out []CDFPoint
	for i := step - 1; i < len(sorted); i += step {
		out = append(out, CDFPoint{X: round3(sorted[i]), P: round3(float64(i+1) / float64(len(sorted)))})
	}
	if last := len(sorted) - 1; out[len(out)-1].P < 1 {
		out = append(out, CDFPoint{X: round3(sorted[last]), P: 1})
	}
	return out
}
