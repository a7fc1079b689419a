package bench

import (
	"math"
	"slices"
)

// Summary describes a set of times in milliseconds.
type Summary struct {
	N      int     `json:"n"`         // how many times
	Min    float64 `json:"min_ms"`    // the least
	Median float64 `json:"median_ms"` // the middle one, or the mean of the two middle ones
	// P95 is the nearest-rank 95th percentile: the smallest value that is
	// at least 95% of the values (the maximum when N < 20).
	P95  float64 `json:"p95_ms"`
	Max  float64 `json:"max_ms"`  // the greatest
	Mean float64 `json:"mean_ms"` // the arithmetic mean
}

// Summarize computes the Summary of values (the zero Summary when empty).
// The median of an even count is the mean of the two middle values.
func Summarize(values []float64) Summary {
	n := len(values)
	if n == 0 {
		return Summary{}
	}
	v := slices.Clone(values)
	slices.Sort(v)
	var sum float64
	for _, x := range v {
		sum += x
	}
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	rank := int(math.Ceil(0.95 * float64(n)))
	return Summary{N: n, Min: v[0], Median: med, P95: v[rank-1], Max: v[n-1], Mean: sum / float64(n)}
}
