package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
)

// TestCLIRestoreReady: run --restore of a snapshot taken at the ready
// point reports ready at its first instruction without a readiness flag;
// with --ready it waits for that pattern on what the restored guest
// prints, and reports no ready when the guest never prints it (the
// counter guest runs to its end, so this is deterministic).
func TestCLIRestoreReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "counter.snap")
	if out, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=120 at=100", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, output %q, stderr:\n%s", status, out, stderr)
	}
	tests := []struct {
		name  string
		args  []string
		ready bool
		// after: the phase ready comes right after in --timings.
		after string
	}{
		{"no ready flag", nil, true, "first-run"},
		{"a pattern the restored guest prints", []string{"--ready", "^count 110$"}, true, "first-output"},
		{"a pattern never printed", []string{"--ready", "never-printed"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--restore", snap, "--net", "none", "--timings"}, tt.args...)
			_, stderr, status := runCLI(t, args...)
			if status != 1 {
				t.Fatalf("status %d, want 1 (debug-exit 0)\n%s", status, stderr)
			}
			phases := timingPhases(stderr)
			i := strings.Index(" "+strings.Join(phases, " ")+" ", " ready ")
			if (i >= 0) != tt.ready {
				t.Fatalf("ready in --timings %v, want %v:\n%s", i >= 0, tt.ready, stderr)
			}
			if tt.ready && !strings.Contains(" "+strings.Join(phases, " ")+" ", " "+tt.after+" ready ") {
				t.Errorf("ready not right after %s:\n%s", tt.after, stderr)
			}
		})
	}
}

// timingPhases returns the phase names of --timings' lines, in order.
func timingPhases(stderr string) []string {
	var phases []string
	for _, l := range strings.Split(stderr, "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "  ") && len(f) == 2 {
			phases = append(phases, f[0])
		}
	}
	return phases
}

// TestCLIReadyPort: --ready-port on the user network and on a shared one
// is the guest accepting a connection on the forwarded port (the vnet
// guest's SYN-ACK), not the forward accepting on the host: a guest without
// a network driver (the demo guest) and one that refuses (RST) are never
// ready. Each guest ends by itself (vnet's listen=N: after its SYN-ACK, or
// after three refusals), so the negatives are deterministic.
func TestCLIReadyPort(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	vnet := guests.ForTest(t, "vnet")
	demo := filepath.Join(t.TempDir(), "demo.elf")
	if err := os.WriteFile(demo, guests.Demo, 0o644); err != nil {
		t.Fatal(err)
	}
	guestsTests := []struct {
		name  string
		args  []string
		ready bool
	}{
		{"a guest that accepts", []string{"-k", vnet, "-a", "listen=80 timeout=30"}, true},
		{"a guest that refuses", []string{"-k", vnet, "-a", "listen=81 timeout=30"}, false},
		{"a guest without network", []string{"-k", demo}, false},
	}
	for _, network := range []string{"user", "shared"} {
		for _, tt := range guestsTests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				netArg := "user"
				if network == "shared" {
					// A hub of its own: the guest answers as 10.0.2.15,
					// the first address a new hub leases.
					socket := filepath.Join(testsock.Dir(t), "n.sock")
					startNetDaemon(t, socket)
					netArg = "user:" + socket
				}
				port := freeTCPPort(t)
				args := append([]string{"run", "-m", "16", "--net", netArg, "--mac", "52:54:00:aa:bb:15", "-p", port + ":80",
					"--ready-port", port, "--timings"}, tt.args...)
				out, stderr, status := runCLI(t, args...)
				if status != 1 {
					t.Fatalf("status %d, want 1 (debug-exit 0)\n%s\n%s", status, out, stderr)
				}
				if ready := slices.Contains(timingPhases(stderr), "ready"); ready != tt.ready {
					t.Errorf("ready %v, want %v\n%s\n%s", ready, tt.ready, out, stderr)
				}
			})
		}
	}
}

