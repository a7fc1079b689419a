package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The results of restores whose guest printed nothing after its ready
// report (a service at its prompt), written to JSON, read back: rounds
// without a first-output phase, made ready by the restore's report or by
// a ready port the VMM judged, and VMs started at their report without a
// first output. Both readers once refused them (the ready port's rounds
// until Boot.Restored), and the text then had no line saying why.
func TestSilentRestoreResultsRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name    string
		addr    string
		readyBy string
	}{
		{"rounds", "", ReadyByRestore},
		{"rounds, ready port", "127.0.0.1:1", ReadyByVMM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), []Target{silentTarget(t, true)}, Options{Boots: 2,
				Boot:   BootOptions{Ready: Ready{Addr: tt.addr}, Timeout: 10 * time.Second, ExitWait: 4 * fakeDelay, StopGrace: 5 * time.Second},
				Config: Config{Kernel: "fake", MemoryMiB: 20}})
			if err != nil {
				t.Fatal(err)
			}
			if s := res.Systems[0]; s.Error != "" || len(s.Boots) != 2 || s.Boots[0].ReadyBy != tt.readyBy {
				t.Fatalf("error %q, %d boots: want none, 2 ready by %q", s.Error, len(s.Boots), tt.readyBy)
			}
			var buf bytes.Buffer
			if err := res.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			back, err := ReadResults(&buf)
			if err != nil {
				t.Fatalf("ReadResults of what Run wrote: %v", err)
			}
			if n := len(back.Systems[0].Boots); n != 2 {
				t.Errorf("read back %d boots, want 2", n)
			}
			buf.Reset()
			if err := back.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			if want := "first output: none: the restored guest printed nothing after its ready report\n"; !strings.Contains(buf.String(), want) {
				t.Errorf("report:\n%s\nwant the line %q", buf.String(), want)
			}
		})
	}
	t.Run("parallel", func(t *testing.T) {
		res, err := RunParallel(context.Background(), silentTarget(t, true), ParallelOptions{N: 2, Timeout: 5 * time.Second,
			SettleTimeout: 3 * time.Second, Config: Config{Kernel: "fake", MemoryMiB: 20}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Started != 2 {
			t.Fatalf("started %d of 2: %+v", res.Started, res.VMs)
		}
		var buf bytes.Buffer
		if err := res.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadParallelResults(&buf)
		if err != nil {
			t.Fatalf("ReadParallelResults of what RunParallel wrote: %v", err)
		}
		if back.Started != 2 {
			t.Errorf("read back %d started, want 2", back.Started)
		}
	})
}

// validateBoot lets only a restore's boot (Restored, or ready by its
// report in results written before that was recorded) go without a
// first-output phase, and only when it was ready: any other boot without
// one went wrong.
func TestValidateBootFirstOutput(t *testing.T) {
	phases := func(first bool) map[string]float64 {
		p := map[string]float64{PhaseRuntime: 1, PhaseMain: 2, PhaseReady: 5, PhaseStopped: 1005, PhaseExit: 1010}
		if first {
			p[PhaseFirstOutput] = 6
		}
		return p
	}
	for _, tt := range []struct {
		name    string
		boot    Boot
		wantErr string
	}{
		{"restore, no first output", Boot{Phases: phases(false), ReadyBy: ReadyByRestore, Status: 130}, ""},
		{"restore, first output", Boot{Phases: phases(true), ReadyBy: ReadyByRestore, Status: 130}, ""},
		{"restore ready by its port, no first output", Boot{Phases: phases(false), Restored: true, ReadyBy: ReadyByVMM, Status: 130}, ""},
		{"restore ready by its line, no first output", Boot{Phases: phases(false), Restored: true, ReadyBy: ReadyByLine, Status: 130}, ""},
		{"restore, no first output, no ready", Boot{Phases: map[string]float64{PhaseExit: 10}, Restored: true}, "phases first-output and ready missing"},
		{"boot ready by its line, no first output", Boot{Phases: phases(false), ReadyBy: ReadyByLine, Status: 130}, "phase first-output missing"},
		{"boot ready by the VMM, no first output", Boot{Phases: phases(false), ReadyBy: ReadyByVMM, Status: 130}, "phase first-output missing"},
		{"no ready event, no first output", Boot{Phases: map[string]float64{PhaseExit: 10}}, "phase first-output missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateBoot(tt.boot)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

// A started VM may have no first output (a restore started at its ready
// report, having printed nothing); one that has must have it by its
// ready, and every started VM a ready after its start.
func TestParallelValidateFirstOutput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		vm    VM
		valid bool
	}{
		{"first byte", VM{StartMS: 1, FirstOutputMS: 5, ReadyMS: 5}, true},
		{"started at its report", VM{StartMS: 1, ReadyMS: 5}, true},
		{"first output after ready", VM{StartMS: 1, FirstOutputMS: 6, ReadyMS: 5}, false},
		{"ready before start", VM{StartMS: 6, ReadyMS: 5}, false},
		{"no ready", VM{StartMS: 1, FirstOutputMS: 5}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vm := tt.vm
			vm.MemoryError = "not read"
			r := &ParallelResults{Schema: ParallelSchemaVersion, Host: Host{CPUs: 2}, VMs: []VM{vm}}
			r.aggregate()
			err := r.Validate()
			if tt.valid && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.valid && !errors.Is(err, ErrSchema) {
				t.Errorf("error %v, want ErrSchema", err)
			}
		})
	}
}

// The reports say why a restore has no first output, rather than leave
// its row (and its ratio) out unexplained.
func TestSilentRestoreText(t *testing.T) {
	boot := func(first bool) Boot {
		b := Boot{Phases: map[string]float64{PhaseReady: 5, PhaseStopped: 1005, PhaseExit: 1010}, ReadyBy: ReadyByRestore, Status: 130}
		if first {
			b.Phases[PhaseFirstOutput] = 6
		}
		return b
	}
	for _, tt := range []struct {
		name  string
		boots []Boot
		want  string // "" for no line
	}{
		{"none printed", []Boot{boot(false), boot(false)}, "first output: none: the restored guest printed nothing after its ready report\n"},
		{"one printed", []Boot{boot(true), boot(false)}, "first output: none in 1 of 2 boots: the restored guest printed nothing after its ready report\n"},
		{"all printed", []Boot{boot(true), boot(true)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := System{Name: "smolvmm-restore", Boots: tt.boots}
			s.summarize()
			r := &Results{Config: Config{Kernel: "snapshot s", Boots: 2, MemoryMiB: 16}, Systems: []System{s}}
			var buf bytes.Buffer
			if err := r.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if tt.want == "" && strings.Contains(got, "first output: none") || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("report:\n%s\nwant the line %q", got, tt.want)
			}
		})
	}
	t.Run("parallel", func(t *testing.T) {
		r := &ParallelResults{Config: Config{Kernel: "snapshot s", MemoryMiB: 16}, Host: Host{CPUs: 2},
			VMs: []VM{{Index: 0, StartMS: 1, ReadyMS: 5, MemoryError: "x"}, {Index: 1, StartMS: 1, FirstOutputMS: 4, ReadyMS: 4, MemoryError: "x"}}}
		r.aggregate()
		var buf bytes.Buffer
		if err := r.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		if want := "1 VMs printed nothing: started at their ready report (a restored guest at its prompt)\n"; !strings.Contains(buf.String(), want) {
			t.Errorf("report:\n%s\nwant the line %q", buf.String(), want)
		}
	})
}
