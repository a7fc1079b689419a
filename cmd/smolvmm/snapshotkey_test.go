package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// heldSnapshot is a machine whose Snapshot waits for release, then fails
// as one the machine's stop refused, having written nothing.
type heldSnapshot struct{ release chan struct{} }

func (h heldSnapshot) Snapshot(io.Writer) (vmm.SnapshotInfo, error) {
	<-h.release
	return vmm.SnapshotInfo{}, fmt.Errorf("the guest stopped first: %w", vmm.ErrNotRunning)
}

func (h heldSnapshot) SnapshotAndExit(w io.Writer) (vmm.SnapshotInfo, error) { return h.Snapshot(w) }

// keyRun is a run with --snapshot dir/k.snap whose lines to stderrOut
// go to out, and a machine whose Ctrl-A s snapshots wait for m.release.
func keyRun(t *testing.T) (run *snapRun, m heldSnapshot, out *lockedBuffer) {
	t.Helper()
	target, err := snapshot.OpenTarget(filepath.Join(t.TempDir(), "k.snap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	out, saved := new(lockedBuffer), stderrOut
	stderrOut = out
	t.Cleanup(func() { stderrOut = saved })
	return &snapRun{target: target}, heldSnapshot{make(chan struct{})}, out
}

// within waits up to 60 s for ch to be closed.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: not within 60 s", what)
	}
}

// keyFailedLine starts the line a failed Ctrl-A s writes.
const keyFailedLine = "smolvmm: C-a s: --snapshot "

// TestSnapshotKeyWaited: waitKeys, which the run calls once the machine
// stopped, returns once a Ctrl-A s snapshot under way has ended, its
// failure counted (for the closing warning) and its line written.
func TestSnapshotKeyWaited(t *testing.T) {
	run, m, out := keyRun(t)
	snapshotKey(run, m)()
	waited := make(chan struct{})
	go func() {
		run.waitKeys()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("waitKeys returned while the snapshot was under way")
	default:
	}
	close(m.release)
	within(t, waited, "waitKeys after the snapshot ended")
	if n, _ := run.failures.get(); n != 1 || !strings.Contains(out.String(), keyFailedLine) {
		t.Fatalf("after waitKeys: %d failures, stderr %q; want 1 and its line", n, out.String())
	}
}

// TestQuitKey: Ctrl-A x stops the run at once unless a Ctrl-A s snapshot
// is under way: then once it has ended, its line written, and the input
// reads on (quit reports false), so that a second Ctrl-A x stops the run
// at once, the snapshot still held (by a console nobody reads, say).
func TestQuitKey(t *testing.T) {
	tests := []struct {
		name     string
		snapshot bool // a Ctrl-A s first
		presses  int  // Ctrl-A x presses before the snapshot ends
		now      []bool
		stopped  bool // before the snapshot ended
	}{
		{"no snapshot", false, 1, []bool{true}, true},
		{"after the snapshot", true, 1, []bool{false}, false},
		{"pressed again", true, 2, []bool{false, true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, m, out := keyRun(t)
			// The first stop's stderr, and its end; a second is the
			// waiting goroutine's, after the test's end, and a no-op.
			stopped := make(chan struct{})
			var first string
			var once sync.Once
			stop := func() {
				once.Do(func() {
					first = out.String()
					close(stopped)
				})
			}
			if tt.snapshot {
				snapshotKey(run, m)()
			}
			quit := quitKey(run, stop)
			var now []bool
			for range tt.presses {
				now = append(now, quit())
			}
			if fmt.Sprint(now) != fmt.Sprint(tt.now) {
				t.Errorf("quit said %v, want %v", now, tt.now)
			}
			// A press that waits says so, and how to stop now.
			if said := strings.Contains(out.String(), "C-a x: stopping once the snapshot under way is written (C-a x again: stop now)"); said != tt.snapshot {
				t.Errorf("stderr %q: said it waits for the snapshot: %v, want %v", out.String(), said, tt.snapshot)
			}
			select {
			case <-stopped:
				if !tt.stopped {
					t.Fatal("stopped before the snapshot ended")
				}
			default:
				if tt.stopped {
					t.Fatal("not stopped at once")
				}
			}
			close(m.release)
			run.waitKeys()
			within(t, stopped, "the stop")
			if !tt.stopped && !strings.Contains(first, keyFailedLine) {
				t.Errorf("at the stop stderr held %q, want the snapshot's line first", first)
			}
		})
	}
}

