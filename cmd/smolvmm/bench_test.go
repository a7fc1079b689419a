package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// benchRun runs smolvmm bench with args and returns its status, stdout and
// stderr.
func benchRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(smolvmmBin(t), append([]string{"bench"}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return status, stdout.String(), stderr.String()
}

// readParallelJSON reads the results bench --parallel wrote to path.
func readParallelJSON(t *testing.T, path string) *bench.ParallelResults {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := bench.ReadParallelResults(f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readBenchJSON(t *testing.T, path string) *bench.Results {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := bench.ReadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBenchDemo(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	// The vnet guest accepts a connection on port 80 (then ends): a guest
	// service behind a forwarded port.
	port := freeTCPPort(t)
	listener := []string{"-k", guests.ForTest(t, "vnet"), "-a", "listen=80 timeout=30"}
	// Every phase smolvmm reports, in order; ready stands apart.
	all := []string{bench.PhaseRuntime, bench.PhaseMain, bench.PhaseVMCreated, bench.PhaseDevicesCreated, bench.PhaseKernelLoaded,
		bench.PhaseFirstRun, bench.PhaseFirstOutput, bench.PhaseGuestExit, bench.PhaseClosed, bench.PhaseExit}
	tests := []struct {
		name  string
		args  []string
		ready bool
	}{
		{"no ready condition", nil, false},
		{"ready pattern on the demo's last line", []string{"--ready", "^smolvmm-demo: done"}, true},
		{"ready port", append([]string{"--ready-port", port, "-p", port + ":80"}, listener...), true},
		{"no network card", []string{"--net", "none"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			js, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "b.svg")
			args := append([]string{"-n", "2", "--warmup", "0", "--json", js, "--svg", svg}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			res := readBenchJSON(t, js)
			if len(res.Systems) != 1 || res.Systems[0].Name != "smolvmm" || len(res.Systems[0].Boots) != 2 {
				t.Fatalf("systems %+v", res.Systems)
			}
			s := res.Systems[0]
			for _, b := range s.Boots {
				last := -1.0
				for _, p := range all {
					ms, ok := b.Phases[p]
					if !ok {
						t.Fatalf("phase %s missing: %v", p, b.Phases)
					}
					if ms < last {
						t.Errorf("phase %s at %.3f ms before the previous one at %.3f ms", p, ms, last)
					}
					last = ms
				}
				ready, ok := b.Phases[bench.PhaseReady]
				if ok != tt.ready {
					t.Errorf("ready phase present %v, want %v: %v", ok, tt.ready, b.Phases)
				}
				if ok && tt.args[0] == "--ready" && ready < b.Phases[bench.PhaseFirstOutput] {
					t.Errorf("ready at %.3f ms, before the first output", ready)
				}
				if b.Status != 1 {
					t.Errorf("status %d, want 1 (the demo writes 0 to the debug-exit port)", b.Status)
				}
			}
			if m := s.Memory; m == nil || m.GuestRAMKiB != 128<<10 || m.OverheadKiB <= 0 {
				t.Errorf("memory %+v (%s)", s.Memory, s.MemoryError)
			}
			for _, want := range []string{"smolvmm\n", "first-output", "VMM overhead"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			f, err := os.Open(svg)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dec := xml.NewDecoder(f)
			for {
				if _, err := dec.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("SVG is not XML: %v", err)
				}
			}
		})
	}
}

// readySpinKernel is spinKernel's guest, printing "S" on COM1, then "R" a
// little later (a snapshot taken at S restores to print R), then spinning:
// a service that is ready and never ends by itself.
func readySpinKernel(t *testing.T) string {
	t.Helper()
	kernel := spinKernel(t)
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	// At the entry (offset 32): mov $0x3f8,%dx; "S\n" with out %al,(%dx);
	// count %ecx down from 2^18 (dec, jnz); "R\n"; jmp .
	k = append(k[:32], 0x66, 0xBA, 0xF8, 0x03, 0xB0, 'S', 0xEE, 0xB0, '\n', 0xEE,
		0xB9, 0x00, 0x00, 0x04, 0x00, 0x49, 0x75, 0xFD,
		0xB0, 'R', 0xEE, 0xB0, '\n', 0xEE, 0xEB, 0xFE)
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}

// TestBenchStopsAtReady: a guest that is ready and never ends by itself (a
// system at its login prompt) is stopped by the bench once ready, boot
// after boot, memory sample included, as is its restore: the boots end at
// their ready event, with the phase stopped and no guest exit.
func TestBenchStopsAtReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := readySpinKernel(t)
	dir := t.TempDir()
	snap := filepath.Join(dir, "spin.snap")
	cmd := exec.Command(smolvmmBin(t), "run", "-k", kernel, "--net", "none", "--ready", "^S", "--snapshot", snap, "--snapshot-exit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snapshot: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"boot", []string{"--ready", "^R", "-k", kernel}},
		{"restore", []string{"--ready", "^R", "--restore", snap}},
		// Ready at its first instruction: it needs no --ready (it once
		// timed out without one, the bench waiting for an end).
		{"restore without --ready", []string{"--restore", snap}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"-n", "2", "--warmup", "0", "--net", "none", "--timeout", "20s", "--json", js}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			s := readBenchJSON(t, js).Systems[0]
			if len(s.Boots) != 2 || s.Memory == nil {
				t.Fatalf("boots %+v, memory %+v (%s)", s.Boots, s.Memory, s.MemoryError)
			}
			// Read once the guest ran: a restore's was once read at its
			// first instruction, its guest RAM untouched.
			if s.Memory.GuestRSSKiB == 0 {
				t.Errorf("memory %+v: no guest RAM resident", s.Memory)
			}
			for _, b := range s.Boots {
				_, guestExit := b.Phases[bench.PhaseGuestExit]
				_, closed := b.Phases[bench.PhaseClosed]
				if !b.Stopped() || guestExit || !closed || b.Status != 130 {
					t.Errorf("boot %v, status %d: want stopped, closed, no guest exit, status 130", b.Phases, b.Status)
				}
			}
			if !strings.Contains(stdout, "stopped") {
				t.Errorf("stdout lacks the stopped phase:\n%s", stdout)
			}
		})
	}
}

func TestBenchWithoutQEMU(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	js := filepath.Join(t.TempDir(), "r.json")
	// An empty PATH hides qemu-system-i386; smolvmm re-runs itself by path.
	status, stdout, stderr := benchRun(t, []string{"PATH=" + t.TempDir()},
		"-n", "1", "--warmup", "0", "--compare", "qemu", "--json", js)
	if status != 0 {
		t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
	}
	if !strings.Contains(stderr, "--compare qemu: qemu-system-i386 not found: install it (Debian: apt-get install qemu-system-x86)") ||
		!strings.Contains(stderr, "showing smolvmm only") {
		t.Errorf("stderr does not explain the missing qemu:\n%s", stderr)
	}
	res := readBenchJSON(t, js)
	if len(res.Systems) != 1 || res.Systems[0].Name != "smolvmm" || len(res.Notes) != 1 {
		t.Errorf("systems %+v notes %q; want smolvmm only and a note", res.Systems, res.Notes)
	}
	if !strings.Contains(stdout, "smolvmm\n") || strings.Contains(stdout, "qemu") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

func TestBenchErrors(t *testing.T) {
	dir := testsock.Dir(t)
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"bad compare", []string{"--compare", "vmware"}, 2, `--compare "vmware": only qemu is supported`},
		// The flag parser takes "-n" as --compare's value, then "3" as an
		// argument: the refusal names --compare's values, not the "3".
		{"compare swallows a flag", []string{"--restore", filepath.Join(dir, "s.snap"), "--compare", "-n", "3"}, 2,
			`--compare "-n": --compare takes qemu or boot (with --restore), not a flag`},
		// Refused as run --restore refuses them; they were dropped
		// without a word. With --compare boot they serve its boots.
		{"restore with -k", []string{"--restore", filepath.Join(dir, "s.snap"), "-k", "kern"}, 2,
			"smolvmm bench: --restore " + filepath.Join(dir, "s.snap") + " and -k: the snapshot continues a kernel already booted, with its command line; drop -k, or give --compare boot"},
		{"restore with -a", []string{"--restore", filepath.Join(dir, "s.snap"), "-a", "-s"}, 2, "and -a: the snapshot continues a kernel already booted"},
		{"restore with --boot", []string{"--restore", filepath.Join(dir, "s.snap"), "--boot", "netbsd"}, 2, "and --boot: the snapshot continues a kernel already booted"},
		{"restore with -a, compare boot", []string{"--restore", filepath.Join(dir, "s.snap"), "-a", "-s", "--compare", "boot"}, 1, "s.snap"},
		{"bad ready", []string{"--ready", "("}, 2, "--ready \"(\": not a regular expression: missing closing )"},
		{"bad port", []string{"--ready-port", "70000"}, 2, "give a TCP port between 1 and 65535"},
		// At the edges: the largest port and RAM pass the range checks
		// (to the forward's, and the KVM device's), one more does not.
		{"port just too high", []string{"--ready-port", "65536"}, 2, "--ready-port 65536: give a TCP port between 1 and 65535"},
		{"highest port", []string{"--ready-port", "65535"}, 2, "--ready-port 65535: no -p forwards TCP port 65535"},
		{"RAM just too much", []string{"-m", strconv.Itoa(vmm.MaxMemoryMiB + 1), "--kvm-device", filepath.Join(dir, "kvm")}, 2, "-m " + strconv.Itoa(vmm.MaxMemoryMiB+1) + ": too much RAM"},
		{"most RAM", []string{"-n", "1", "--warmup", "0", "-m", strconv.Itoa(vmm.MaxMemoryMiB), "--kvm-device", filepath.Join(dir, "kvm")}, 1, "KVM is not available"},
		// One check per flag, quoting the value (both had one message
		// naming neither value).
		{"no boots", []string{"-n", "0", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "smolvmm bench: -n 0: give at least 1 boot"},
		{"negative boots", []string{"-n", "-3", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "smolvmm bench: -n -3: give at least 1 boot"},
		{"negative warmup", []string{"-n", "1", "--warmup", "-1", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "smolvmm bench: --warmup -1: give 0 or more warm-up boots"},
		// The README's row has them as alternatives; both were taken and
		// the console line silently won.
		{"ready and ready-port", []string{"-n", "1", "--warmup", "0", "--net", "user", "-p", "8080:80", "--ready", "^R", "--ready-port", "8080", "--kvm-device", filepath.Join(dir, "kvm")}, 2,
			`smolvmm bench: --ready "^R" and --ready-port 8080: give one of them`},
		{"kernel missing", []string{"-k", filepath.Join(dir, "nope")}, 1, "no such file"},
		// Said once, as run says it, before any boot (TestBenchNoKVM).
		{"no KVM", []string{"-n", "1", "--warmup", "0", "--kvm-device", filepath.Join(dir, "kvm")}, 1, "smolvmm bench: open " + filepath.Join(dir, "kvm") + ": KVM is not available: no such file or directory (no KVM device at this path: check it)"},
		{"stray argument", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"forward without user network", []string{"--net", "none", "-p", "8080:80"}, 2, "port forwards need the user network"},
		{"bad disk spec", []string{"-d", "img,bogus"}, 2, `unknown option "bogus"`},
		// A missing output directory is a missing file (status 1), as for
		// kstrip -o, mkimg -i and net --socket; it was 2 here.
		{"no JSON directory", []string{"--json", filepath.Join(dir, "nope", "r.json")}, 1, "--json " + filepath.Join(dir, "nope", "r.json") + ": no directory " + filepath.Join(dir, "nope")},
		{"no SVG directory", []string{"--svg", filepath.Join(dir, "nope", "r.svg")}, 1, "--svg " + filepath.Join(dir, "nope", "r.svg") + ": no directory " + filepath.Join(dir, "nope")},
		// Refused before any boot: -5s ran the boots and then failed each
		// as timed out; 0 became the library's one minute.
		{"timeout 0", []string{"--timeout", "0", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "--timeout 0s: give a time to wait for each boot, more than 0 (default 2m0s)"},
		{"negative timeout", []string{"--timeout", "-5s", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "--timeout -5s: give a time to wait for each boot, more than 0"},
		{"parallel 0", []string{"--parallel", "0"}, 2, "--parallel 0: give at least 1 VM"},
		{"parallel and compare", []string{"--parallel", "2", "--compare", "qemu"}, 2, "--compare does not go with --parallel"},
		{"parallel and a forward", []string{"--parallel", "2", "-p", "8080:80"}, 2, "-p does not go with --parallel: the VMs cannot all forward one host port"},
		{"parallel and boots", []string{"--parallel", "2", "-n", "3"}, 2, "-n does not go with --parallel"},
		// It was taken and nothing shown.
		{"parallel and console", []string{"--parallel", "2", "--console"}, 2, "--console does not go with --parallel: the VMs' consoles are read for their ready lines, not shown"},
		{"parallel without KVM", []string{"--parallel", "2", "--kvm-device", filepath.Join(dir, "kvm")}, 1, "smolvmm bench: open " + filepath.Join(dir, "kvm") + ": KVM is not available"},
		// Refused before any VM starts (they would find no KVM device
		// and say so).
		// --mac is the first VM's (it was refused with --parallel): it
		// passes the flag checks to the KVM device's; one whose range
		// would pass its last two bytes is refused.
		{"parallel from a MAC", []string{"--parallel", "2", "--mac", "52:54:00:00:ff:fe", "--kvm-device", filepath.Join(dir, "kvm")}, 1, "KVM is not available"},
		{"parallel past a MAC's last two bytes", []string{"--parallel", "3", "--mac", "52:54:00:00:ff:fe", "--kvm-device", filepath.Join(dir, "kvm")}, 2,
			"--mac 52:54:00:00:ff:fe with --parallel 3: VM i gets --mac + i, and 3 VMs from 52:54:00:00:ff:fe would pass 52:54:00:00:ff:ff; give a lower --mac"},
		{"parallel and a tap", []string{"--parallel", "2", "--net", "tap:tap0", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "--net tap:tap0 does not go with --parallel 2: a tap device takes one VM"},
		{"parallel and too much RAM", []string{"--parallel", "2", "-m", "30000", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "-m 30000: too much RAM (use -m between"},
		{"parallel without its network", []string{"--parallel", "2", "--net", "user:" + filepath.Join(dir, "none.sock"), "--kvm-device", filepath.Join(dir, "kvm")}, 1,
			"--net user:" + filepath.Join(dir, "none.sock") + ": shared network is not running: nothing answers on"},
		{"too little RAM", []string{"-n", "1", "--warmup", "0", "-m", "0", "--kvm-device", filepath.Join(dir, "kvm")}, 2, "-m 0: too little RAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := benchRun(t, nil, tt.args...)
			if status != tt.status || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("status %d stderr %q; want status %d and %q", status, stderr, tt.status, tt.stderr)
			}
			if (tt.status == 2 || strings.Contains(tt.name, "without its network") || strings.Contains(tt.name, "directory")) && (stdout != "" || strings.Contains(stderr, "starting")) {
				t.Errorf("a command-line mistake started something: stdout %q, stderr %q", stdout, stderr)
			}
			// No rate made of nothing.
			if strings.Contains(tt.stderr, "none of the") && (!strings.Contains(stdout, "none started") || strings.Contains(stdout, "all ready after")) {
				t.Errorf("stdout when no VM started:\n%s", stdout)
			}
			if strings.Contains(stderr, "smolvmm: smolvmm") {
				t.Errorf("command named twice: %q", stderr)
			}
		})
	}
}

// emptySnapshot writes dir/s.snap, a valid snapshot of 4 MiB of memory
// and no state, for checks made before anything is restored.
func emptySnapshot(t *testing.T, dir string) string {
	t.Helper()
	snap := filepath.Join(dir, "s.snap")
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := snapshot.Write(f, snapshot.NIC{}, []byte(`{}`), make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestBenchNoKVM: a KVM device bench may not use was found by each boot,
// after the report's header, said in the results as a nested error, and
// the results were written; it is now said once, in run's words, before
// any boot or output, whatever the mode.
func TestBenchNoKVM(t *testing.T) {
	dir := t.TempDir()
	snap := emptySnapshot(t, dir)
	notKVM := filepath.Join(dir, "not-kvm")
	if err := os.WriteFile(notKVM, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "kvm")
	tests := []struct {
		name, device string
		args         []string
		want         string
	}{
		{"boots", missing, []string{"-n", "1", "--warmup", "0"}, "smolvmm bench: open " + missing + ": KVM is not available: no such file or directory (no KVM device at this path: check it)"},
		{"a device that is no KVM", notKVM, []string{"-n", "1", "--warmup", "0"}, "smolvmm bench: KVM_GET_API_VERSION: " + notKVM + " is not a KVM device: "},
		{"parallel", missing, []string{"--parallel", "2"}, "smolvmm bench: open " + missing + ": KVM is not available"},
		{"compare qemu", missing, []string{"-n", "1", "--warmup", "0", "--compare", "qemu"}, "smolvmm bench: open " + missing + ": KVM is not available"},
		{"restore", missing, []string{"-n", "1", "--warmup", "0", "--restore", snap}, "smolvmm bench: open " + missing + ": KVM is not available"},
		{"restore compare boot", missing, []string{"-n", "1", "--warmup", "0", "--restore", snap, "--compare", "boot"}, "smolvmm bench: open " + missing + ": KVM is not available"},
		{"restore parallel", missing, []string{"--parallel", "2", "--restore", snap}, "smolvmm bench: open " + missing + ": KVM is not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, svg := filepath.Join(t.TempDir(), "r.json"), filepath.Join(t.TempDir(), "r.svg")
			args := append([]string{"--kvm-device", tt.device, "--net", "none", "--json", js, "--svg", svg}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != 1 || stdout != "" || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d stdout %q stderr %q; want status 1, no results and one line %q...", status, stdout, stderr, tt.want)
			}
			for _, p := range []string{js, svg} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// silentKernel is spinKernel's guest ending at once through the debug-exit
// port (status 1, a good end), having printed nothing: a boot that fails,
// giving no console output, from a kernel that loads.
func silentKernel(t *testing.T) string {
	t.Helper()
	kernel := spinKernel(t)
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	// At the entry (offset 32): mov $0x501,%dx; mov $0,%al; out %al,(%dx); jmp .
	k = append(k[:32], 0x66, 0xBA, 0x01, 0x05, 0xB0, 0x00, 0xEE, 0xEB, 0xFE)
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}

// TestBenchNoneStarted: boots that all fail (a guest that prints nothing)
// give results that say so, and no rate made of nothing.
func TestBenchNoneStarted(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := silentKernel(t)
	oldSVG := filepath.Join(t.TempDir(), "p.svg")
	if err := os.WriteFile(oldSVG, []byte("<svg>old</svg>"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args        []string
		stderr      string
		stdout, not string
		svg         string // an old chart there must be replaced by one of the failures
	}{
		{[]string{"-n", "1", "--warmup", "0"}, "smolvmm's boots failed; the results above say why", "no console output", "", ""},
		// No chart of no boot, and the failure stays the last word.
		{[]string{"--svg", filepath.Join(t.TempDir(), "f.svg"), "-n", "1", "--warmup", "0"}, "not written: no system has a boot to draw\nsmolvmm bench: smolvmm's boots failed; the results above say why", "no console output", "", ""},
		{[]string{"--parallel", "2"}, "none of the 2 VMs started: the guest ended (status 1) before its first console byte", "none started", "all ready after", ""},
		// The old chart stayed, contradicting the JSON.
		{[]string{"--parallel", "2", "--svg", oldSVG}, "none of the 2 VMs started", "none started", "all ready after", oldSVG},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			status, stdout, stderr := benchRun(t, nil, append([]string{"-k", kernel, "--net", "none"}, tt.args...)...)
			if status != 1 || !strings.Contains(stderr, tt.stderr) || !strings.Contains(stdout, tt.stdout) || tt.not != "" && strings.Contains(stdout, tt.not) {
				t.Errorf("status %d stdout %q stderr %q; want status 1, %q on stdout and %q", status, stdout, stderr, tt.stdout, tt.stderr)
			}
			if tt.svg != "" {
				b, err := os.ReadFile(tt.svg)
				if err != nil || !strings.Contains(string(b), "2 VMs of "+kernel+" started at once: none started") || strings.Count(string(b), `fill="#e53935"`) != 2 {
					t.Errorf("--svg %s (%v): %s; want the chart of 2 failed VMs", tt.svg, err, b)
				}
			}
		})
	}
}

// TestBenchOutputChecks: outputs that cannot be replaced, an output given
// twice, an output that is an input, and a --ready-port nothing forwards
// are refused before any boot (no results on stdout; a boot would fail on
// the missing KVM device), and the files stay as they were.
func TestBenchOutputChecks(t *testing.T) {
	dir := t.TempDir()
	f := specialFiles(t)
	kernel, img, snap := filepath.Join(dir, "k.elf"), filepath.Join(dir, "root.img"), filepath.Join(dir, "s.snap")
	for _, p := range []string{kernel, img, snap} {
		if err := os.WriteFile(p, []byte("input"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kernelLink, kernelHard := filepath.Join(dir, "k-link"), filepath.Join(dir, "k-hard")
	if err := os.Symlink("k.elf", kernelLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(kernel, kernelHard); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
		keep   string // a special file that must still be what it was
	}{
		{"JSON on a directory", []string{"--json", f["dir"]}, 1, "is a directory, not a regular file", "dir"},
		{"JSON on a character device", []string{"--json", f["chr"]}, 1, "is a character device", "chr"},
		{"JSON on /dev/full", []string{"--json", "/dev/full"}, 1, "/dev/full is a character device", ""},
		{"SVG on a FIFO", []string{"--svg", f["fifo"]}, 1, "is a FIFO", "fifo"},
		{"SVG on a socket", []string{"--svg", f["socket"]}, 1, "is a socket", "socket"},
		{"SVG through a symlink to a FIFO", []string{"--svg", f["link-to-fifo"]}, 1, "(through symlink " + f["link-to-fifo"] + ") is a FIFO", "link-to-fifo"},
		{"one file twice", []string{"--json", out, "--svg", out}, 2, "--svg " + out + ": --json already writes this file", ""},
		{"one file twice, through a symlink", []string{"--json", f["regular"], "--svg", f["link"]}, 2, "--json already writes this file", ""},
		{"JSON over the kernel", []string{"-k", kernel, "--json", kernel}, 2, "this is the -k file " + kernel, ""},
		{"SVG over the kernel through a symlink", []string{"-k", kernel, "--svg", kernelLink}, 2, "this is the -k file", ""},
		{"JSON over the kernel's hard link", []string{"-k", kernelHard, "--json", kernel}, 2, "this is the -k file", ""},
		{"JSON over a disk", []string{"-d", img + ",ro", "--json", img}, 2, "this is the -d file " + img, ""},
		{"SVG over the snapshot", []string{"--restore", snap, "--svg", snap}, 2, "this is the --restore file " + snap, ""},
		{"ready port not forwarded", []string{"--ready-port", "8080"}, 2, "no -p forwards TCP port 8080", ""},
		{"ready port without a NIC", []string{"--ready-port", "8080", "--net", "none"}, 2, "--ready-port 8080: with --net none", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.keep != "" && f[tt.keep] == "" {
				t.Skip("mknod needs root")
			}
			var before os.FileInfo
			if tt.keep != "" {
				var err error
				if before, err = os.Lstat(f[tt.keep]); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"-n", "1", "--warmup", "0", "--kvm-device", filepath.Join(dir, "nokvm")}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != tt.status || !strings.Contains(stderr, tt.stderr) || stdout != "" {
				t.Errorf("status %d, stdout %q, stderr %q; want status %d, no results, and %q", status, stdout, stderr, tt.status, tt.stderr)
			}
			if before != nil {
				sameNode(t, f[tt.keep], before)
			}
			for _, p := range []string{kernel, img, snap} {
				if b, err := os.ReadFile(p); err != nil || string(b) != "input" {
					t.Errorf("%s changed: %q, %v", p, b, err)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
}

func TestBenchParallel(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, net := range []string{"user", "none"} {
		t.Run(net, func(t *testing.T) {
			dir := t.TempDir()
			js, svg := filepath.Join(dir, "p.json"), filepath.Join(dir, "p.svg")
			status, stdout, stderr := benchRun(t, nil, "--parallel", "3", "--net", net, "--json", js, "--svg", svg)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			res := readParallelJSON(t, js)
			if res.N != 3 || res.Started != 3 || res.Failed != 0 || len(res.VMs) != 3 || res.Config.Kernel != "demo" {
				t.Fatalf("n %d started %d failed %d kernel %q: %+v", res.N, res.Started, res.Failed, res.Config.Kernel, res.VMs)
			}
			if !slices.Contains(res.Command, "--net") || !slices.Contains(res.Command, net) {
				t.Errorf("child command %q lacks --net %s", res.Command, net)
			}
			if !(res.AllReadyMS > 0 && res.StartsPerSec > 0 && res.StartsPerSecPerCore > 0 && res.StartLatency.N == 3) {
				t.Errorf("all ready %.3f ms, %.1f starts/s, %.1f per core, latency %+v", res.AllReadyMS, res.StartsPerSec, res.StartsPerSecPerCore, res.StartLatency)
			}
			for _, v := range res.VMs {
				m := v.Memory
				if m == nil {
					t.Fatalf("vm %d: no memory: %s", v.Index, v.MemoryError)
				}
				// Three VMs and the bench map the same executable: its
				// pages count a quarter in each one's PSS.
				if m.RSSKiB <= 0 || m.PSSKiB <= 0 || m.PSSKiB >= m.RSSKiB || m.PSSFileKiB <= 0 || m.OverheadPSSKiB <= 0 || m.GuestRSSKiB > m.RSSKiB {
					t.Errorf("vm %d: memory %+v", v.Index, *m)
				}
				if v.FirstOutputMS != v.ReadyMS || v.ReadyMS <= v.StartMS {
					t.Errorf("vm %d: start %.3f, first output %.3f, ready %.3f ms", v.Index, v.StartMS, v.FirstOutputMS, v.ReadyMS)
				}
			}
			if m := res.Memory; m == nil || m.N != 3 || m.PSSKiBMean > m.RSSKiBMean {
				t.Errorf("memory summary %+v", res.Memory)
			}
			if !strings.Contains(stdout, "started 3, failed 0") || !strings.Contains(stdout, "PSS") {
				t.Errorf("stdout:\n%s", stdout)
			}
			b, err := os.ReadFile(svg)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), `<g class="vm"`); n != 3 {
				t.Errorf("SVG has %d VM groups, want 3", n)
			}
			if err := xml.Unmarshal(b, new(struct{})); err != nil {
				t.Errorf("SVG is not XML: %v", err)
			}
		})
	}
}

// The hints for want of descriptors, tasks or memory follow the VMs'
// bench.Limit, whatever their errors say; the network's refusals follow
// its reason.
func TestParallelHints(t *testing.T) {
	const (
		fds   = "some VMs found no file descriptor: raise the limit (ulimit -n) or give a smaller --parallel"
		procs = "some VMs could not be created as processes: give a smaller --parallel, or raise the task limit that was reached (ulimit -u, sysctl kernel.threads-max or kernel.pid_max, the cgroup's pids.max)"
		mem   = "some VMs found no memory: give them less guest RAM (-m) or a smaller --parallel"
	)
	type vm struct {
		err   string
		limit bench.Limit
	}
	tests := []struct {
		vms  []vm
		want []string
	}{
		{[]vm{{}}, nil},
		{[]vm{{"start: fork/exec x: bad file descriptor (out of file descriptors: RLIMIT_NOFILE is 64)", bench.LimitFileDescriptors},
			{"console pipe: too many open files (out of file descriptors: RLIMIT_NOFILE is 64)", bench.LimitFileDescriptors}}, []string{fds}},
		{[]vm{{"start: fork/exec /x: resource temporarily unavailable (no more processes: a task limit is reached: RLIMIT_NPROC, kernel.threads-max, kernel.pid_max or a cgroup's pids.max)", bench.LimitTasks}, {}},
			[]string{procs}},
		{[]vm{{"exit status 1 before its first console byte: smolvmm bench: guest memory: cannot allocate memory", bench.LimitMemory}, {}},
			[]string{mem}},
		// Reworded: the limit counts, not the text.
		{[]vm{{"x", bench.LimitFileDescriptors}}, []string{fds}},
		{[]vm{{"x", bench.LimitTasks}}, []string{procs}},
		{[]vm{{"x", bench.LimitMemory}}, []string{mem}},
		{[]vm{{"x", bench.LimitMemory}, {"y", bench.LimitTasks}, {"z", bench.LimitFileDescriptors}}, []string{fds, procs, mem}},
		{[]vm{{"out of file descriptors; no more processes; cannot allocate memory", ""}}, nil},
		{[]vm{{"exit status 1 before its first console byte: smolvmm bench: shared network /s refused the VM: duplicate MAC: a VM with MAC 52:54:00:5b:00:00 is connected already (give this VM another --mac)", ""}},
			[]string{"some VMs' MACs were on the network already (another bench's VMs?): give each bench that runs at once its own --mac, the first of its VMs' (VM i gets MAC + i)"}},
	}
	for _, tt := range tests {
		res := &bench.ParallelResults{}
		for i, v := range tt.vms {
			res.VMs = append(res.VMs, bench.VM{Index: i, Error: v.err, Limit: v.limit})
		}
		if got := parallelHints(res); !slices.Equal(got, tt.want) {
			t.Errorf("VMs %q: hints %q, want %q", tt.vms, got, tt.want)
		}
	}
}

// TestBenchInterrupted: SIGINT or SIGTERM stops bench as it stops run and
// fetch: status 130, its VM killed and waited for, no results written and
// no temporary file left.
func TestBenchInterrupted(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := readySpinKernel(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp, out := t.TempDir(), t.TempDir()
			js := filepath.Join(out, "r.json")
			// Never ready: the boot would run until its timeout. --console
			// says when the guest runs; --compare qemu adds a temporary
			// directory of its own.
			cmd := exec.Command(smolvmmBin(t), "bench", "-k", kernel, "--net", "none", "-n", "2", "--warmup", "0",
				"--ready", "^never", "--timeout", "10m", "--console", "--compare", "qemu", "--json", js)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			errText := readUntilRan(t, stderr)
			vms := childPIDs(t, cmd.Process.Pid)
			if len(vms) == 0 {
				t.Fatal("no VM process under bench")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stderr)
			errText.Write(rest)
			err = cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || !strings.Contains(errText.String(), "smolvmm bench: interrupted") {
				t.Errorf("ended with %v, want status 130 and that it was interrupted; stderr:\n%s", err, errText.String())
			}
			for _, pid := range vms {
				// Waited for by bench: gone, not even a zombie.
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
					t.Errorf("VM process %d is still there", pid)
				}
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left in TMPDIR: %v", ents)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("results written after the interrupt: %v", ents)
			}
			if stdout.Len() != 0 {
				t.Errorf("results printed after the interrupt:\n%s", stdout.String())
			}
		})
	}
}

// childPIDs lists the child processes of pid.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// TestBenchChecksInputFiles: a -k or -d file that a VM could not use is
// refused before any VM starts, in the words run and demo use for it (the
// kernel's with the hint to check -k), and with their status, 1 (a file's
// problem): they were found by each boot, which all failed, or said
// without the hint. The VMs would find no KVM device, were they started.
func TestBenchChecksInputFiles(t *testing.T) {
	dir := t.TempDir()
	kvm := filepath.Join(dir, "kvm")
	missing, empty, img := filepath.Join(dir, "nope"), filepath.Join(dir, "empty"), filepath.Join(dir, "disk.img")
	for _, f := range []struct {
		path string
		size int64
	}{{empty, 0}, {img, 1 << 20}} {
		if err := os.WriteFile(f.path, make([]byte, f.size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want string
		// run, with the same flags, says the same (its kernel is read
		// before the KVM device is opened).
		asRun bool
	}{
		{"kernel a device", []string{"-k", "/dev/null"}, "read kernel: /dev/null is a character device: not a regular file (check the path given with -k)", true},
		{"kernel missing", []string{"-k", missing}, "read kernel: open " + missing + ": no such file or directory (check the path given with -k)", true},
		{"kernel empty", []string{"-k", empty}, "read kernel: " + empty + ": the file is empty (check the path given with -k)", true},
		{"kernel a directory", []string{"-k", dir}, "read kernel: " + dir + " is a directory: not a regular file (check the path given with -k)", true},
		{"disk missing", []string{"-d", missing}, "-d " + missing + ": no such file or directory (check the path given with -d)", false},
		{"disk a device", []string{"-d", "/dev/null"}, "ld0: disk image /dev/null: not a regular file (it is a character device) (give a raw image file)", false},
		{"second disk a directory", []string{"-d", img + ",ro", "-d", dir}, "ld1: disk image " + dir + ": not a regular file (it is a directory) (give a raw image file)", false},
		{"parallel, disk missing", []string{"--parallel", "2", "-d", missing + ",ro"}, "-d " + missing + ": no such file or directory (check the path given with -d)", false},
		{"parallel, kernel a device", []string{"--parallel", "2", "-k", "/dev/zero"}, "read kernel: /dev/zero is a character device: not a regular file (check the path given with -k)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--kvm-device", kvm}, tt.args...)
			if !slices.Contains(args, "--parallel") {
				args = append(args, "-n", "1", "--warmup", "0")
			}
			status, stdout, stderr := benchRun(t, nil, args...)
			if want := "smolvmm bench: " + tt.want + "\n"; status != 1 || stderr != want || stdout != "" {
				t.Errorf("status %d stdout %q stderr %q; want status 1 and %q", status, stdout, stderr, want)
			}
			if !tt.asRun {
				return
			}
			runArgs := []string{"run", "--kvm-device", kvm, "--net", "none"}
			for i := 0; i < len(tt.args); i += 2 {
				if tt.args[i] != "--parallel" {
					runArgs = append(runArgs, tt.args[i], tt.args[i+1])
				}
			}
			out, err := exec.Command(smolvmmBin(t), runArgs...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != "smolvmm run: "+tt.want+"\n" {
				t.Errorf("run says (%v) %q, bench %q", err, out, tt.want)
			}
		})
	}
}

// TestBenchParallelBeyondLimits: --parallel N that the host's limits
// cannot hold (here the descriptors: 40, hard limit too) is refused before
// any VM starts, as a command-line mistake naming the limit, its value and
// what to change; it started every VM it could, until one failed the
// runtime (N = 100000: newosproc).
func TestBenchParallelBeyondLimits(t *testing.T) {
	kvm := filepath.Join(t.TempDir(), "kvm")
	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 40 && exec "$0" "$@"`, smolvmmBin(t), "bench", "--parallel", "100", "--net", "none", "--kvm-device", kvm)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	// The counts are the bench package's (startFDs, parallelFDs), checked
	// there; here the message's form, and below that its room is real.
	want := regexp.MustCompile(`^smolvmm bench: --parallel 100: RLIMIT_NOFILE is 40, with \d+ descriptors the bench has open and \d+ more held while a VM starts, and each VM takes \d+: room for (\d) VMs at most \(give a smaller --parallel, or raise the limit: ulimit -n\)\n$`)
	m := want.FindStringSubmatch(stderr.String())
	if !ok || ee.ExitCode() != 2 || m == nil || stdout.Len() != 0 {
		t.Fatalf("%v; stdout %q stderr %q; want status 2 and %s", err, stdout.String(), stderr.String(), want)
	}
	if !kvmUsable() {
		return
	}
	// As many as it says there is room for all start (the last of them
	// failed "too many open files" when a start's own were not counted).
	cmd = exec.Command("/bin/sh", "-c", `ulimit -n 40 && exec "$0" "$@"`, smolvmmBin(t), "bench", "--parallel", m[1], "--net", "none")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "started "+m[1]+", failed 0") {
		t.Errorf("ulimit -n 40, --parallel %s: %v\n%s", m[1], err, out)
	}
}

// TestBenchParallelUnderProcessLimit: as a user under ulimit -u 40,
// --parallel 20 is refused before any VM starts, as RLIMIT_NPROC holds
// each VM's threads (some 9) and the bench's: it was let through as one
// task a VM, and the bench crashed (fatal error: newosproc, no report).
// What fits runs and is reported.
func TestBenchParallelUnderProcessLimit(t *testing.T) {
	if os.Getuid() != 0 || !kvmUsable() {
		t.Skip("needs root (to run the bench as another user, under whom RLIMIT_NPROC is enforced) and /dev/kvm")
	}
	// The binary and a KVM device another user can open, in a directory
	// it can read, and a TMPDIR it can write.
	dir, err := os.MkdirTemp("", "bench-nproc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(smolvmmBin(t))
	if err != nil {
		t.Fatal(err)
	}
	exe, kvm := filepath.Join(dir, "smolvmm"), filepath.Join(dir, "kvm")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/kvm", &st); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(kvm, syscall.S_IFCHR|0o666, int(st.Rdev)); err != nil {
		t.Skip(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o755, kvm: 0o666, tmp: 0o777} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	const uid = 61236 // no one's: the limit counts the bench's tasks only
	tests := []struct {
		name     string
		limit, n int
		status   int
		stdout   *regexp.Regexp
		stderr   *regexp.Regexp
	}{
		{"refused", 40, 20, 2, regexp.MustCompile(`^$`),
			regexp.MustCompile(`^smolvmm bench: --parallel 20: RLIMIT_NPROC is 40, with \d+ processes and threads of this user and \d+ more kept for the bench's own threads, and each VM takes \d+: room for [0-3] VMs at most \(give a smaller --parallel, or raise the limit: ulimit -u, or LimitNPROC= in a systemd unit\)\n$`)},
		{"fits", 80, 2, 0, regexp.MustCompile(`(?m)^started 2, failed 0; all ready after `),
			regexp.MustCompile(`^smolvmm bench: starting 2 VMs at once\n$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/bash", "-c", `ulimit -u "$1" && shift && exec "$@"`, "bash", strconv.Itoa(tt.limit),
				exe, "bench", "--parallel", strconv.Itoa(tt.n), "--net", "none", "--kvm-device", kvm)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "GOMAXPROCS=2")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: 65534}}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !tt.stdout.MatchString(stdout.String()) || !tt.stderr.MatchString(stderr.String()) {
				t.Errorf("status %d, stdout %q, stderr (%d bytes) %.1500q; want %d, %s and %s", status, stdout.String(), stderr.Len(), stderr.String(), tt.status, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestHubVMsError: only a refusal as malformed is put down to a network
// older than the question; one out of descriptors said so too.
func TestHubVMsError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&netback.RefusedError{Socket: "s", Reason: netback.RefusedMalformed, Message: "bad hello"},
			"it does not answer the question (a smolvmm net older than this smolvmm?): shared network s refused the VM: malformed hello: bad hello"},
		{&netback.RefusedError{Socket: "s", Reason: netback.RefusedNoDescriptors, Message: "RLIMIT_NOFILE 30"},
			"shared network s refused the VM: network out of file descriptors: RLIMIT_NOFILE 30"},
		{netback.ErrNoHub, netback.ErrNoHub.Error()},
	}
	for _, tt := range tests {
		if got := hubVMsError(tt.err); got == nil || got.Error() != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("%v: %v, want %q", tt.err, got, tt.want)
		}
	}
	if hubVMsError(nil) != nil {
		t.Error("no error became one")
	}
}

// TestParallelLimitAdvice: each limit that refuses --parallel comes with
// what raises it, in run's words (limitRaise): bench's own copy of them
// said ulimit -u alone.
func TestParallelLimitAdvice(t *testing.T) {
	tests := []struct{ limit, raise string }{
		{"RLIMIT_NOFILE", "ulimit -n"},
		{"RLIMIT_NPROC", "ulimit -u, or LimitNPROC= in a systemd unit"},
		{"kernel.threads-max", "sysctl kernel.threads-max"},
		{"kernel.pid_max", "sysctl kernel.pid_max"},
		{"pids.max of cgroup /user.slice", "the cgroup's pids.max (systemd: TasksMax=)"},
	}
	for _, tt := range tests {
		le := &bench.LimitError{N: 9, Limit: tt.limit, Value: 10, Used: 2, PerVM: 1, Max: 8}
		err := parallelLimitError(9, fmt.Errorf("bench: %w", le))
		want := "--parallel 9: " + le.Why() + " (give a smaller --parallel, or raise the limit: " + tt.raise + ")"
		if exitCode(err) != 2 || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%s: status %d, %q; want 2 and %q", tt.limit, exitCode(err), err, want)
		}
	}
}

// TestBenchQEMUNet: QEMU's boots get a network card on their own user
// network for --net user and user:NAME (which QEMU cannot join: it ran
// without a card, and nothing said so), none for tap and none, and a
// note says where QEMU's network differs from smolvmm's.
func TestBenchQEMUNet(t *testing.T) {
	for _, tt := range []struct {
		spec    string
		nic     bool
		note    string // "" for none
		noteHas string
	}{
		{"user", true, "", ""},
		{"user:lab", true, "x", "--net user:lab: QEMU used its own user network, not the shared one"},
		{"user:/run/n.sock", true, "x", "--net user:/run/n.sock: QEMU used its own user network"},
		{"tap:tap0", false, "x", "--net tap:tap0: QEMU runs without a network card"},
		{"none", false, "", ""},
	} {
		userNet, note := qemuNet(tt.spec)
		if userNet != tt.nic || (note != "") != (tt.note != "") || !strings.Contains(note, tt.noteHas) {
			t.Errorf("qemuNet(%q) = %v, %q; want %v and a note with %q", tt.spec, userNet, note, tt.nic, tt.noteHas)
		}
		args := strings.Join(bench.QEMUArgs(bench.QEMUSetup{Kernel: "k", MemoryMiB: 16, UserNet: userNet}), " ")
		if got := strings.Contains(args, "-netdev user,id=net0 -device virtio-net-pci"); got != tt.nic {
			t.Errorf("--net %s: QEMU's NIC on its user network %v, want %v: %s", tt.spec, got, tt.nic, args)
		}
	}
}

// TestBenchCrashedGuest: a guest that prints, then crashes (smolvmm's
// status 2) is a failed boot, with smolvmm's own words on it, in the text
// and the JSON, and bench fails as for any boots that failed (it printed
// a normal table and ended 0, the statuses 2 in the JSON unexplained).
func TestBenchCrashedGuest(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	js := filepath.Join(t.TempDir(), "r.json")
	status, stdout, stderr := benchRun(t, nil, "-k", guests.ForTest(t, "bad"), "-a", "bad triplefault-int3", "-n", "3", "--warmup", "0", "--net", "none", "--json", js)
	if status != 1 || !strings.Contains(stderr, "smolvmm's boots failed; the results above say why") {
		t.Errorf("status %d, stderr %q; want 1 and the boots' failure", status, stderr)
	}
	want := "the boot ended with a failure status: exit status 2: "
	if !strings.Contains(stdout, "error: smolvmm: "+want) {
		t.Errorf("stdout does not say the boot failed with status 2:\n%s", stdout)
	}
	res := readBenchJSON(t, js)
	if s := res.Systems[0]; !strings.Contains(s.Error, want) || len(s.Boots) != 0 {
		t.Errorf("JSON error %q with %d boots; want %q and none", s.Error, len(s.Boots), want)
	}
}

// TestBenchSharedNetworkMemory: a sequential bench on a shared network
// reports the network's memory with the VM's, as --parallel does (it once
// said the VMM's overhead alone, though the network held megabytes for
// the VM).
func TestBenchSharedNetworkMemory(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	socket := filepath.Join(testsock.Dir(t), "n.sock")
	d := startNetDaemon(t, socket) // net_test.go
	js := filepath.Join(t.TempDir(), "r.json")
	status, stdout, stderr := benchRun(t, nil, "-n", "1", "--warmup", "0", "--net", "user:"+socket, "--json", js)
	if status != 0 {
		t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
	}
	s := readBenchJSON(t, js).Systems[0]
	nm := s.NetworkMemory
	if nm == nil || nm.PID != d.cmd.Process.Pid || nm.RSSKiB <= 0 || nm.PSSKiB <= 0 {
		t.Errorf("network memory %+v (%s); want the daemon's (pid %d)", nm, s.NetworkMemoryError, d.cmd.Process.Pid)
	}
	if want := fmt.Sprintf("shared network user:%s (process %d): RSS ", socket, d.cmd.Process.Pid); !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
}

// readUntilRan reads a bench's stderr until its guest has printed "R" (it
// runs, under whatever filter it was given), failing t if the stream ends
// first or, for a pipe, if two minutes pass; it returns what it read.
func readUntilRan(t *testing.T, stderr io.Reader) *bytes.Buffer {
	t.Helper()
	if p, ok := stderr.(interface{ SetReadDeadline(time.Time) error }); ok {
		if err := p.SetReadDeadline(time.Now().Add(2 * time.Minute)); err == nil {
			defer p.SetReadDeadline(time.Time{})
		}
	}
	var errText bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(errText.String(), "R\n") {
		n, err := stderr.Read(buf)
		errText.Write(buf[:n])
		if err != nil {
			t.Fatalf("the guest never ran: %v\n%s", err, errText.String())
		}
	}
	return &errText
}
