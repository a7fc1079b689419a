package main

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
)

// TestCLISnapshotNotTaken: a run with --snapshot whose guest never became
// ready ends with the guest's or the signal's own status and warns that no
// snapshot was taken, the file left as it was; with --snapshot-exit, whose
// point is the snapshot, a guest that ended by itself without one is a
// failure (status 1), while a stop by signal keeps its 130.
func TestCLISnapshotNotTaken(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bad := guests.ForTest(t, "bad")
	spin := readySpinKernel(t)
	tests := []struct {
		name   string
		args   []string
		signal bool // SIGTERM once the guest printed
		status int
		want   string
	}{
		{"halt", []string{"-k", bad, "-a", "halt"}, false, 0, "smolvmm run: warning: --snapshot "},
		{"halt snapshot-exit", []string{"-k", bad, "-a", "halt", "--snapshot-exit"}, false, 1, "smolvmm run: --snapshot "},
		{"sigterm", []string{"-k", spin}, true, 130, "smolvmm run: warning: --snapshot "},
		{"sigterm snapshot-exit", []string{"-k", spin, "--snapshot-exit"}, true, 130, "smolvmm run: warning: --snapshot "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := keep(t, dir, "keep.snap") // snapshotsafe_test.go
			args := append(append([]string{"run", "-m", "32", "--net", "none"}, tt.args...), "--snapshot", snap)
			cmd := exec.Command(smolvmmBin(t), args...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A VMM that hangs is killed, which ends the reads and
			// the wait below, rather than left running past the test
			// with its directory.
			var hung atomic.Bool
			kill := time.AfterFunc(60*time.Second, func() {
				hung.Store(true)
				cmd.Process.Kill()
			})
			defer kill.Stop()
			if tt.signal {
				// The guest runs once its console says so.
				var first [1]byte
				if _, err := io.ReadFull(stdout, first[:]); err != nil {
					cmd.Wait()
					t.Fatalf("no console output (%v); stderr: %s", err, stderr.String())
				}
				cmd.Process.Signal(syscall.SIGTERM)
			}
			io.Copy(io.Discard, stdout)
			err = cmd.Wait()
			if hung.Load() {
				t.Fatalf("killed after 60 s (%v); stderr: %s", err, stderr.String())
			}
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !strings.Contains(stderr.String(), tt.want+snap+": the guest never became ready, so no snapshot was taken") {
				t.Fatalf("status %d, stderr %q; want %d and %q", status, stderr.String(), tt.status, tt.want)
			}
			checkOnlyKept(t, dir, snap) // snapshotsafe_test.go
		})
	}
}

// TestCLISnapshotNotTakenQuitKey: Ctrl-A x on a --snapshot run whose guest
// never became ready ends with 130, as without --snapshot, and the
// warning (it gave 1 and the note as the error).
func TestCLISnapshotNotTakenQuitKey(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	snap := keep(t, dir, "keep.snap") // snapshotsafe_test.go
	r := startOnPTY(t, "run", "-k", readySpinKernel(t), "-m", "16", "--net", "none", "--snapshot", snap)
	ptm, stderr := r.ptm, r.stderr
	// The guest runs once its console says so: the key then finds the
	// VM running. The read is bounded, as is the wait for the exit: a
	// VMM that hangs fails the test, whose cleanup kills it
	// (startOnPTY), rather than outliving it.
	if err := ptm.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var first [1]byte
	if _, err := io.ReadFull(ptm, first[:]); err != nil || first[0] != 'S' {
		t.Fatalf("the guest's console began %q (%v), want S; stderr:\n%s", first[:], err, stderr.String())
	}
	if err := ptm.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, ptm)
	if _, err := ptm.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.waited:
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60 s of Ctrl-A x; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if err := r.err; !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130; stderr:\n%s", err, stderr.String())
	}
	if want := "smolvmm run: warning: --snapshot " + snap + ": the guest never became ready"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	checkOnlyKept(t, dir, snap)
}
