package bench

import (
	"fmt"
	"testing"
)

func TestSummarize(t *testing.T) {
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64(20 - i) // 20..1, unsorted
	}
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{7}, Summary{N: 1, Min: 7, Median: 7, P95: 7, Max: 7, Mean: 7}},
		{"odd", []float64{3, 1, 2}, Summary{N: 3, Min: 1, Median: 2, P95: 3, Max: 3, Mean: 2}},
		{"even", []float64{4, 1, 3, 2}, Summary{N: 4, Min: 1, Median: 2.5, P95: 4, Max: 4, Mean: 2.5}},
		{"twenty: p95 is the 19th", twenty, Summary{N: 20, Min: 1, Median: 10.5, P95: 19, Max: 20, Mean: 10.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.in); got != tt.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 {
		t.Errorf("Summarize sorted its input: %v", in)
	}
}

func ExampleSummarize() {
	s := Summarize([]float64{12.5, 11.0, 40.2, 11.8, 12.1})
	fmt.Printf("min %.1f median %.1f p95 %.1f max %.1f\n", s.Min, s.Median, s.P95, s.Max)
	// Output: min 11.0 median 12.1 p95 40.2 max 40.2
}
