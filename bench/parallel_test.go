package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rollupFixture is a Linux 6.1 /proc/PID/smaps_rollup.
const rollupFixture = `5640e7ed3000-7fff114e6000 ---p 00000000 00:00 0                          [rollup]
Rss:                1736 kB
Pss:                 303 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:            191 kB
Pss_Shmem:             0 kB
Shared_Clean:       1584 kB
Private_Dirty:       112 kB
Anonymous:           112 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`

func TestParseRollup(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Rollup
		wantErr string
	}{
		{"linux 6.1", rollupFixture, Rollup{RSSKiB: 1736, PSSKiB: 303, PSSAnonKiB: 112, PSSFileKiB: 191}, ""},
		{"before 5.7: no Pss_Anon", "00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\nRss: 900 kB\nPss: 450 kB\nSwap: 0 kB\n",
			Rollup{RSSKiB: 900, PSSKiB: 450}, ""},
		{"no Pss", "00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\nRss: 900 kB\n", Rollup{}, "no Pss line"},
		{"empty", "", Rollup{}, "no Rss line (0 lines read)"},
		{"bad value", "h\nRss: 9x kB\nPss: 1 kB\n", Rollup{}, `line 2: Rss "9x": not a size`},
		{"negative", "h\nRss: 9 kB\nPss: -1 kB\n", Rollup{}, `Pss "-1"`},
		{"no value", "h\nRss:\n", Rollup{}, "line 2: Rss has no value"},
		{"stray line", "h\nRss: 9 kB\ngarbage here\n", Rollup{}, `line 3: "garbage here" is not a Key: value line`},
		{"pss above rss", "h\nRss: 9 kB\nPss: 10 kB\n", Rollup{}, "Pss 10 kB above Rss 9 kB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRollup(strings.NewReader(tt.text))
			checkResult(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseSmapsPss(t *testing.T) {
	text := "7f0000000000-7f0008000000 rw-p 00000000 00:00 0\nRss: 2048 kB\nPss: 2048 kB\n" +
		"00400000-00800000 r-xp 00000000 08:01 42 /usr/bin/vmm\nRss: 3000 kB\nPss: 300 kB\n"
	maps, err := ParseSmaps(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 2 || maps[0].PSSKiB != 2048 || maps[1].PSSKiB != 300 || maps[1].RSSKiB != 3000 {
		t.Fatalf("got %+v", maps)
	}
	if _, err := ParseSmaps(strings.NewReader("10-20 rw-p 0 00:00 0\nPss: x kB\n")); err == nil || !strings.Contains(err.Error(), `Pss "x"`) {
		t.Errorf("bad Pss: error %v", err)
	}
}

// mem is a VMMemory with the overheads worked out.
func mem(rss, pss, guestRSS, guestPSS int64) *VMMemory {
	return &VMMemory{RSSKiB: rss, PSSKiB: pss, GuestRSSKiB: guestRSS, GuestPSSKiB: guestPSS, OverheadRSSKiB: rss - guestRSS, OverheadPSSKiB: pss - guestPSS}
}

func TestAggregate(t *testing.T) {
	tests := []struct {
		name                        string
		cpus                        int
		vms                         []VM
		started, failed             int
		allReady, rate, perCore     float64
		latencyMedian               float64
		memN                        int
		pssMean, opssMean, orssMean float64
		pssTotal, opssMax           int64
	}{
		{"all started", 2, []VM{
			{Index: 0, StartMS: 0.5, FirstOutputMS: 10, ReadyMS: 10, Memory: mem(12000, 3000, 100, 100)},
			{Index: 1, StartMS: 1, FirstOutputMS: 20, ReadyMS: 20, Memory: mem(12000, 2000, 100, 100)},
			{Index: 2, StartMS: 2, FirstOutputMS: 50, ReadyMS: 50, Memory: mem(12400, 2200, 200, 200)},
		}, 3, 0, 50, 60, 30, 19, 3, 2400, 6800.0 / 3, 12000, 7200, 2900},
		{"one failed, one without memory", 1, []VM{
			{Index: 0, StartMS: 0.5, FirstOutputMS: 40, ReadyMS: 100, Memory: mem(10000, 4000, 0, 0)},
			{Index: 1, StartMS: 0.7, Error: "exit status 1 before its first console byte: KVM_CREATE_VM: cannot allocate memory"},
			{Index: 2, StartMS: 0.9, FirstOutputMS: 20, ReadyMS: 20, MemoryError: "gone"},
		}, 2, 1, 100, 20, 20, 59.3, 1, 4000, 4000, 10000, 4000, 4000},
		{"none started", 2, []VM{{Index: 0, Error: "start: too many open files"}}, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ParallelResults{Schema: ParallelSchemaVersion, Host: Host{CPUs: tt.cpus}, VMs: tt.vms}
			r.aggregate()
			if r.N != len(tt.vms) || r.Started != tt.started || r.Failed != tt.failed {
				t.Errorf("n %d started %d failed %d, want %d %d %d", r.N, r.Started, r.Failed, len(tt.vms), tt.started, tt.failed)
			}
			near := func(what string, got, want float64) {
				if d := got - want; d > 1e-9 || d < -1e-9 {
					t.Errorf("%s %v, want %v", what, got, want)
				}
			}
			near("all ready", r.AllReadyMS, tt.allReady)
			near("starts/s", r.StartsPerSec, tt.rate)
			near("starts/s/core", r.StartsPerSecPerCore, tt.perCore)
			near("latency median", r.StartLatency.Median, tt.latencyMedian)
			if tt.memN == 0 {
				if r.Memory != nil {
					t.Errorf("memory %+v from no samples", *r.Memory)
				}
			} else {
				if r.Memory == nil {
					t.Fatal("no memory summary")
				}
				m := r.Memory
				if m.N != tt.memN || m.PSSKiBTotal != tt.pssTotal || m.OverheadPSSKiBMax != tt.opssMax {
					t.Errorf("memory %+v", *m)
				}
				near("pss mean", m.PSSKiBMean, tt.pssMean)
				near("overhead pss mean", m.OverheadPSSKiBMean, tt.opssMean)
				near("overhead rss mean", m.OverheadRSSKiBMean, tt.orssMean)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("own aggregate does not validate: %v", err)
			}
		})
	}
}

func TestParallelValidate(t *testing.T) {
	good := func() *ParallelResults {
		r := &ParallelResults{Schema: ParallelSchemaVersion, Host: Host{CPUs: 2}, VMs: []VM{
			{Index: 0, StartMS: 0.5, FirstOutputMS: 10, ReadyMS: 10, Memory: mem(12000, 3000, 100, 100)},
			{Index: 1, StartMS: 0.6, Error: "boom"},
		}, NetworkMemory: &NetworkMemory{PID: 42, RSSKiB: 9000, PSSKiB: 6000}}
		r.aggregate()
		return r
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	mutations := []struct {
		name string
		edit func(r *ParallelResults)
	}{
		{"wrong schema", func(r *ParallelResults) { r.Schema = SchemaVersion }},
		{"count", func(r *ParallelResults) { r.Started = 2 }},
		{"n", func(r *ParallelResults) { r.N = 3 }},
		{"index", func(r *ParallelResults) { r.VMs[1].Index = 5 }},
		{"rate", func(r *ParallelResults) { r.StartsPerSec *= 2 }},
		{"pss above rss", func(r *ParallelResults) { r.VMs[0].Memory = mem(1000, 2000, 0, 0) }},
		{"zero rss", func(r *ParallelResults) { r.VMs[0].Memory = mem(0, 0, 0, 0) }},
		{"overhead wrong", func(r *ParallelResults) { r.VMs[0].Memory.OverheadPSSKiB++ }},
		{"ready before start", func(r *ParallelResults) { r.VMs[0].StartMS = 11 }},
		{"failed with memory", func(r *ParallelResults) { r.VMs[1].Memory = mem(1, 1, 0, 0) }},
		{"started without memory or its error", func(r *ParallelResults) {
			r.VMs[0].Memory = nil
			r.aggregate()
		}},
		{"started with memory and its error", func(r *ParallelResults) { r.VMs[0].MemoryError = "gone" }},
		{"memory summary", func(r *ParallelResults) { r.Memory.PSSKiBTotal++ }},
		{"mapped count", func(r *ParallelResults) { r.Memory.ExecutableMapped++ }},
		{"mapped why, not mapped", func(r *ParallelResults) { r.VMs[0].Memory.ExecutableMappedWhy = "traced" }},
		{"mapped and unsettled", func(r *ParallelResults) {
			r.VMs[0].Memory.ExecutableMapped, r.VMs[0].Memory.Unsettled = true, true
			r.aggregate()
		}},
		{"network share", func(r *ParallelResults) { r.NetworkMemory.PSSKiBPerVM++ }},
		{"network pss above rss", func(r *ParallelResults) { r.NetworkMemory.PSSKiB = 10000 }},
		{"network memory and error", func(r *ParallelResults) { r.NetworkMemoryError = "gone" }},
		{"network vms negative", func(r *ParallelResults) { r.NetworkMemory.VMs = -1 }},
		{"network vms and their error", func(r *ParallelResults) { r.NetworkMemory.VMs, r.NetworkMemory.VMsError = 2, "no" }},
		{"network share of the started, with vms", func(r *ParallelResults) { r.NetworkMemory.VMs = 4 }},
	}
	for _, mu := range mutations {
		t.Run(mu.name, func(t *testing.T) {
			r := good()
			mu.edit(r)
			if err := r.Validate(); !errors.Is(err, ErrSchema) {
				t.Errorf("error %v, want ErrSchema", err)
			}
		})
	}
}

// TestReadParallelResultsNewerFields: a newer writer's fields, unknown
// here, at the top and in a VM's memory, do not stop the file reading.
func TestReadParallelResultsNewerFields(t *testing.T) {
	r := &ParallelResults{Schema: ParallelSchemaVersion, Host: Host{CPUs: 2}, VMs: []VM{
		{Index: 0, StartMS: 0.5, FirstOutputMS: 10, ReadyMS: 10, Memory: mem(12000, 3000, 100, 100)},
	}}
	r.aggregate()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["extra"] = 1
	m["vms"].([]any)[0].(map[string]any)["memory"].(map[string]any)["extra_kib"] = 7
	b, _ = json.Marshal(m)
	if _, err := ReadParallelResults(bytes.NewReader(b)); err != nil {
		t.Errorf("a newer writer's field is refused: %v", err)
	}
}

// The network's PSS is shared out among the VMs joined to it, as it said
// (other benches' and VMs' too), not among the VMs this bench started; and
// where it did not say, among those, labelled so.
func TestParallelNetworkShare(t *testing.T) {
	tests := []struct {
		vms      int
		vmsErr   string
		perVM    float64
		wantText string
	}{
		{4, "", 1500, "PSS 5.86 MiB, 1.46 MiB per joined VM (4 joined)"},
		{1, "", 6000, "1 joined"},
		{0, "refused: malformed hello", 6000, "5.86 MiB per VM this bench started (the network did not say how many were joined: refused: malformed hello)"},
	}
	for _, tt := range tests {
		r := &ParallelResults{Schema: ParallelSchemaVersion, N: 2, Host: Host{CPUs: 2}, Config: Config{Net: "user:web"}, VMs: []VM{
			{Index: 0, StartMS: 0.5, FirstOutputMS: 10, ReadyMS: 10, Memory: mem(12000, 3000, 100, 100)},
			{Index: 1, StartMS: 0.6, Error: "boom"},
		}, NetworkMemory: &NetworkMemory{PID: 42, RSSKiB: 9000, PSSKiB: 6000, VMs: tt.vms, VMsError: tt.vmsErr}}
		r.aggregate()
		if r.NetworkMemory.PSSKiBPerVM != tt.perVM {
			t.Errorf("%d joined: %.1f KiB per VM, want %.1f", tt.vms, r.NetworkMemory.PSSKiBPerVM, tt.perVM)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%d joined: %v", tt.vms, err)
		}
		var b strings.Builder
		if err := r.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tt.wantText) {
			t.Errorf("%d joined: text lacks %q:\n%s", tt.vms, tt.wantText, b.String())
		}
	}
}

func TestRunParallel(t *testing.T) {
	ready := regexp.MustCompile(`^touched`)
	tests := []struct {
		name        string
		mode        string
		ready       *regexp.Regexp
		wantFailed  int
		wantErrText string
	}{
		{"first console byte", "memory", nil, 0, ""},
		{"ready line", "memory", ready, 0, ""},
		{"one cannot start", "onefails", nil, 1, "exit status 3 before its first console byte: no room for this one"},
		// Its cause, not the last bytes of its goroutines' stacks.
		{"one crashes", "onecrashes", nil, 1, "exit status 2 before its first console byte: panic: fake VMM crash"},
		{"none has a ready line", "lines", ready, 3, "exit status 1 before its ready line"},
		// Status 1 is the guest's good end, which its report says.
		{"the guests end first", "report", ready, 3, "the guest ended (status 1) before its ready line"},
		// Not the guest's choice: the VMM's failure.
		{"the VMMs fail first", "vmmfail", ready, 3, "exit status 1 before its ready line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 3
			// The fakes that start run until the bench ends them
			// (BENCH_HOLD): the memory fake exited fakeDelay after its
			// line, and a loaded host's bench stopped it later, to
			// find it gone ("no memory: ... the process has exited").
			target := fakeTarget(t, "fake", tt.mode, "BENCH_ONCE="+filepath.Join(t.TempDir(), "once"), "BENCH_HOLD=1")
			switch tt.mode {
			case "lines":
				target.GuestBytes = 0
			case "report", "vmmfail":
				target.GuestBytes, target.ReportFlag = 0, "--report"
			}
			// The test process stands in for a shared network's.
			res, err := RunParallel(context.Background(), target, ParallelOptions{N: n, Ready: tt.ready, Timeout: 30 * time.Second,
				Config: Config{Kernel: "fake", MemoryMiB: 20, Net: "user:test"}, NetworkPID: os.Getpid(),
				NetworkVMs: func() (int, error) { return 5, nil }}) // two more than this bench's
			if err != nil {
				t.Fatal(err)
			}
			if nm := res.NetworkMemory; nm == nil || nm.PID != os.Getpid() || nm.RSSKiB <= 0 || nm.PSSKiB <= 0 ||
				nm.VMs != 5 || nm.PSSKiBPerVM != float64(nm.PSSKiB)/5 {
				t.Errorf("network memory %+v (%s), %d started", nm, res.NetworkMemoryError, res.Started)
			}
			if res.N != n || res.Failed != tt.wantFailed || res.Started != n-tt.wantFailed || len(res.VMs) != n {
				t.Fatalf("n %d started %d failed %d, want %d failed; vms %+v", res.N, res.Started, res.Failed, tt.wantFailed, res.VMs)
			}
			for _, v := range res.VMs {
				if !v.Started() {
					if !strings.Contains(v.Error, tt.wantErrText) {
						t.Errorf("vm %d: error %q, want %q", v.Index, v.Error, tt.wantErrText)
					}
					continue
				}
				m := v.Memory
				if m == nil {
					t.Fatalf("vm %d: no memory: %s", v.Index, v.MemoryError)
				}
				// The fake touched fakeTouched of its guest RAM before
				// printing, and was stopped at that line: all of it is
				// still there, and private.
				if m.GuestRSSKiB < fakeTouched>>10 || m.GuestPSSKiB != m.GuestRSSKiB || m.PSSKiB > m.RSSKiB || m.OverheadPSSKiB <= 0 {
					t.Errorf("vm %d: memory %+v", v.Index, *m)
				}
			}
			if res.Started > 0 && !(res.AllReadyMS > 0 && res.StartsPerSec > 0 && res.Memory != nil && res.Memory.N == res.Started) {
				t.Errorf("rates or memory missing: %+v", res)
			}
			var js bytes.Buffer
			if err := res.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			back, err := ReadParallelResults(bytes.NewReader(js.Bytes()))
			if err != nil {
				t.Fatalf("own JSON does not read back: %v\n%s", err, js.Bytes())
			}
			if back.Started != res.Started {
				t.Errorf("round trip: started %d, was %d", back.Started, res.Started)
			}
			var text bytes.Buffer
			if err := res.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if want := "started " + string(rune('0'+res.Started)) + ", failed " + string(rune('0'+res.Failed)); !strings.Contains(text.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, text.String())
			}
			if !strings.Contains(text.String(), "shared network user:test (process ") {
				t.Errorf("text lacks the network's memory:\n%s", text.String())
			}
			if none := res.Started == 0; none != strings.Contains(text.String(), "none started") || none == strings.Contains(text.String(), "all ready after") {
				t.Errorf("started %d; text:\n%s", res.Started, text.String())
			}
			var svg bytes.Buffer
			if err := res.WriteSVG(&svg); err != nil {
				t.Fatal(err)
			}
			if got := svgVMs(t, svg.Bytes()); got != n {
				t.Errorf("svg has %d VM groups, want %d", got, n)
			}
		})
	}
}

// svgVMs parses an SVG and counts its <g class="vm"> groups.
func svgVMs(t *testing.T, doc []byte) int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	count := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return count
			}
			t.Fatalf("svg is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			for _, a := range se.Attr {
				if a.Name.Local == "class" && a.Value == "vm" {
					count++
				}
			}
		}
	}
}

