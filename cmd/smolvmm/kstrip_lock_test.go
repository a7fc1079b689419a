package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestKstripInPlaceEditsSerialized: two in-place kstrip edits of one
// kernel at once both read the original and renamed their results over
// it, status 0 each: one edit was lost. A kstrip writing a kernel now
// holds a lock on its directory from its read to its rename; a second
// waits for it and reads the kernel the first wrote, so both edits are
// in the result, or, past its wait, is refused and writes nothing.
func TestKstripInPlaceEditsSerialized(t *testing.T) {
	tests := []struct {
		name    string
		wait    bool   // kstrip may wait longer than the first edit takes
		wantErr string // "" for both edits in the kernel
	}{
		{"waits for the first edit", true, ""},
		{"refused past its wait", false, "kstrip: another kstrip is editing a kernel in "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kern := testKernel(t, kstriptest.Options{Bits: 32})
			orig := mustRead(t, kern)
			// The first edit, made through the library by "another
			// kstrip" holding the directory's lock.
			first := libStrip(t, kern, kstrip.Plan{Disable: []string{"pci"}})
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
			both := k.Bytes()
			if bytes.Equal(both, first) || bytes.Equal(first, orig) {
				t.Fatal("the test kernel's pci and isa edits change nothing")
			}
			d, err := os.Open(filepath.Dir(kern))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			if !tt.wait {
				w := kstripLockWait
				kstripLockWait = 0
				defer func() { kstripLockWait = w }()
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
			if tt.wait {
				select {
				case <-waiting:
				case res = <-done:
					t.Fatalf("kstrip did not wait for the edit in progress: exit %d, %s%s", res.code, res.out, res.errOut)
				}
				if err := kstrip.WriteFile(kern, first, false, 0o644); err != nil {
					t.Fatal(err)
				}
				d.Close()
				res = <-done
				if res.code != 0 || !strings.Contains(res.errOut, "smolvmm kstrip: waiting for another kstrip editing a kernel in "+filepath.Dir(kern)+"\n") {
					t.Fatalf("exit %d, stderr %q; want 0, and a note that it waited", res.code, res.errOut)
				}
				if !bytes.Equal(mustRead(t, kern), both) {
					t.Error("the kernel lacks one of the two edits")
				}
				return
			}
			res = <-done
			if res.code == 0 || !strings.HasPrefix(res.errOut, tt.wantErr+filepath.Dir(kern)) || !strings.Contains(res.errOut, kern+" is left as it is") {
				t.Errorf("exit %d, stderr %q; want a refusal starting %q", res.code, res.errOut, tt.wantErr)
			}
			if !bytes.Equal(mustRead(t, kern), orig) {
				t.Error("the refused kstrip changed the kernel")
			}
		})
	}
}
