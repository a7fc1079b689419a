package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeResults runs two fake systems for real: "smolvmm" with a child
// report and "qemu-fake" without.
func fakeResults(t *testing.T) *Results {
	t.Helper()
	targets := []Target{withReport(fakeTarget(t, "smolvmm", "report")), fakeTarget(t, "qemu-fake", "lines")}
	var progress bytes.Buffer
	res, err := Run(context.Background(), targets, Options{
		Boots: 3, Warmup: 1, Progress: &progress,
		Boot:   BootOptions{Ready: Ready{Pattern: regexp.MustCompile(`^marker`)}, Timeout: 30 * time.Second},
		Config: Config{Kernel: "fake", MemoryMiB: 20, Ready: "^marker"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(progress.String(), "."); got != 2*(1+1+3) {
		t.Errorf("progress %q: %d dots, want one per boot", progress.String(), got)
	}
	return res
}

func TestResultsJSONSchema(t *testing.T) {
	res := fakeResults(t)
	for _, s := range res.Systems {
		if s.Error != "" || len(s.Boots) != 3 {
			t.Fatalf("system %s: %d boots, error %q", s.Name, len(s.Boots), s.Error)
		}
		if s.Memory != nil || s.MemoryError == "" {
			t.Errorf("system %s: the fake maps no guest RAM, yet memory %+v, error %q", s.Name, s.Memory, s.MemoryError)
		}
	}
	if _, ok := res.Systems[0].Phase(PhaseVMCreated); !ok {
		t.Errorf("smolvmm has no %s summary: %+v", PhaseVMCreated, res.Systems[0].Phases)
	}
	if len(res.Ratios) != len(ratioPhases) {
		t.Errorf("ratios %+v, want one per compared phase", res.Ratios)
	}
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	doc := buf.Bytes()
	back, err := ReadResults(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("own output does not match the schema: %v\n%s", err, doc)
	}
	if len(back.Systems) != 2 || back.Systems[1].Name != "qemu-fake" {
		t.Errorf("round trip lost systems: %+v", back.Systems)
	}

	// Every documented field is present in the output under its name.
	for _, key := range []string{`"schema": "smolvmm-bench/1"`, `"phases_ms"`, `"median_ms"`, `"p95_ms"`, `"median_ratio"`, `"memory_error"`, `"boots": 3`} {
		if !bytes.Contains(doc, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}

	mutations := []struct {
		name string
		edit func(m map[string]any)
	}{
		{"wrong version", func(m map[string]any) { m["schema"] = "smolvmm-bench/0" }},
		{"no systems", func(m map[string]any) { m["systems"] = []any{} }},
		{"unknown phase", func(m map[string]any) { boot(m, 0, 0)["warp"] = 1.0 }},
		{"phases out of order", func(m map[string]any) { boot(m, 0, 0)[PhaseVMCreated] = 1e6 }},
		{"exit missing", func(m map[string]any) { delete(boot(m, 1, 0), PhaseExit) }},
		{"summary disagrees", func(m map[string]any) {
			sys := m["systems"].([]any)[1].(map[string]any)
			sys["phases"].([]any)[0].(map[string]any)["median_ms"] = -1.0
		}},
		{"ratio to nobody", func(m map[string]any) {
			m["ratios"].([]any)[0].(map[string]any)["baseline"] = "vmware"
		}},
	}
	for _, mu := range mutations {
		t.Run(mu.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				t.Fatal(err)
			}
			mu.edit(m)
			bad, _ := json.Marshal(m)
			_, err := ReadResults(bytes.NewReader(bad))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrSchema) {
				t.Errorf("error %v does not wrap ErrSchema", err)
			}
		})
	}
}

// TestReadResultsNewerFields: a file from a newer writer of the same
// schema version, with fields this reader does not know (at the top and
// deeper), reads: fields are added within a version. (An older reader
// refused the executable_mapped fields added within /1.)
func TestReadResultsNewerFields(t *testing.T) {
	var buf bytes.Buffer
	if err := fakeResults(t).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(m map[string]any)
	}{
		{"top", func(m map[string]any) { m["extra"] = 1 }},
		{"system", func(m map[string]any) { m["systems"].([]any)[0].(map[string]any)["extra"] = "x" }},
		{"boot", func(m map[string]any) {
			m["systems"].([]any)[0].(map[string]any)["boots"].([]any)[0].(map[string]any)["extra"] = map[string]any{"a": true}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			doc, _ := json.Marshal(m)
			if _, err := ReadResults(bytes.NewReader(doc)); err != nil {
				t.Errorf("a newer writer's field is refused: %v", err)
			}
		})
	}
}

