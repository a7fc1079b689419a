package netback

import (
	"testing"
	"time"
)

// A guest's budget of port unreachables (tokenBucket) allows a burst,
// then natICMPPerSecond, topping up with time but never beyond the
// burst, and a clock going back takes nothing and gives nothing.
func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		at   []time.Duration // the calls, after t0
		want int             // allowed
	}{
		{"burst at once", repeat(0, 15), natICMPBurst},
		{"a second later, full again", append(repeat(0, 10), repeat(time.Second, 15)...), 2 * natICMPBurst},
		{"an hour idle tops up to the burst only", append(repeat(0, 10), repeat(time.Hour, 50)...), 2 * natICMPBurst},
		// over 5 s: 500 tokens topped up, and the burst
		{"steady at the rate", steps(time.Second/natICMPPerSecond, 501), 501},
		{"twice the rate: the rate and the burst", steps(time.Second/(2*natICMPPerSecond), 1001), 500 + natICMPBurst},
		{"clock going back", append(repeat(time.Second, 10), repeat(0, 10)...), natICMPBurst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b tokenBucket
			got := 0
			for _, d := range tt.at {
				if b.allow(t0.Add(d), natICMPPerSecond, natICMPBurst) {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("allowed %d of %d, want %d", got, len(tt.at), tt.want)
			}
		})
	}
}

// repeat is n calls at d.
func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

// steps is n calls every d from 0.
func steps(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i) * d
	}
	return s
}
