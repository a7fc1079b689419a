package netback

import (
	"testing"
	"time"
)

// A port's flood limit lets a burst of hubFloodBurst bytes through (each
// frame counting hubFloodFrameCost more), then hubFloodRate; a frame it
// refuses takes nothing, and an idle bucket fills up to the burst, no
// more.
func TestFloodLimit(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	frame := 1024 - hubFloodFrameCost // 1 KiB a frame: 128 in a burst
	perFrame := time.Second / 1024    // the rate refills a frame's worth
	type step struct {
		at   time.Duration // since t0
		n    int           // frames sent at once
		size int
		want int // of them let through
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a burst, then nothing at the same instant", []step{{0, 200, frame, 128}, {0, 10, frame, 0}}},
		{"the rate refills", []step{{0, 128, frame, 128}, {perFrame, 2, frame, 1}, {perFrame * 11, 20, frame, 10}}},
		{"an idle bucket holds a burst, no more", []step{{0, 128, frame, 128}, {time.Hour, 200, frame, 128}}},
		{"a refused big frame takes nothing", []step{{0, 127, frame, 127}, {0, 1, MaxFrameSize, 0}, {0, 2, frame, 1}}},
		{"the largest frame passes a full bucket", []step{{0, 2, MaxFrameSize, 1}}},
	}
	for _, c := range cases {
		var l floodLimit
		for i, s := range c.steps {
			got := 0
			for range s.n {
				if l.allow(s.size, t0.Add(s.at)) {
					got++
				}
			}
			if got != s.want {
				t.Errorf("%s, step %d: %d of %d %d-byte frames passed, want %d", c.name, i, got, s.n, s.size, s.want)
			}
		}
	}
}
