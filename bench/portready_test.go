package bench

import (
	"context"
	"regexp"
	"strings"
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
			if tt.sample {
				// Sampled, the fake waits for the sample before its
				// line and exit (holdForSample), 3*fakeDelay after
				// its ready report: a loaded host's bench stopped it
				// later and found it gone ("stop fake at ready: no
				// such process").
				target.SettledFlag = "-settled-fd"
			}
			// The guest ends by itself well within ExitWait.
			b, err := RunBoot(context.Background(), target, BootOptions{Ready: Ready{Pattern: tt.ready}, SampleMemory: tt.sample,
				Timeout: time.Minute, ExitWait: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ready, ok := b.Phases[PhaseReady]
			if !ok || ready != b.Phases[PhaseFirstRun] || b.ReadyBy != ReadyByVMM {
				t.Errorf("ready at %.3f ms (%v) by %q, want the boot-timer write's, at %.3f ms: %v", ready, ok, b.ReadyBy, b.Phases[PhaseFirstRun], b.Phases)
			}
			if tt.sample && b.Memory != nil && b.Memory.ReadyBy != ReadyByVMM {
				t.Errorf("memory sampled at the ready made by %q, want %q", b.Memory.ReadyBy, ReadyByVMM)
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
			if tt.sample {
				// Sampled, the fake waits for the sample after its
				// first line (holdForSample), as smolvmm waits for the
				// bench to read it: the stop comes ExitWait after the
				// ready report, and a loaded host's bench, whose sample
				// came later, found the fake gone ("stop fake at
				// first-output: no such process").
				target.SettledFlag = "-settled-fd"
			}
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

// With --compare qemu, smolvmm's ready (and its memory sample at ready)
// can be its guest's boot-timer write, long before the ready line QEMU's
// ready is, which has no such port: the ready ratio then compared
// different events (18x where the first output was 1x), and so did the
// memory row. Each boot and sample now says which event made it ready,
// and the ratios leave out, with a note, those that differ; the same
// event on both sides is still compared.
func TestRunComparesSameReadyEvent(t *testing.T) {
	tests := []struct {
		name      string
		portReady bool // smolvmm reports its guest's boot-timer write
		wantBy    string
		compared  bool
	}{
		{"boot-timer write against the line", true, ReadyByVMM, false},
		{"the line on both sides", false, ReadyByLine, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Both keep running after their line, as a system at its
			// login prompt: a guest gone at its line could not be
			// sampled there.
			smolvmm := fakeTarget(t, "smolvmm", "portreadyline")
			if tt.portReady {
				smolvmm = withReport(smolvmm)
				smolvmm.ReadyFlag = "-ready-fd"
			}
			qemu := fakeTarget(t, "qemu-kvm", "portreadyline")
			res, err := Run(context.Background(), []Target{smolvmm, qemu}, Options{Boots: 1, Config: Config{Kernel: "k", MemoryMiB: 20},
				Boot: BootOptions{Ready: Ready{Pattern: regexp.MustCompile(`^marker: ready$`)}, Timeout: time.Minute, ExitWait: 50 * time.Millisecond, StopGrace: 20 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range []string{tt.wantBy, ReadyByLine} {
				s := &res.Systems[i]
				if s.Error != "" {
					t.Fatalf("%s: %s", s.Name, s.Error)
				}
				if s.Boots[0].ReadyBy != want || s.Memory == nil || s.Memory.SampledAt != PhaseReady || s.Memory.ReadyBy != want {
					t.Errorf("%s: ready by %q, memory %+v; want both by %q", s.Name, s.Boots[0].ReadyBy, s.Memory, want)
				}
			}
			got := map[string]bool{}
			for _, q := range res.Ratios {
				got[q.Phase] = true
			}
			if !got[PhaseFirstOutput] || got[PhaseReady] != tt.compared || got["memory"] != tt.compared {
				t.Errorf("ratios %+v; want first-output, and ready and memory %v", res.Ratios, tt.compared)
			}
			notes := strings.Join(res.Notes, "\n")
			for _, note := range []string{
				"ready is not compared where another event made it than smolvmm's, the VMM's own report (its guest's boot-timer port write, or accept on the ready port): qemu-kvm's is its ready line",
				"memory is not compared where it was sampled at another event than smolvmm's, at ready (the VMM's own report",
			} {
				if strings.Contains(notes, note) == tt.compared {
					t.Errorf("notes %q, want %q: %v", notes, note, !tt.compared)
				}
			}
			if err := res.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}