// A VM is measured once it has settled (its byte on the SettledFlag
// pipe), however long that takes within the start's Timeout, or after
// the settle timeout when one is given: then it is flagged and left out
// of the summary.
func TestRunParallelWaitsUntilSettled(t *testing.T) {
	tests := []struct {
		mode                     string
		settleTimeout            time.Duration
		minGuestKiB, maxGuestKiB int64
		unsettled                bool
		mappedWhy                string // the VMs' executable stayed mapped, for this reason
	}{
		// The second fakeTouched, touched before the byte, is counted.
		{"settles", time.Minute, 2 * fakeTouched >> 10, fakeGuestBytes >> 10, false, ""},
		// Settled, and said that its executable stayed mapped (its set-up
		// code in its RSS): counted, and said so.
		{"settlesmapped", time.Minute, 2 * fakeTouched >> 10, fakeGuestBytes >> 10, false, `traced by PID 7\x1b[2J`},
		// No settle timeout: a VM that takes longer than a second (50 VMs
		// on two cores) is waited for. VM 49 of such a run was measured
		// with 13.8 MiB RSS, the median 3.8 MiB.
		{"settleslate", 0, 2 * fakeTouched >> 10, fakeGuestBytes >> 10, false, ""},
		// Measured at the timeout: the first only (huge pages may round
		// it up to 4 MiB).
		{"unsettled", 2 * fakeDelay, fakeTouched >> 10, 2*fakeTouched>>10 - 1, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			target := fakeTarget(t, "fake", tt.mode)
			target.SettledFlag = "-settled-fd"
			res, err := RunParallel(context.Background(), target, ParallelOptions{N: 2, Timeout: 30 * time.Second,
				SettleTimeout: tt.settleTimeout, Config: Config{Kernel: "fake", MemoryMiB: 20}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Started != 2 {
				t.Fatalf("started %d of 2: %+v", res.Started, res.VMs)
			}
			for _, v := range res.VMs {
				if v.Memory == nil {
					t.Fatalf("vm %d: no memory: %s", v.Index, v.MemoryError)
				}
				if g := v.Memory.GuestRSSKiB; g < tt.minGuestKiB || g > tt.maxGuestKiB {
					t.Errorf("vm %d: guest RSS %d KiB, want %d to %d KiB", v.Index, g, tt.minGuestKiB, tt.maxGuestKiB)
				}
				if v.Memory.Unsettled != tt.unsettled {
					t.Errorf("vm %d: unsettled %v, want %v", v.Index, v.Memory.Unsettled, tt.unsettled)
				}
				if m := v.Memory; m.ExecutableMapped != (tt.mappedWhy != "") || m.ExecutableMappedWhy != tt.mappedWhy {
					t.Errorf("vm %d: executable mapped %v (why %q), want %v (%q)", v.Index, m.ExecutableMapped, m.ExecutableMappedWhy, tt.mappedWhy != "", tt.mappedWhy)
				}
			}
			wantN, wantUnsettled := 2, 0
			if tt.unsettled {
				wantN, wantUnsettled = 0, 2
			}
			if m := res.Memory; m == nil || m.N != wantN || m.Unsettled != wantUnsettled {
				t.Errorf("memory summary %+v: want %d read, %d unsettled", m, wantN, wantUnsettled)
			}
			var text bytes.Buffer
			res.WriteText(&text)
			if got := strings.Contains(text.String(), "2 VMs read before they had settled"); got != tt.unsettled {
				t.Errorf("the text says of unsettled VMs: %v, want %v:\n%s", got, tt.unsettled, text.String())
			}
			wantMapped := 0
			if tt.mappedWhy != "" {
				wantMapped = 2
			}
			if m := res.Memory; m != nil && (m.ExecutableMapped != wantMapped || m.ExecutableMappedWhy != tt.mappedWhy) {
				t.Errorf("memory summary %+v: want %d with the executable mapped, why %q", m, wantMapped, tt.mappedWhy)
			}
			mappedLine := "2 VMs settled with their executable still mapped (" + tt.mappedWhy + "): their set-up code counts"
			if got := strings.Contains(text.String(), mappedLine); got != (tt.mappedWhy != "") {
				t.Errorf("the text says %q: %v, want %v:\n%s", mappedLine, got, tt.mappedWhy != "", text.String())
			}
			if err := res.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A VM that reports its own ready (a restore of a snapshot taken once
// ready, whose guest does not print the ready line again; or a boot's
// guest that wrote the boot-timer port) is ready at its first console
// byte, as RunBoot takes it; one that reports nothing and never prints
// the line is not.
func TestRunParallelVMMReady(t *testing.T) {
	tests := []struct {
		mode     string
		reported bool
		started  int
	}{
		{"vmmready", true, 2},
		{"vmmreadyline", true, 2},
		{"notready", true, 0},
		// A boot's report (its boot-timer write) starts it as the line
		// does, as in RunBoot and run.
		{"vmmready", false, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.mode, ",reported=", tt.reported), func(t *testing.T) {
			target := fakeTarget(t, "fake", tt.mode)
			target.SettledFlag, target.ReadyFlag, target.ReadyReported = "-settled-fd", "-ready-fd", tt.reported
			res, err := RunParallel(context.Background(), target, ParallelOptions{N: 2, Timeout: 30 * time.Second,
				Ready: regexp.MustCompile("^marker: ready"), SettleTimeout: time.Second, Config: Config{Kernel: "fake", MemoryMiB: 20}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Started != tt.started {
				t.Fatalf("started %d of 2, want %d: %+v", res.Started, tt.started, res.VMs)
			}
			for _, v := range res.VMs {
				if tt.started == 0 {
					if !strings.Contains(v.Error, "before its ready line") {
						t.Errorf("vm %d: error %q, want one about its ready line", v.Index, v.Error)
					}
					continue
				}
				if v.ReadyMS < v.FirstOutputMS {
					t.Errorf("vm %d: ready at %.3f ms, before its first output at %.3f ms", v.Index, v.ReadyMS, v.FirstOutputMS)
				}
				if v.Memory == nil {
					t.Errorf("vm %d: no memory: %s", v.Index, v.MemoryError)
				}
			}
			if err := res.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRunParallelBadN(t *testing.T) {
	if _, err := RunParallel(context.Background(), Target{Name: "x", Path: "/bin/true"}, ParallelOptions{N: 0}); err == nil || !strings.Contains(err.Error(), "0 parallel VMs") {
		t.Errorf("error %v", err)
	}
}

func TestRunParallelMissingProgram(t *testing.T) {
	res, err := RunParallel(context.Background(), Target{Name: "x", Path: "/nonexistent/vmm"}, ParallelOptions{N: 2, Config: Config{Kernel: "k", MemoryMiB: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Started != 0 || res.Failed != 2 || !strings.Contains(res.VMs[0].Error, "start: ") {
		t.Fatalf("%+v", res.VMs)
	}
	b, _ := json.Marshal(res)
	if _, err := ReadParallelResults(bytes.NewReader(b)); err != nil {
		t.Errorf("a run where nothing started does not validate: %v", err)
	}
}

func TestRunParallelTimeout(t *testing.T) {
	target := fakeTarget(t, "fake", "hang")
	// Long enough for the fake VMs (this test binary, run again) to print
	// their first line on a loaded machine: the test checks it was seen.
	const timeout = 3 * time.Second
	start := time.Now()
	res, err := RunParallel(context.Background(), target, ParallelOptions{N: 2, Ready: regexp.MustCompile(`^never`), Timeout: timeout,
		Config: Config{Kernel: "fake", MemoryMiB: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v: the hanging VMs were not killed at the timeout", took)
	}
	for _, v := range res.VMs {
		if v.Started() || v.Error != "not started within 3s" || v.FirstOutputMS == 0 {
			t.Errorf("vm %d: %+v", v.Index, v)
		}
	}
	if res.Started != 0 || res.Failed != 2 || res.Memory != nil {
		t.Errorf("started %d failed %d memory %+v", res.Started, res.Failed, res.Memory)
	}
}

// TestParallelVMOOMScore: a VM started by the parallel bench is the OOM
// killer's first choice, not the bench.
func TestParallelVMOOMScore(t *testing.T) {
	settled := make(chan int, 1)
	v := &parallelVM{index: 0, settled: settled}
	if !v.start(fakeTarget(t, "fake", "hang"), "") {
		t.Fatal(v.err)
	}
	defer func() {
		v.kill()
		v.cmd.Wait()
		v.console.Close()
		if v.pidfd != nil {
			v.pidfd.Close()
		}
	}()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", v.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "1000" {
		t.Errorf("VM's oom_score_adj %s, want 1000", got)
	}
}

// TestParallelVMCutOff: at the timeout a VM not ready is killed, and a
// ready event after it (its ready line, printed while the ones that did
// start are measured) does not make it started; one ready before it stays.
func TestParallelVMCutOff(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 150 * time.Millisecond
	settled := make(chan int, 3)
	late := &parallelVM{index: 0, settled: settled}
	late.cmd = exec.Command(exe)
	late.cmd.Env = append(os.Environ(), "BENCH_FAKE=hang")
	if err := late.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	late.started, late.first = 1, 2
	early := &parallelVM{index: 1, settled: settled, started: 1, first: 2}
	early.markReady(3)
	early.cutOff()
	late.cutOff()
	late.markReady(4)
	// Seen before the timer fired, but timed after the timeout.
	overdue := &parallelVM{index: 2, settled: settled, started: 1, first: 2, deadline: 10}
	overdue.markReady(11)
	overdue.cutOff()
	if r := overdue.result(0, timeout); r.Started() || r.Error != "not started within 150ms" {
		t.Errorf("VM ready after the deadline: %+v, want not started within 150ms", r)
	}
	if err := late.cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the VM not ready at the timeout ended with %v, want killed", err)
	}
	if r := late.result(0, timeout); r.Started() || r.ReadyMS != 0 || r.Error != "not started within 150ms" {
		t.Errorf("late VM: %+v, want not started within 150ms", r)
	}
	if r := early.result(0, timeout); !r.Started() || r.ReadyMS == 0 {
		t.Errorf("early VM: %+v, want started", r)
	}
}

// TestRunParallelCutOff: through RunParallel, a VM not ready at the
// timeout is killed then, before the others are measured, and stays not
// started though its ready line comes later; a ready event timed after
// the timeout does not count even when it is seen before the timer fires.
func TestRunParallelCutOff(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		timeout time.Duration
		wantErr string
	}{
		{"ready line after the timeout", "readylate", 150 * time.Millisecond, "not started within 150ms"},
		{"ready timed after the timeout", "readyahead", 30 * time.Second, "exited before its ready line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			target := fakeTarget(t, "fake", tt.mode, "BENCH_PIDFILE="+pidFile)
			target.ReadyFlag, target.ReadyReported = "-ready-fd", true
			// The network's settle is a point while the VMs are measured:
			// there the readylate VM must be gone already.
			var alive error
			networkSettleAfter = func(time.Duration) <-chan time.Time {
				if tt.mode == "readylate" {
					alive = waitGone(pidFile)
				}
				c := make(chan time.Time, 1)
				c <- time.Time{}
				return c
			}
			defer func() { networkSettleAfter = time.After }()
			res, err := RunParallel(context.Background(), target, ParallelOptions{N: 1, Timeout: tt.timeout,
				Ready: regexp.MustCompile("^marker: ready"), Config: Config{Kernel: "fake", MemoryMiB: 1},
				NetworkPID: os.Getpid(), NetworkSettle: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if alive != nil {
				t.Errorf("VM not ready at the timeout: %v", alive)
			}
			if res.Started != 0 || res.Failed != 1 {
				t.Errorf("started %d failed %d, want 0 and 1: %+v", res.Started, res.Failed, res.VMs)
			}
			if v := res.VMs[0]; v.Started() || v.ReadyMS != 0 || v.Error != tt.wantErr {
				t.Errorf("VM %+v, want not started: %s", v, tt.wantErr)
			}
		})
	}
}

// waitGone waits (5 s at most) until the process whose PID is in the
// file pidFile has ended; no file: it ended before it wrote one.
func waitGone(pidFile string) error {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + string(b) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		// The state follows the command's closing parenthesis.
		if i := bytes.LastIndexByte(stat, ')'); err == nil && i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return nil
		}
	}
	return fmt.Errorf("process %s still running while the others were measured", b)
}

// With too few file descriptors for all of them, the VMs that get none
// say so and the others start.
func TestRunParallelOutOfFiles(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// Each started VM keeps 4 (console, stderr, two pidfds): the limit
	// holds that for 5, with 1 to spare. Starting one takes more than
	// that for a moment (startFDs), which the check counts and would
	// refuse: it is left out, as if the descriptors were taken by
	// another thread after it. The fifth cannot start.
	oldLimits := readHostLimits
	readHostLimits = func() hostLimits { return hostLimits{} }
	defer func() { readHostLimits = oldLimits }()
	low := old
	low.Cur = limitLeaving(t, 5*4+1)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	// Run until the bench ends them (BENCH_HOLD): exited fakeDelay after
	// their line, a loaded host's bench stopped them later, to find them
	// gone ("started without memory: ... the process has exited").
	target := fakeTarget(t, "fake", "memory", "BENCH_HOLD=1")
	res, err := RunParallel(context.Background(), target, ParallelOptions{N: 5, Timeout: 30 * time.Second, Config: Config{Kernel: "fake", MemoryMiB: 20}})
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed < 1 || res.Started+res.Failed != 5 {
		t.Fatalf("started %d failed %d: %+v", res.Started, res.Failed, res.VMs)
	}
	for _, v := range res.VMs {
		if !v.Started() && (!strings.Contains(v.Error, "(out of file descriptors: RLIMIT_NOFILE is ") || v.Limit != LimitFileDescriptors) {
			t.Errorf("vm %d: error %q (limit %q) does not say why", v.Index, v.Error, v.Limit)
		}
		if v.Started() && v.Memory == nil && !strings.Contains(v.MemoryError, "too many open files") { // reading smaps needs one too
			t.Errorf("vm %d started without memory: %s", v.Index, v.MemoryError)
		}
	}
	if err := res.Validate(); err != nil {
		t.Error(err)
	}
}

// TestRunParallelNetworkSettle: the shared network's memory is read after
// NetworkSettle, once what it frees after the joins is freed, not before;
// an interrupt during that wait is an interrupt.
func TestRunParallelNetworkSettle(t *testing.T) {
	tests := []struct {
		name      string
		settle    time.Duration
		cancel    bool
		wantLarge bool // the network's PSS still holds fakeNetworkBytes
	}{
		{"read at once", 0, false, true},
		{"read once settled", time.Minute, false, false},
		{"interrupted while settling", time.Minute, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			network := exec.Command(exe)
			network.Env = append(os.Environ(), "BENCH_FAKE=network")
			out, err := network.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := network.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				network.Process.Kill()
				network.Wait()
			}()
			lines := bufio.NewScanner(out)
			if !lines.Scan() || lines.Text() != "up" {
				t.Fatalf("fake network said %q (%v)", lines.Text(), lines.Err())
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var waited []time.Duration
			networkSettleAfter = func(d time.Duration) <-chan time.Time {
				waited = append(waited, d)
				if tt.cancel {
					cancel()
					return nil
				}
				// The network settles during the wait: released before
				// it ends.
				network.Process.Signal(syscall.SIGUSR1)
				if !lines.Scan() || lines.Text() != "released" {
					t.Errorf("fake network said %q (%v)", lines.Text(), lines.Err())
				}
				c := make(chan time.Time, 1)
				c <- time.Time{}
				return c
			}
			defer func() { networkSettleAfter = time.After }()
			res, err := RunParallel(ctx, fakeTarget(t, "fake", "memory"), ParallelOptions{N: 1, Timeout: 30 * time.Second,
				Config: Config{Kernel: "fake", MemoryMiB: 20, Net: "user:test"}, NetworkPID: network.Process.Pid, NetworkSettle: tt.settle})
			if tt.cancel {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err %v, want the interrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.settle > 0 && (len(waited) != 1 || waited[0] != tt.settle) {
				t.Errorf("waited %v, want once %v", waited, tt.settle)
			}
			if tt.settle == 0 && len(waited) != 0 {
				t.Errorf("waited %v without NetworkSettle", waited)
			}
			nm := res.NetworkMemory
			if nm == nil {
				t.Fatalf("no network memory: %s", res.NetworkMemoryError)
			}
			if large := nm.PSSKiB >= fakeNetworkBytes>>10; large != tt.wantLarge {
				t.Errorf("network PSS %d KiB: holding its %d MiB is %v, want %v", nm.PSSKiB, fakeNetworkBytes>>20, large, tt.wantLarge)
			}
		})
	}
}

// With a ready pattern, a booted guest's boot-timer write (the VMM's ready
// report, no restore's) starts a --parallel VM as it makes a sequential
// bench's boot ready, whether the line comes later or never: the ready
// pipe was given to restores only, so one that never printed the line
// failed "the guest ended (status 0) before its ready line".
func TestRunParallelBootTimerReady(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ready string
	}{
		{"line later", "^marker: ready$"},
		{"line never", "^never printed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := fakeTarget(t, "fake", "portready")
			target.ReadyFlag = "-ready-fd"
			res, err := RunParallel(context.Background(), target, ParallelOptions{N: 2, Timeout: 30 * time.Second,
				Ready: regexp.MustCompile(tt.ready), Config: Config{Kernel: "fake", MemoryMiB: 20}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Started != 2 {
				t.Fatalf("started %d of 2: %+v", res.Started, res.VMs)
			}
			for _, v := range res.VMs {
				// The write comes before the first byte: ready there.
				if v.ReadyMS != v.FirstOutputMS {
					t.Errorf("vm %d: ready at %.3f ms, want its first output's, at %.3f ms (the write came before it)", v.Index, v.ReadyMS, v.FirstOutputMS)
				}
			}
			if err := res.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A booted VM's report of its guest's boot-timer write moves its ready
// back to the write when the bench saw the ready line first, though not
// before its first console byte; a restore's report does not move it.
func TestParallelReportMovesReady(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restore bool
		at      int64
		want    int64
	}{
		{"write before the line", false, 200, 200},
		{"write before the first byte", false, 50, 100},
		{"write after the line", false, 700, 500},
		{"a restore's report", true, 200, 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(tt.at))
			w.Write(b[:])
			w.Close()
			v := &parallelVM{first: 100, ready: 500, restore: tt.restore, readyIn: r}
			v.readReport()
			if v.ready != tt.want {
				t.Errorf("ready %d, want %d", v.ready, tt.want)
			}
		})
	}
}
