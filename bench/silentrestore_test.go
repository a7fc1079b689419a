package bench

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// silentTarget is the vmmreadysilent fake as a restore (its ready report
// is its ready event) or as a boot (its report is its guest's boot-timer
// write).
func silentTarget(t *testing.T, restore bool) Target {
	target := withReport(fakeTarget(t, "fake", "vmmreadysilent"))
	target.ReadyFlag, target.ReadyReported, target.SettledFlag = "-ready-fd", restore, "-settled-fd"
	return target
}

// A restore of a snapshot taken once ready whose guest prints nothing
// after it (a service at its prompt) is a good boot, in every round: it is
// ready at its report, stopped ExitWait after it, has no first-output
// phase (there was none to time), and its memory is read at the report
// once the guest has run the wait. Every such boot once failed "no
// console output". A boot that prints nothing still fails, its guest's
// boot-timer report or not.
func TestRunSilentRestore(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restore bool
		ready   *regexp.Regexp
		wantErr string // "" for a good run
	}{
		{"restore, no pattern", true, nil, ""},
		{"restore, pattern", true, regexp.MustCompile("^login: "), ""},
		{"boot, no pattern", false, nil, "no console output"},
		{"boot, pattern", false, regexp.MustCompile("^login: "), "no console output"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), []Target{silentTarget(t, tt.restore)}, Options{Boots: 2,
				Boot:   BootOptions{Ready: Ready{Pattern: tt.ready}, Timeout: 10 * time.Second, ExitWait: 4 * fakeDelay, StopGrace: 5 * time.Second},
				Config: Config{Kernel: "fake", MemoryMiB: 20}})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Systems[0]
			if tt.wantErr != "" {
				if !strings.Contains(s.Error, tt.wantErr) {
					t.Fatalf("system error %q, want one saying %q", s.Error, tt.wantErr)
				}
				return
			}
			if s.Error != "" {
				t.Fatalf("system error %q, want none", s.Error)
			}
			if len(s.Boots) != 2 {
				t.Fatalf("%d boots, want 2", len(s.Boots))
			}
			for i, b := range s.Boots {
				_, first := b.Phases[PhaseFirstOutput]
				if first || !b.Stopped() || b.ReadyBy != ReadyByRestore || len(b.Output) != 0 {
					t.Errorf("boot %d: phases %v, ready by %q, output %q: want no first-output, stopped, ready by %q",
						i, b.Phases, b.ReadyBy, b.Output, ReadyByRestore)
				}
				if r, ok := b.Phases[PhaseReady]; !ok || r > b.Phases[PhaseStopped] {
					t.Errorf("boot %d: phases %v: want ready before the stop", i, b.Phases)
				}
			}
			if _, ok := s.Phase(PhaseFirstOutput); ok {
				t.Errorf("a first-output summary %+v of boots that printed nothing", s.Phases)
			}
			m := s.Memory
			if m == nil || m.SampledAt != PhaseReady || m.ReadyBy != ReadyByRestore || m.GuestRSSKiB < fakeTouched>>10 {
				t.Fatalf("memory %+v (%s): want it read at the restore's ready, guest RSS at least %d KiB", m, s.MemoryError, fakeTouched>>10)
			}
		})
	}
}

// A silent restore's memory is not read when its process ends before
// the wait after its report has passed: there is nothing left to read,
// and the boot does not fail for want of a sample.
func TestSampleAfterRestoreEvents(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first bool // the first console byte came
		done  bool // the process ended
		want  string
	}{
		{"first byte", true, false, PhaseReady},
		{"silent", false, false, PhaseReady},
		{"ended", false, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			firstOut, done := make(chan struct{}), make(chan struct{})
			if tt.first {
				close(firstOut)
			}
			if tt.done {
				close(done)
			}
			got := ""
			sampleAfterRestore(firstOut, done, 10*time.Millisecond, func(event string) { got = event })
			if got != tt.want {
				t.Errorf("sampled at %q, want %q", got, tt.want)
			}
		})
	}
}

// A silent restore is stopped ExitWait after its ready report whether its
// memory is sampled or not, its ready its report's or its ready port's:
// the sample, taken once the guest has run ExitWait after the report,
// does not start another wait. Sampled rounds were once stopped two
// ExitWaits after their ready.
func TestSilentRestoreSampledStop(t *testing.T) {
	const exitWait = 10 * fakeDelay
	for _, tt := range []struct {
		name   string
		addr   string
		sample bool
	}{
		{"report", "", false},
		{"report, sampled", "", true},
		{"ready port", "127.0.0.1:1", false},
		{"ready port, sampled", "127.0.0.1:1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := RunBoot(context.Background(), silentTarget(t, true), BootOptions{Ready: Ready{Addr: tt.addr}, SampleMemory: tt.sample,
				Timeout: 10 * time.Second, ExitWait: exitWait, StopGrace: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if tt.sample && (b.Memory == nil || b.Memory.SampledAt != PhaseReady) {
				t.Fatalf("memory %+v (%v): want it read at ready", b.Memory, b.MemoryErr)
			}
			ms := float64(exitWait / time.Millisecond)
			if d := b.Phases[PhaseStopped] - b.Phases[PhaseReady]; d < ms || d >= 1.5*ms {
				t.Errorf("phases %v: stopped %.1f ms after ready, want %.0f ms (ExitWait) and less than half as much again", b.Phases, d, ms)
			}
		})
	}
}
