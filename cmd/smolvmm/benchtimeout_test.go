package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
)

// TestBenchTimeoutAdvice: a boot that times out gets "raise --timeout"
// (the error was rebuilt from its text, and lost bench.ErrTimeout), and
// its error is said once, in the results on stdout.
func TestBenchTimeoutAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	status, stdout, stderr := benchRun(t, nil, "-k", readySpinKernel(t), "--net", "none", "-n", "1", "--warmup", "0",
		"--ready", "^never", "--timeout", "1s")
	if status != 1 || !strings.Contains(stdout, "boot timed out: boot did not end within 1s") ||
		!strings.HasSuffix(stderr, "smolvmm bench: smolvmm's boots failed; the results above say why (raise --timeout)\n") ||
		strings.Contains(stderr, "did not end within") {
		t.Errorf("status %d, stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
}

// TestBenchGuestEndsBeforeReady: a guest that ends before a --ready that
// never matches is said to have, at once: its VMM waited (lingered) for
// a memory sample the bench takes only at ready, and the boot was said to
// time out ("raise --timeout"), or came after five seconds.
//
// The linger is timed from the guest's end, not from the bench's start
// (which took in the build of smolvmm, and a boot that takes seconds on
// a busy machine), and --timeout leaves room for the 5 s linger to show.
func TestBenchGuestEndsBeforeReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	// lingerBound is well below the linger (5 s) and well above a VMM's
	// end after its guest's (milliseconds, a second when busy).
	const lingerBound = 4 * time.Second
	bin := smolvmmBin(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
		// guestEnd is when the guest ended, as best the run shows it:
		// its console's last line (on stderr with --console), or with
		// --parallel, which shows no console, its first console byte
		// (JSON), since the bench's start (start).
		guestEnd func(t *testing.T, start time.Time, stderr *consoleWatch, json string) time.Time
	}{
		{"sequential", []string{"-n", "1", "--warmup", "0", "--console"}, "the guest exited before the ready condition held",
			func(t *testing.T, _ time.Time, stderr *consoleWatch, _ string) time.Time {
				return stderr.doneAt(t)
			}},
		{"parallel", []string{"--parallel", "1"}, "the guest ended (status 1) before its ready line",
			func(t *testing.T, start time.Time, _ *consoleWatch, json string) time.Time {
				res := readParallelJSON(t, json)
				if len(res.VMs) != 1 || res.VMs[0].FirstOutputMS == 0 {
					t.Fatalf("VMs %+v: want one with its first output timed", res.VMs)
				}
				return start.Add(time.Duration(res.VMs[0].FirstOutputMS * float64(time.Millisecond)))
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			json := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"bench", "--net", "none", "--ready", "never-matches", "--timeout", "30s", "--json", json}, tt.args...)
			cmd := exec.Command(bin, args...)
			var stdout bytes.Buffer
			stderr := &consoleWatch{}
			cmd.Stdout, cmd.Stderr = &stdout, stderr
			start := time.Now()
			err := cmd.Run()
			end := time.Now()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != 1 || !strings.Contains(stdout.String(), tt.want) || strings.Contains(stdout.String()+stderr.String(), "timed out") {
				t.Fatalf("status %d, stdout:\n%s\nstderr:\n%s", status, stdout.String(), stderr.String())
			}
			if d := end.Sub(tt.guestEnd(t, start, stderr, json)); d > lingerBound {
				t.Errorf("the bench ended %v after its guest: the VMM lingered", d)
			}
		})
	}
}

// consoleWatch is a bench's standard error, with --console the guests'
// consoles: it keeps what is written and when the demo guest's last line
// (guests.DemoDone) came.
type consoleWatch struct {
	mu   sync.Mutex
	b    bytes.Buffer
	done time.Time
}

func (w *consoleWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.done.IsZero() && bytes.Contains(w.b.Bytes(), []byte(guests.DemoDone)) {
		w.done = time.Now()
	}
	return len(p), nil
}

func (w *consoleWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// doneAt is when the guest's last line came; the test fails without one.
func (w *consoleWatch) doneAt(t *testing.T) time.Time {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done.IsZero() {
		t.Fatalf("no %q on the console:\n%s", guests.DemoDone, w.b.String())
	}
	return w.done
}
