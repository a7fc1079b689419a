package vmm

import (
	"math"
	"testing"
	"time"
)

// TestMtimeProvesUnchanged: a disk's unchanged modification time proves
// it unchanged only when the snapshot recorded its moment and the time
// is older than it by more than the margin; at the margin, nearer, after
// the moment (clocks skewed) or without a moment it does not, and no
// value overflows into a proof.
func TestMtimeProvesUnchanged(t *testing.T) {
	const taken = int64(1_700_000_000) * int64(time.Second)
	margin := int64(mtimeTrustMargin)
	tests := []struct {
		name           string
		mtime, takenNs int64
		want           bool
	}{
		{"an hour before", taken - int64(time.Hour), taken, true},
		{"a nanosecond past the margin", taken - margin - 1, taken, true},
		{"at the margin", taken - margin, taken, false},
		{"a second before", taken - int64(time.Second), taken, false},
		{"at the moment", taken, taken, false},
		{"after the moment", taken + int64(time.Minute), taken, false},
		{"moment not recorded", taken - int64(time.Hour), 0, false},
		{"moment negative", math.MinInt64, -1, false},
		{"moment just past the margin from the epoch", math.MinInt64, margin + 1, true},
		{"moment the smallest", math.MinInt64, math.MinInt64, false},
		{"mtime the largest", math.MaxInt64, math.MaxInt64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mtimeProvesUnchanged(DiskIdentity{MtimeNs: tt.mtime, TakenNs: tt.takenNs}); got != tt.want {
				t.Errorf("mtime %d, moment %d: %t, want %t", tt.mtime, tt.takenNs, got, tt.want)
			}
		})
	}
}
