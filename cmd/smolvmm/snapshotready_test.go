package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCLISnapshotAtReadyFailed: the snapshot at ready failing (a full file
// system, faked by the test hook) is warned of when it happens, with what
// to do, and without --snapshot-exit is a failed attempt as a Ctrl-A s's
// is: a later Ctrl-A s that writes one clears it, and the run keeps its
// status (130 for Ctrl-A x). Before, it was said only at the exit, as the
// run's error (status 1), even after a Ctrl-A s had written a snapshot.
// With --snapshot-exit it is the run's error, status 1, and says the file
// as a run without it does (it was Run's bare "snapshot: write
// snapshot at offset ...").
func TestCLISnapshotAtReadyFailed(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := readySpinKernel(t) // bench_test.go: ready at its line "S"
	const full = "no space left on device (free space on "
	tests := []struct {
		name   string
		exit   bool // --snapshot-exit
		key    bool // a Ctrl-A s after the failure
		status int
		want   []string // S is the snapshot's path, D its directory
		not    []string
	}{
		{"Ctrl-A s written after", false, true, 130,
			[]string{"smolvmm run: warning: snapshot at ready: --snapshot S: ", full + "D or give --snapshot another file)", "smolvmm: snapshot S: "},
			[]string{"no snapshot was taken", "smolvmm run: --snapshot"}},
		{"none written", false, false, 130,
			[]string{"smolvmm run: warning: snapshot at ready: --snapshot S: ", "smolvmm run: warning: --snapshot S: no snapshot was taken and the file is as it was: the snapshot attempt failed: "},
			[]string{"smolvmm run: --snapshot"}},
		{"--snapshot-exit", true, false, 1,
			[]string{"smolvmm run: --snapshot S: ", full + "D or give --snapshot another file)"},
			[]string{"warning", "smolvmm run: snapshot:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := keep(t, dir, "s.snap")
			args := []string{"run", "-k", kernel, "-m", "16", "--net", "none", "--ready", "S", "--snapshot", snap}
			if tt.exit {
				args = append(args, "--snapshot-exit")
			}
			cmd := exec.Command(smolvmmBin(t), args...)
			cmd.Env = append(os.Environ(), testHookEnv+"=snapshot-full")
			r := startCmdOnPTY(t, cmd)
			go io.Copy(io.Discard, r.ptm)
			deadline := time.After(60 * time.Second)
			waitFor := func(what string) {
				t.Helper()
				for !strings.Contains(r.stderr.String(), what) {
					select {
					case <-r.waited:
						t.Fatalf("smolvmm ended (%v) before saying %q; stderr:\n%s", r.err, what, r.stderr)
					case <-deadline:
						t.Fatalf("no %q within 60 s; stderr:\n%s", what, r.stderr)
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			if !tt.exit {
				// Said as it happens, while the guest runs on.
				waitFor("warning: snapshot at ready:")
				if tt.key {
					if _, err := r.ptm.Write([]byte{0x01, 's'}); err != nil {
						t.Fatal(err)
					}
					waitFor("smolvmm: snapshot " + snap + ": ")
				}
				if _, err := r.ptm.Write([]byte{0x01, 'x'}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-r.waited:
			case <-deadline:
				t.Fatalf("no exit within 60 s; stderr:\n%s", r.stderr)
			}
			status := 0
			var ee *exec.ExitError
			if errors.As(r.err, &ee) {
				status = ee.ExitCode()
			}
			stderr := r.stderr.String()
			if status != tt.status {
				t.Fatalf("status %d, want %d; stderr:\n%s", status, tt.status, stderr)
			}
			expand := strings.NewReplacer("S", snap, "D", dir)
			for _, w := range tt.want {
				if !strings.Contains(stderr, expand.Replace(w)) {
					t.Errorf("stderr lacks %q:\n%s", expand.Replace(w), stderr)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(stderr, expand.Replace(n)) {
					t.Errorf("stderr has %q:\n%s", expand.Replace(n), stderr)
				}
			}
			if !tt.key {
				checkKept(t, snap)
			}
		})
	}
}