// TestCLISnapshotKeyEndsBeforeRunEnds: a Ctrl-A s snapshot under way when
// the run is stopped (SIGTERM) is waited for: its failure line comes
// before the closing warning, which counts it ("the snapshot attempt
// failed", not "the guest never became ready"), and both before the
// "guest stopped" line. The guest writes to a console nobody reads, which
// holds it and the snapshot until the stop; a 1-block file size limit
// fails a snapshot that gets through before that (EFBIG). Repeated, as
// the end raced the snapshot's goroutine.
func TestCLISnapshotKeyEndsBeforeRunEnds(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := chattyKernel(t) // console_pipe_test.go
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir := t.TempDir()
			snap := keep(t, dir, "j.snap") // snapshotsafe_test.go
			r := startCmdOnPTY(t, exec.Command("sh", "-c", `ulimit -f 1 && exec "$0" "$@"`, smolvmmBin(t),
				"run", "-k", kernel, "-m", "16", "--net", "none", "--snapshot", snap))
			// Ctrl-A h is served after Ctrl-A s: once its help is out,
			// the snapshot was asked for.
			if _, err := r.ptm.Write([]byte{0x01, 's', 0x01, 'h'}); err != nil {
				t.Fatal(err)
			}
			waitStderr(t, r, "C-a h    print this help")
			if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, r.ptm) // the console's output, held until now
			exitedWith(t, r, 130, "SIGTERM")
			stderr := r.stderr.String()
			failed := strings.Index(stderr, "smolvmm: C-a s: --snapshot "+snap+": ")
			warned := strings.Index(stderr, "smolvmm run: warning: --snapshot "+snap+": no snapshot was taken and the file is as it was: the snapshot attempt failed: ")
			stopped := strings.Index(stderr, "smolvmm run: guest stopped")
			if failed < 0 || warned < failed || stopped < warned || strings.Contains(stderr, "never became ready") {
				t.Fatalf("stderr:\n%s\nwant, in this order, the C-a s failure, the warning that the snapshot attempt failed (not that the guest never became ready) and \"guest stopped\"", stderr)
			}
			checkOnlyKept(t, dir, snap) // snapshotsafe_test.go
		})
	}
}

// TestCLISnapshotKeyThenQuit: Ctrl-A s and Ctrl-A x in one read (a paste,
// an expect script) are served in order: the snapshot is written, said
// before the run's last line, and then the guest stopped (status 130).
// The stop came first and the snapshot was refused.
func TestCLISnapshotKeyThenQuit(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	snap := keep(t, dir, "q.snap")
	r := startOnPTY(t, "run", "-k", readySpinKernel(t), "-m", "16", "--net", "none", "--snapshot", snap)
	waitSpinning(t, r)
	if _, err := r.ptm.Write([]byte("\x01s\x01x")); err != nil {
		t.Fatal(err)
	}
	exitedWith(t, r, 130, "Ctrl-A s, Ctrl-A x")
	stderr := r.stderr.String()
	written := strings.Index(stderr, "smolvmm: snapshot "+snap+": 16.0 MiB written")
	stopped := strings.Index(stderr, "smolvmm run: guest stopped")
	if written < 0 || stopped < written || strings.Contains(stderr, "warning") {
		t.Fatalf("stderr:\n%s\nwant the snapshot written, then \"guest stopped\", and no warning", stderr)
	}
	checkOnlySnapshot(t, dir, snap) // snapshotsafe_test.go
}

// waitStderr waits up to 60 s for want on r's standard error.
func waitStderr(t *testing.T, r *ptyRun, want string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(r.stderr.String(), want) {
		select {
		case <-r.waited:
			t.Fatalf("smolvmm ended (%v) before it said %q; stderr:\n%s", r.err, want, r.stderr)
		case <-deadline:
			t.Fatalf("no %q on stderr within 60 s; stderr:\n%s", want, r.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exitedWith waits up to 60 s for r to end, after what the test did
// (after), and fails unless with status.
func exitedWith(t *testing.T, r *ptyRun, status int, after string) {
	t.Helper()
	select {
	case <-r.waited:
	case <-time.After(60 * time.Second):
		r.cmd.Process.Kill()
		<-r.waited // stderr is complete only once Wait has returned
		t.Fatalf("no exit within 60 s of %s; stderr:\n%s", after, r.stderr)
	}
	if status == 0 {
		if r.err != nil {
			t.Fatalf("exit: %v, want status 0; stderr:\n%s", r.err, r.stderr)
		}
		return
	}
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != status {
		t.Fatalf("exit: %v, want status %d; stderr:\n%s", r.err, status, r.stderr)
	}
}

// TestEscapeReaderQuitWaits: once Ctrl-A x waits (quit says false), what
// else is typed is not the guest's: Read reads on, dropping it, serving
// Ctrl-A h but no Ctrl-A s (a snapshot begun after the quit), until a
// second Ctrl-A x, which ends the input.
func TestEscapeReaderQuitWaits(t *testing.T) {
	var help strings.Builder
	quits, snapshots := 0, 0
	r := &escapeReader{
		r:        &countingReader{chunks: []string{"a\x01x", "b\x01sc\x01\x01\x01h", "d\x01xe"}},
		quit:     func() bool { quits++; return quits > 1 },
		snapshot: func() { snapshots++ },
		help:     &help,
	}
	want := []struct {
		out string
		err error
	}{{"a", nil}, {"", nil}, {"", io.EOF}}
	buf := make([]byte, 16)
	for i, w := range want {
		n, err := r.Read(buf)
		if string(buf[:n]) != w.out || err != w.err {
			t.Fatalf("Read %d = %q, %v; want %q, %v", i+1, buf[:n], err, w.out, w.err)
		}
	}
	if quits != 2 || snapshots != 0 || !strings.Contains(help.String(), "C-a h    print this help") {
		t.Fatalf("%d quits, %d snapshots, help %q; want 2, 0 and the help", quits, snapshots, help.String())
	}
}
