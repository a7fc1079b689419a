package bench

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dotCanceller is a progress writer that ends its context at the first
// boot's dot.
type dotCanceller struct {
	strings.Builder
	cancel context.CancelFunc
}

func (w *dotCanceller) Write(p []byte) (int, error) {
	if string(p) == "." && w.cancel != nil {
		w.cancel()
	}
	return w.Builder.Write(p)
}

// TestRunProgressInterrupted: a system whose boots ctx stopped says so on
// its progress line, as one whose boot failed says that it failed (an
// interrupted bench --compare qemu said "qemu-kvm: ... timed boots failed"
// over boots nobody made fail).
func TestRunProgressInterrupted(t *testing.T) {
	fake := fakeTarget(t, "fake", "memory")
	missing := Target{Name: "missing", Path: filepath.Join(t.TempDir(), "no-such-vmm"), Success: DebugExitSuccess}
	tests := []struct {
		name   string
		target Target
		warmup int
		cancel string // "before" Run, at the first "dot", or ""
		want   string
	}{
		{"failed", missing, 0, "", "missing: 0 warm-up, 1 memory, 1 timed boots failed\n"},
		{"interrupted before its first boot", fake, 0, "before", "fake: 0 warm-up, 1 memory, 1 timed boots interrupted\n"},
		{"interrupted after a warm-up boot", fake, 1, "dot", "fake: 1 warm-up, 1 memory, 1 timed boots .interrupted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := &dotCanceller{}
			switch tt.cancel {
			case "before":
				cancel()
			case "dot":
				progress.cancel = cancel
			}
			Run(ctx, []Target{tt.target}, Options{Boots: 1, Warmup: tt.warmup, Progress: progress,
				Boot: BootOptions{Timeout: 30 * time.Second}})
			if got := progress.String(); got != tt.want {
				t.Errorf("progress %q, want %q", got, tt.want)
			}
		})
	}
}
