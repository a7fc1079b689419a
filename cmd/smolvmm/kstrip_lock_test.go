package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// flockFile takes an exclusive flock on path through a file of its own,
// closed (and so unlocked) at the end of the test.
func flockFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return f
}

// noKstripWait makes kstrip refuse at once where it would wait.
func noKstripWait(t *testing.T) {
	w := kstripLockWait
	kstripLockWait = 0
	t.Cleanup(func() { kstripLockWait = w })
}

// bothEdits is what kstrip makes of kern with pci disabled, then isa.
func bothEdits(t *testing.T, kern string) (first, both []byte) {
	t.Helper()
	orig := mustRead(t, kern)
	first = libStrip(t, kern, kstrip.Plan{Disable: []string{"pci"}})
	k, err := kstrip.Parse(append([]byte(nil), first...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := k.Plan(kstrip.Plan{Disable: []string{"isa"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(r); err != nil {
		t.Fatal(err)
	}
	both = k.Bytes()
	if bytes.Equal(both, first) || bytes.Equal(first, orig) {
		t.Fatal("the test kernel's pci and isa edits change nothing")
	}
	return first, both
}

// TestKstripInPlaceEditsSerialized: two in-place kstrip edits of one
// kernel at once both read the original and renamed their results over
// it, status 0 each: one edit was lost. A kstrip writing a kernel holds
// a lock on the kernel file from its read to its rename; a second waits
// for it, and, the first's new kernel renamed over the one it locked,
// locks and reads that one, so both edits are in the result; past its
// wait it is refused, naming the holder (not "another kstrip" when it is
// none), and writes nothing.
func TestKstripInPlaceEditsSerialized(t *testing.T) {
	tests := []struct {
		name string
		wait bool // kstrip may wait longer than the first edit takes
	}{
		{"waits for the first edit", true},
		{"refused past its wait", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kern := testKernel(t, kstriptest.Options{Bits: 32})
			orig := mustRead(t, kern)
			first, both := bothEdits(t, kern)
			// The first edit, made through the library by "another
			// kstrip" holding the kernel's lock.
			lock := flockFile(t, kern)
			if !tt.wait {
				noKstripWait(t)
			}
			waiting := make(chan struct{})
			kstripWaiting = func(string) { close(waiting) }
			defer func() { kstripWaiting = nil }()
			type result struct {
				out, errOut string
				code        int
			}
			done := make(chan result, 1)
			go func() {
				o, e, c := runKstripCLI("--disable", "isa", kern)
				done <- result{o, e, c}
			}()
			var res result
			holder := "process " + strconv.Itoa(os.Getpid()) + " ("
			if tt.wait {
				select {
				case <-waiting:
				case res = <-done:
					t.Fatalf("kstrip did not wait for the edit in progress: exit %d, %s%s", res.code, res.out, res.errOut)
				}
				if err := kstrip.WriteFile(kern, first, false, 0o644); err != nil {
					t.Fatal(err)
				}
				lock.Close()
				res = <-done
				if res.code != 0 || !strings.Contains(res.errOut, "smolvmm kstrip: waiting for "+holder) || !strings.Contains(res.errOut, ", which holds the lock on "+kern+"\n") {
					t.Fatalf("exit %d, stderr %q; want 0, and a note that it waited", res.code, res.errOut)
				}
				if !bytes.Equal(mustRead(t, kern), both) {
					t.Error("the kernel lacks one of the two edits")
				}
				return
			}
			res = <-done
			if res.code == 0 || !strings.HasPrefix(res.errOut, "kstrip: "+holder) || !strings.Contains(res.errOut, " holds the lock on "+kern+" ") || !strings.Contains(res.errOut, kern+" is left as it is") {
				t.Errorf("exit %d, stderr %q; want a refusal naming %s as the holder of %s's lock", res.code, res.errOut, holder, kern)
			}
			if !bytes.Equal(mustRead(t, kern), orig) {
				t.Error("the refused kstrip changed the kernel")
			}
		})
	}
}

// TestKstripLockIsTheFiles: kstrip locked the directory it wrote in, so
// any process that could open it (/tmp) held up every kstrip writing
// there, and kstrips of different kernels in one directory waited for
// each other. It now locks only the file it replaces: a lock on the
// directory, or on another kernel there, does not hold it up.
func TestKstripLockIsTheFiles(t *testing.T) {
	tests := []struct {
		name   string
		args   func(kern, other string) []string
		locked func(kern, other string) string // the file another process has locked
		result func(kern, other string) string // the file kstrip writes
	}{
		{"in place, directory locked",
			func(kern, _ string) []string { return []string{kern} },
			func(kern, _ string) string { return filepath.Dir(kern) },
			func(kern, _ string) string { return kern }},
		{"-o a new file, directory locked",
			func(kern, _ string) []string { return []string{"-o", kern + ".new", kern} },
			func(kern, _ string) string { return filepath.Dir(kern) },
			func(kern, _ string) string { return kern + ".new" }},
		{"-o an existing file, directory locked",
			func(kern, other string) []string { return []string{"-o", other, kern} },
			func(kern, _ string) string { return filepath.Dir(kern) },
			func(_, other string) string { return other }},
		{"in place, another kernel there locked",
			func(kern, _ string) []string { return []string{kern} },
			func(_, other string) string { return other },
			func(kern, _ string) string { return kern }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kern := testKernel(t, kstriptest.Options{Bits: 32})
			other := filepath.Join(filepath.Dir(kern), "other")
			if err := os.WriteFile(other, mustRead(t, kern), 0o644); err != nil {
				t.Fatal(err)
			}
			want := libStrip(t, kern, kstrip.Plan{Disable: []string{"pci"}})
			flockFile(t, tt.locked(kern, other))
			noKstripWait(t)
			_, errOut, code := runKstripCLI(append([]string{"--disable", "pci"}, tt.args(kern, other)...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q; want 0", code, errOut)
			}
			if !bytes.Equal(mustRead(t, tt.result(kern, other)), want) {
				t.Errorf("%s is not the edited kernel", tt.result(kern, other))
			}
		})
	}
}

// stallWriter blocks its first Write, reporting it on started, until
// release is closed.
type stallWriter struct {
	started, release chan struct{}
	buf              bytes.Buffer
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if w.started != nil {
		close(w.started)
		w.started = nil
		<-w.release
	}
	return w.buf.Write(p)
}

// TestKstripLockLetGoBeforeOutput: kstrip held its lock until its --list
// or --json output was written, so one whose reader stalled (a pager
// left open) held up every other kstrip of that kernel, and, with the
// directory lock, of its directory. The lock is now let go once the
// kernel is written.
func TestKstripLockLetGoBeforeOutput(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		other func(kern string) string // the kernel the second kstrip edits
	}{
		{"--list, same kernel", []string{"--list"}, func(kern string) string { return kern }},
		{"--json, same kernel", []string{"--json"}, func(kern string) string { return kern }},
		{"--list, another kernel there", []string{"--list"}, func(kern string) string { return filepath.Join(filepath.Dir(kern), "other") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kern := testKernel(t, kstriptest.Options{Bits: 32})
			other := tt.other(kern)
			if other != kern {
				if err := os.WriteFile(other, mustRead(t, kern), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, both := bothEdits(t, kern)
			wantOther := libStrip(t, other, kstrip.Plan{Disable: []string{"isa"}})
			noKstripWait(t)
			w := &stallWriter{started: make(chan struct{}), release: make(chan struct{})}
			started := w.started
			done := make(chan error, 1)
			go func() {
				var e bytes.Buffer
				done <- testApp([]*cli.Command{kstripCommand()}, w, &e).Run(append(append([]string{"smolvmm", "kstrip", "--disable", "pci"}, tt.flags...), kern))
			}()
			select {
			case <-started:
			case err := <-done:
				t.Fatalf("the first kstrip ended before its output: %v", err)
			}
			_, errOut, code := runKstripCLI("--disable", "isa", other)
			close(w.release)
			if err := <-done; err != nil {
				t.Fatalf("the first kstrip: %v", err)
			}
			if code != 0 {
				t.Fatalf("the second kstrip, beside one whose output is stalled: exit %d, stderr %q; want 0", code, errOut)
			}
			if other == kern {
				if !bytes.Equal(mustRead(t, kern), both) {
					t.Error("the kernel lacks one of the two edits")
				}
			} else if !bytes.Equal(mustRead(t, other), wantOther) {
				t.Errorf("%s is not the edited kernel", other)
			}
		})
	}
}
