package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullTempDir is a tmpfs mounted for the test and filled to its last
// byte: a TMPDIR where a directory or a named pipe can still be made,
// and nothing written. It is unmounted when the test ends.
func fullTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	if _, err := f.Write([]byte{1}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s not full: a byte more: %v", dir, err)
	}
	return dir
}

// With TMPDIR on a full file system the child's report could not be
// written there: a boot whose guest ended well (status 1, which its report
// says it chose) failed with "unexpected end of JSON input", as if the
// guest had not. The report passes through a named pipe instead, which
// takes no room: the boot succeeds with the child's own phases, and a
// VMM's failure with the guest's status still fails, its report read.
func TestRunBootFullTempDir(t *testing.T) {
	tmp := fullTempDir(t)
	t.Setenv("TMPDIR", tmp)
	for _, tt := range []struct {
		mode    string
		wantErr error // nil: the boot succeeds
		errText string
	}{
		{"report", nil, ""},
		{"vmmfail", ErrExitStatus, "which the guest did not choose (its report has guest status none)"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			b, err := RunBoot(context.Background(), withReport(fakeTarget(t, "fake", tt.mode)), BootOptions{Timeout: 30 * time.Second})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("RunBoot: %v, want %v saying %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("RunBoot: %v", err)
			}
			if b.Status != 1 {
				t.Errorf("status %d, want 1", b.Status)
			}
			// Only the child's report has these.
			for _, p := range []string{PhaseRuntime, PhaseVMCreated, PhaseFirstRun, PhaseGuestExit} {
				if _, ok := b.Phases[p]; !ok {
					t.Errorf("phases %v lack the report's %s", b.Phases, p)
				}
			}
		})
	}
	// Nothing of the bench's is left in TMPDIR.
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "fill" {
		t.Errorf("%s holds %v after the boots, want only fill", tmp, entries)
	}
}