// boot returns the phases_ms object of boot j of system i.
func boot(m map[string]any, i, j int) map[string]any {
	sys := m["systems"].([]any)[i].(map[string]any)
	return sys["boots"].([]any)[j].(map[string]any)["phases_ms"].(map[string]any)
}

func TestWriteText(t *testing.T) {
	res := fakeResults(t)
	var buf bytes.Buffer
	if err := res.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"smolvmm\n", "qemu-fake\n", "median", "first-output", "vm-created", "qemu-fake / smolvmm", "memory: not measured"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

// validateBoot accepts a boot the bench stopped at its ready event, and
// refuses one that would also have a guest exit, or a stop before ready.
func TestValidateStoppedBoot(t *testing.T) {
	tests := []struct {
		name   string
		phases map[string]float64
		ok     bool
	}{
		{"stopped", map[string]float64{PhaseFirstOutput: 2, PhaseReady: 5, PhaseStopped: 1005, PhaseClosed: 1006, PhaseExit: 1007}, true},
		{"stopped, ready by port before output", map[string]float64{PhaseReady: 1, PhaseFirstOutput: 2, PhaseStopped: 1001, PhaseExit: 1002}, true},
		{"stopped and a guest exit", map[string]float64{PhaseFirstOutput: 2, PhaseReady: 5, PhaseStopped: 1005, PhaseGuestExit: 1006, PhaseExit: 1007}, false},
		{"stopped, never ready", map[string]float64{PhaseFirstOutput: 2, PhaseStopped: 1005, PhaseExit: 1007}, false},
		{"stopped before ready", map[string]float64{PhaseFirstOutput: 2, PhaseReady: 1006, PhaseStopped: 1005, PhaseExit: 1007}, false},
		{"exit before the stop", map[string]float64{PhaseFirstOutput: 2, PhaseReady: 5, PhaseStopped: 1005, PhaseExit: 1000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateBoot(Boot{Phases: tt.phases, Status: 130})
			if (err == nil) != tt.ok {
				t.Errorf("error %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// The first console byte is timed where the bench reads the pipe, so a
// loaded host can see it after the VMM's own guest-exit (CI saw
// "guest-exit at 140.744 ms is before first-output at 145.626 ms"), but
// never before the phases that come before it, nor after the exit.
func TestValidateFirstOutputObserved(t *testing.T) {
	tests := []struct {
		name   string
		output float64
		ok     bool
	}{
		{"in order", 8, true},
		{"read after the guest's exit", 10.5, true},
		{"read after closed", 11.5, true},
		{"before the first run", 6, false},
		{"after the process exit", 13, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Boot{Phases: map[string]float64{PhaseRuntime: 1, PhaseVMCreated: 5, PhaseFirstRun: 7,
				PhaseFirstOutput: tt.output, PhaseGuestExit: 10, PhaseClosed: 11, PhaseExit: 12}}
			if err := validateBoot(b); (err == nil) != tt.ok {
				t.Errorf("error %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// The exit of a stopped boot times the stop: it is not compared.
func TestRatiosLeaveOutStops(t *testing.T) {
	boot := func(stopped bool, scale float64) Boot {
		b := Boot{Phases: map[string]float64{PhaseFirstOutput: 2 * scale, PhaseReady: 5 * scale, PhaseExit: 1010 * scale}}
		if stopped {
			b.Phases[PhaseStopped] = 1000 * scale
		}
		return b
	}
	for _, stopped := range []bool{false, true} {
		r := &Results{Systems: []System{{Name: "a", Boots: []Boot{boot(stopped, 1)}}, {Name: "b", Boots: []Boot{boot(stopped, 2)}}}}
		for i := range r.Systems {
			r.Systems[i].summarize()
		}
		r.computeRatios()
		var phases []string
		for _, q := range r.Ratios {
			phases = append(phases, q.Phase)
		}
		want := []string{PhaseFirstOutput, PhaseReady, PhaseExit}
		if stopped {
			want = want[:2]
		}
		if !slices.Equal(phases, want) {
			t.Errorf("stopped %v: ratios of %v, want %v", stopped, phases, want)
		}
	}
}

// With a ready port, QEMU's ready (a connection its user network's
// forwarder holds, guest listening or not) is not compared with smolvmm's
// (the guest's accept), and the text says why; other pairs are.
func TestRatiosLeaveOutQEMUPortReady(t *testing.T) {
	boot := func(scale float64) Boot {
		return Boot{Phases: map[string]float64{PhaseFirstOutput: 2 * scale, PhaseReady: 5 * scale, PhaseExit: 10 * scale}}
	}
	all := []string{PhaseFirstOutput, PhaseReady, PhaseExit}
	tests := []struct {
		name      string
		addr      string
		other     string
		want      []string
		wantNoted bool
	}{
		{"ready port, qemu", "127.0.0.1:8080", "qemu-kvm", []string{PhaseFirstOutput, PhaseExit}, true},
		{"ready line, qemu", "", "qemu-tcg", all, false},
		{"ready port, a restore", "127.0.0.1:8080", "smolvmm-boot", all, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Results{Config: Config{Kernel: "k", Boots: 1, MemoryMiB: 128, ReadyAddr: tt.addr},
				Systems: []System{{Name: "smolvmm", Boots: []Boot{boot(1)}}, {Name: tt.other, Boots: []Boot{boot(2)}}}}
			for i := range r.Systems {
				r.Systems[i].summarize()
			}
			r.computeRatios()
			var phases []string
			for _, q := range r.Ratios {
				phases = append(phases, q.Phase)
			}
			if !slices.Equal(phases, tt.want) {
				t.Errorf("ratios of %v, want %v", phases, tt.want)
			}
			var buf bytes.Buffer
			if err := r.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			note := "ready is not compared between smolvmm and " + tt.other + ": QEMU's ready is a connection to " + tt.addr + " that held"
			if got := strings.Contains(buf.String(), note); got != tt.wantNoted || got != (r.readyNotComparedNote() != "") {
				t.Errorf("note %q in the text %v, want %v:\n%s", note, got, tt.wantNoted, buf.String())
			}
		})
	}
}

// A restore reads its snapshot while it creates the VM: snapshot-loaded may
// come before or after vm-created, not after state-restored.
func TestValidateRestoreBoot(t *testing.T) {
	tests := []struct {
		name     string
		loaded   float64
		wantFail bool
	}{
		{"loaded before the VM", 4, false},
		{"loaded after the VM", 6, false},
		{"loaded after the state was set", 8, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Boot{Phases: map[string]float64{PhaseRuntime: 1, PhaseVMCreated: 5, PhaseSnapshotLoaded: tt.loaded,
				PhaseStateRestored: 7, PhaseFirstRun: 7.5, PhaseFirstOutput: 9, PhaseExit: 10}}
			if err := validateBoot(b); (err != nil) != tt.wantFail {
				t.Errorf("error %v, want failure %v", err, tt.wantFail)
			}
		})
	}
}

// The text says which boots were stopped at ready, and why.
func TestWriteTextStoppedBoots(t *testing.T) {
	s := System{Name: "smolvmm", Boots: []Boot{
		{Phases: map[string]float64{PhaseFirstOutput: 2, PhaseReady: 5, PhaseStopped: 1005, PhaseExit: 1010}, Status: 130},
		{Phases: map[string]float64{PhaseFirstOutput: 2, PhaseReady: 5, PhaseExit: 6}, Status: 1},
	}}
	s.summarize()
	r := &Results{Config: Config{Kernel: "k", Boots: 2, MemoryMiB: 128}, Systems: []System{s}}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "1 of 2 boots stopped at ready: the guest did not end by itself"; !strings.Contains(buf.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, buf.String())
	}
}

// Memory overheads are one sample each: compared only when sampled at the
// same event (QEMU's TCG, sampled at its first output because its guest
// was gone by ready, is not compared with smolvmm's at ready, and a note
// says so), a restore's with any; the text says they are no medians.
func TestRatiosMemorySampledAt(t *testing.T) {
	mem := func(at, file string, overhead int64) *Memory {
		return &Memory{SampledAt: at, GuestFile: file, RSSKiB: overhead, OverheadKiB: overhead}
	}
	// by is mem sampled at the ready made by the event by.
	by := func(by string, m *Memory) *Memory {
		m.ReadyBy = by
		return m
	}
	tests := []struct {
		name        string
		base, other *Memory
		compared    bool
		note        string // the note's end, when not compared
	}{
		{"both at ready", mem(PhaseReady, "", 1000), mem(PhaseReady, "", 3000), true, ""},
		{"ready and first output", mem(PhaseReady, "", 1000), mem(PhaseFirstOutput, "", 3000), false, "at ready: qemu-tcg's at first-output"},
		{"a restore at its first output", mem(PhaseFirstOutput, "/s.snap", 1000), mem(PhaseReady, "", 3000), true, ""},
		{"both at the ready line", by(ReadyByLine, mem(PhaseReady, "", 1000)), by(ReadyByLine, mem(PhaseReady, "", 3000)), true, ""},
		{"boot-timer write and the ready line", by(ReadyByVMM, mem(PhaseReady, "", 1000)), by(ReadyByLine, mem(PhaseReady, "", 3000)), false,
			"at ready (the VMM's own report (its guest's boot-timer port write, or accept on the ready port)): qemu-tcg's at ready (its ready line)"},
		{"a restore's report and the ready line", by(ReadyByRestore, mem(PhaseReady, "/s.snap", 1000)), by(ReadyByLine, mem(PhaseReady, "", 3000)), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			boot := Boot{Phases: map[string]float64{PhaseFirstOutput: 2, PhaseExit: 10}}
			r := &Results{Config: Config{Kernel: "k", Boots: 1, MemoryMiB: 128},
				Systems: []System{{Name: "smolvmm", Boots: []Boot{boot}, Memory: tt.base}, {Name: "qemu-tcg", Boots: []Boot{boot}, Memory: tt.other}}}
			for i := range r.Systems {
				r.Systems[i].summarize()
			}
			r.computeRatios()
			var got *Ratio
			for i, q := range r.Ratios {
				if q.Phase == "memory" {
					got = &r.Ratios[i]
				}
			}
			if (got != nil) != tt.compared || got != nil && got.Value != 3 {
				t.Errorf("memory ratio %+v, want compared %v", got, tt.compared)
			}
			var buf bytes.Buffer
			if err := r.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			text := buf.String()
			if tt.compared != strings.Contains(text, "memory (one sample each)") {
				t.Errorf("text, want the memory row labelled one sample each (%v):\n%s", tt.compared, text)
			}
			note := "memory is not compared where it was sampled at another event than smolvmm's, " + tt.note
			if got := strings.Contains(text, note); got == tt.compared || got != (r.memoryNotComparedNote() != "") {
				t.Errorf("note %q in the text %v, want %v:\n%s", note, got, !tt.compared, text)
			}
		})
	}
}

// A ready phase compares only with one the same event made (Boot.ReadyBy)
// in every boot: smolvmm's at its guest's boot-timer write is not QEMU's
// at the ready line; a restore's report, the ready its snapshot was taken
// at, compares with any (--compare boot); results written before the
// event was recorded compare as they did.
func TestRatiosReadyBy(t *testing.T) {
	tests := []struct {
		name     string
		base     []string // each boot's ReadyBy
		other    []string
		compared bool
		note     string
	}{
		{"line and line", []string{ReadyByLine}, []string{ReadyByLine}, true, ""},
		{"boot-timer write and line", []string{ReadyByVMM}, []string{ReadyByLine}, false,
			"ready is not compared where another event made it than smolvmm's, the VMM's own report (its guest's boot-timer port write, or accept on the ready port): qemu-kvm's is its ready line"},
		{"some boots by the write", []string{ReadyByVMM, ReadyByLine}, []string{ReadyByLine, ReadyByLine}, false,
			"than smolvmm's, its ready line or the VMM's own report"},
		{"mixed on both sides", []string{ReadyByVMM, ReadyByLine}, []string{ReadyByVMM, ReadyByLine}, false, "qemu-kvm's is its ready line or the VMM's own report"},
		{"a restore and a boot's line", []string{ReadyByRestore}, []string{ReadyByLine}, true, ""},
		{"not recorded", []string{""}, []string{""}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			boots := func(by []string, scale float64) []Boot {
				var bs []Boot
				for _, e := range by {
					bs = append(bs, Boot{Phases: map[string]float64{PhaseFirstOutput: 2 * scale, PhaseReady: 5 * scale, PhaseExit: 10 * scale}, ReadyBy: e})
				}
				return bs
			}
			r := &Results{Schema: SchemaVersion, Config: Config{Kernel: "k", Boots: 2, MemoryMiB: 128},
				Systems: []System{{Name: "smolvmm", Boots: boots(tt.base, 1)}, {Name: "qemu-kvm", Boots: boots(tt.other, 2)}}}
			for i := range r.Systems {
				r.Systems[i].summarize()
			}
			r.computeRatios()
			got := false
			for _, q := range r.Ratios {
				got = got || q.Phase == PhaseReady
			}
			if got != tt.compared {
				t.Errorf("ready compared %v, want %v: %+v", got, tt.compared, r.Ratios)
			}
			note := r.readyNotComparedNote()
			if tt.compared && note != "" || !tt.compared && !strings.Contains(note, tt.note) {
				t.Errorf("note %q, want %q", note, tt.note)
			}
			if err := r.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A ready event the bench does not know, or one without a ready phase,
// is refused.
func TestValidateReadyBy(t *testing.T) {
	tests := []struct {
		name  string
		by    string
		ready bool
		ok    bool
	}{
		{"line", ReadyByLine, true, true},
		{"none", "", false, true},
		{"unknown", "telepathy", true, false},
		{"without a ready phase", ReadyByVMM, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Boot{Phases: map[string]float64{PhaseFirstOutput: 2, PhaseExit: 10}, ReadyBy: tt.by}
			if tt.ready {
				b.Phases[PhaseReady] = 5
			}
			if err := validateBoot(b); (err == nil) != tt.ok {
				t.Errorf("error %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestResultsDocExample: the JSON example in Results' godoc is what a
// demo bench writes: its keys are Results' fields, /dev/kvm's state is
// hostInfo's "usable", and a demo boot's status is 1 (the demo's
// debug-exit write of 0, (0<<1)|1), not 0. It said "/dev/kvm usable"
// and status 0.
func TestResultsDocExample(t *testing.T) {
	src, err := os.ReadFile("results.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(src), "// Results is the JSON document")
	if !ok {
		t.Fatal("results.go lacks Results' godoc")
	}
	var ex strings.Builder
	for _, line := range strings.Split(after, "\n")[1:] {
		if !strings.HasPrefix(line, "//") {
			break
		}
		if l, ok := strings.CutPrefix(line, "//\t"); ok {
			ex.WriteString(l + "\n")
		}
	}
	// "..." elides a list or a number; in a string it is part of it.
	doc := strings.ReplaceAll(ex.String(), "[...]", "[]")
	doc = strings.ReplaceAll(doc, ": ...", ": 0")
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	var r Results
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the example is no Results: %v\n%s", err, doc)
	}
	if r.Host.KVM != "usable" {
		t.Errorf(`example's "kvm": %q, want "usable", as hostInfo writes`, r.Host.KVM)
	}
	if r.Config.Kernel != "demo" || len(r.Systems) == 0 || len(r.Systems[0].Boots) == 0 {
		t.Fatalf("example: kernel %q, systems %+v; want a demo boot", r.Config.Kernel, r.Systems)
	}
	for _, b := range r.Systems[0].Boots {
		if b.Status != 1 {
			t.Errorf("example's demo boot status %d, want 1: the demo ends with a debug-exit write of 0", b.Status)
		}
	}
}