// TestBenchReadyPortNotReady: bench --ready-port counts the port by the
// VMM's judgement, so the demo guest, which has no network driver, is
// never ready behind its forward: the bench fails (it ends by itself, so
// this is deterministic). The guest that accepts is TestBenchDemo's.
func TestBenchReadyPortNotReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	port := freeTCPPort(t)
	status, stdout, stderr := benchRun(t, nil, "-n", "1", "--warmup", "0", "--ready-port", port, "-p", port+":80")
	// The results on stdout say why; stderr points there.
	if status == 0 || !strings.Contains(stdout, "the guest exited before the ready condition held") {
		t.Fatalf("status %d, want a failure for a guest never ready\n%s\n%s", status, stdout, stderr)
	}
}

func TestWithFlagValue(t *testing.T) {
	tests := []struct {
		args, want []string
	}{
		{[]string{"smolvmm", "bench", "boot", "--ready-fd", "4", "--jail"}, []string{"smolvmm", "bench", "boot", "--ready-fd", "5", "--jail"}},
		{[]string{"smolvmm", "--ready-fd=4"}, []string{"smolvmm", "--ready-fd=5"}},
		{[]string{"smolvmm", "--ready-fd"}, []string{"smolvmm", "--ready-fd"}},
		{[]string{"smolvmm", "--settled-fd", "4"}, []string{"smolvmm", "--settled-fd", "4"}},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.args)
		if got := withFlagValue(tt.args, "--ready-fd", "5"); !slices.Equal(got, tt.want) {
			t.Errorf("withFlagValue(%q) = %q, want %q", tt.args, got, tt.want)
		}
		if !slices.Equal(in, tt.args) {
			t.Errorf("withFlagValue changed its argument %q", in)
		}
	}
}

// TestCLIRestoreReadyPort: --ready-port given to run --restore is probed
// against the restored guest: ready once it accepts on the restore's
// forwarded port (not at its first instruction, as the snapshot's
// readiness would have it), never when it refuses there. The vnet guest
// ("clone listen=80") is snapshotted at its boot-timer write and, once
// restored, answers SYNs and ends.
func TestCLIRestoreReadyPort(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	snap := filepath.Join(t.TempDir(), "vnet.snap")
	if out, stderr, status := runCLI(t, "run", "-k", guests.ForTest(t, "vnet"), "-m", "16", "-a", "clone listen=80 timeout=30",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, output %q, stderr:\n%s", status, out, stderr)
	}
	tests := []struct {
		name      string
		guestPort string
		ready     bool
	}{
		{"the restored guest accepts", "80", true},
		{"the restored guest refuses", "81", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freeTCPPort(t)
			out, stderr, status := runCLI(t, "run", "--restore", snap, "-p", port+":"+tt.guestPort, "--ready-port", port, "--timings")
			if status != 1 {
				t.Fatalf("status %d, want 1 (debug-exit 0)\n%s\n%s", status, out, stderr)
			}
			phases := timingPhases(stderr)
			i := slices.Index(phases, "ready")
			if (i >= 0) != tt.ready {
				t.Fatalf("ready %v, want %v\n%s\n%s", i >= 0, tt.ready, out, stderr)
			}
			if tt.ready && phases[i-1] == "first-run" {
				t.Errorf("ready at the restore's first instruction, not when the guest accepted:\n%s", stderr)
			}
		})
	}
}

// TestReadyPortZero: an explicit --ready-port 0 is refused as -1 is (it
// was taken silently, as if not given), by every command that has the
// flag, before any work (up's mirror is one nothing answers on).
func TestReadyPortZero(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "k")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	kvm := filepath.Join(dir, "kvm")
	tests := []struct {
		name string
		args []string
	}{
		{"run", []string{"run", "-k", kernel, "--kvm-device", kvm, "--ready-port", "0"}},
		{"up", []string{"up", "--mirror", "http://127.0.0.1:1/", "--ready-port", "0", "rescue"}},
		{"bench", []string{"bench", "-n", "1", "--warmup", "0", "--kvm-device", kvm, "--ready-port", "0"}},
		{"bench with = ", []string{"bench", "-n", "1", "--warmup", "0", "--kvm-device", kvm, "--ready-port=0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(smolvmmBin(t), tt.args...)
			cmd.Dir = dir
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			want := "smolvmm " + tt.args[0] + ": --ready-port 0: give a TCP port between 1 and 65535\n"
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || stderr.String() != want || stdout.String() != "" {
				t.Errorf("%v: stdout %q stderr %q; want status 2 and %q", err, stdout.String(), stderr.String(), want)
			}
		})
	}
}
