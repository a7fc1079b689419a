package bench

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// A guest's boot-timer write, which smolvmm reports on its ReadyFlag and
// in its report, is a ready event as the ready line is: the boot is ready
// at whichever came first, as run --timings says (here the write, long
// before the line), with a line that comes later or never, with memory
// sampled at it, without a ready condition, and without the ready pipe
// (the report alone).
func TestRunBootReadyEarliest(t *testing.T) {
	marker := regexp.MustCompile(`^marker: ready$`)
	never := regexp.MustCompile(`^never printed`)
	tests := []struct {
		name      string
		ready     *regexp.Regexp
		sample    bool
		readyFlag bool
	}{
		{"line later", marker, false, true},
		{"line never", never, false, true},
		{"line later, memory", marker, true, true},
		{"no ready condition", nil, false, true},
		{"line later, report only", marker, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := withReport(fakeTarget(t, "fake", "portready"))
			if tt.readyFlag {
				target.ReadyFlag = "-ready-fd"
			}
			// The guest ends by itself well within ExitWait.
			b, err := RunBoot(context.Background(), target, BootOptions{Ready: Ready{Pattern: tt.ready}, SampleMemory: tt.sample,
				Timeout: time.Minute, ExitWait: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ready, ok := b.Phases[PhaseReady]
			if !ok || ready != b.Phases[PhaseFirstRun] {
				t.Errorf("ready at %.3f ms (%v), want the boot-timer write's, at %.3f ms: %v", ready, ok, b.Phases[PhaseFirstRun], b.Phases)
			}
			if b.Stopped() {
				t.Errorf("stopped: %v", b.Phases)
			}
			if tt.sample && (b.Memory == nil || b.Memory.SampledAt != PhaseReady) {
				t.Errorf("memory %+v (%v), want it sampled at ready", b.Memory, b.MemoryErr)
			}
			if err := validateBoot(*b); err != nil {
				t.Errorf("%v in %v", err, b.Phases)
			}
		})
	}
}

// A guest ready by its boot-timer write that keeps running is stopped
// ExitWait after the write, as one ready by its line is, whatever the
// ready condition: it never timed out.
func TestRunBootStopsAtPortReady(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ready  *regexp.Regexp
		sample bool
	}{
		{"no ready condition", nil, false},
		{"no ready condition, memory", nil, true},
		{"line never", regexp.MustCompile(`^never printed`), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := withReport(fakeTarget(t, "fake", "portreadyserve"))
			target.ReadyFlag = "-ready-fd"
			b, err := RunBoot(context.Background(), target, BootOptions{Ready: Ready{Pattern: tt.ready}, SampleMemory: tt.sample,
				Timeout: 10 * time.Second, ExitWait: 50 * time.Millisecond, StopGrace: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if !b.Stopped() || b.Status != 130 {
				t.Errorf("stopped %v, status %d; want stopped, status 130: %v", b.Stopped(), b.Status, b.Phases)
			}
			if ready, ok := b.Phases[PhaseReady]; !ok || ready != b.Phases[PhaseFirstRun] {
				t.Errorf("ready at %.3f ms (%v), want the boot-timer write's: %v", ready, ok, b.Phases)
			}
			if tt.sample && (b.Memory == nil || b.Memory.SampledAt != PhaseFirstOutput) {
				t.Errorf("memory %+v (%v), want it sampled at the first output", b.Memory, b.MemoryErr)
			}
			if err := validateBoot(*b); err != nil {
				t.Errorf("%v in %v", err, b.Phases)
			}
		})
	}
}
