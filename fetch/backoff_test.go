package fetch

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// The package's tests do not wait out the pauses between resumed
// transfers; those that look at them record them.
func init() {
	pause = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
}

// TestFetchPausesBetweenSmallBreaks: a mirror cutting every transfer
// after a few bytes was asked again at once, up to 1000 times; a resumed
// transfer now waits 100 ms, doubled after each transfer that brought
// less than 64 KiB up to 5 s, and not at all after one that brought more
// (the next small one waits 100 ms again).
func TestFetchPausesBetweenSmallBreaks(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		fault  fetchtest.Fault // on the kernel, 96,000 bytes
		breaks int
		want   []time.Duration
	}{
		{"cut every 9000 bytes", fetchtest.Fault{TruncateAt: 9000}, 10,
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms, 5000 * ms, 5000 * ms}},
		{"cut once after 70,000 bytes", fetchtest.Fault{TruncateAt: 70000, Times: 1}, 1, nil},
		{"small, small, large, small", fetchtest.Fault{TruncateAt: 1000, Times: 2,
			Then: &fetchtest.Fault{TruncateAt: 70000, Times: 1,
				Then: &fetchtest.Fault{TruncateAt: 1000, Times: 1}}}, 4,
			[]time.Duration{100 * ms, 200 * ms, 100 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			pause = func(ctx context.Context, d time.Duration) error {
				got = append(got, d)
				return ctx.Err()
			}
			defer func() { pause = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } }()
			srv, f := setup(t)
			srv.SetFault(fetchtest.KernelPath("9.3", "i386", KernelName), tt.fault)
			rel, err := f.Fetch(context.Background(), "9.3", "i386")
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if rel.Kernel.Breaks != tt.breaks {
				t.Errorf("%d breaks, want %d", rel.Kernel.Breaks, tt.breaks)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("paused %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFetchInterruptedInPause: a signal during a pause ends the run at
// once, as one during a transfer does: the partial file is kept for the
// next run, and no further request is made.
func TestFetchInterruptedInPause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pause = func(ctx context.Context, d time.Duration) error {
		cancel() // the signal, arriving as the run waits
		return sleepCtx(ctx, time.Hour)
	}
	defer func() { pause = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } }()
	srv, f := setup(t)
	kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
	srv.SetFault(kpath, fetchtest.Fault{TruncateAt: 1000})
	_, err := f.Fetch(ctx, "9.3", "i386")
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an InterruptedError matching context.Canceled", err)
	}
	if ie.Have != 1000 || fileSize(ie.Part) != 1000 {
		t.Errorf("kept %d bytes (file %d), want 1000", ie.Have, fileSize(ie.Part))
	}
	gets := 0
	for _, r := range srv.Requests() {
		if r.Path == kpath {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("%d requests for the kernel, want 1: %v", gets, srv.Requests())
	}
}
