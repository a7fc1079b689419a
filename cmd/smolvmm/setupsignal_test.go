package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalDuringSetup signals run while it builds a --share image (a
// sparse GiB takes minutes to copy into FAT32): the signals that stop a
// running guest must stop the setup too, with status 130 and no image or
// temporary file left behind. Before, SIGTERM killed it mid-build (status
// 143, both files left) and a signal while the kernel loaded was ignored.
func TestSignalDuringSetup(t *testing.T) {
	bin := smolvmmBin(t)
	kernel := spinKernel(t)
	share := t.TempDir()
	f, err := os.Create(filepath.Join(share, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(bin, "run", "-k", kernel, "--net", "none", "--share", share)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// The build has started once its temporary file exists.
			for !buildStarted(t, tmp) {
				select {
				case err := <-done:
					t.Fatalf("ended (%v) before the build started: %s", err, stderr.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			cmd.Process.Signal(sig)
			err := <-done
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
				t.Fatalf("exit %v, want status 130; stderr: %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr %q does not say it was interrupted", stderr.String())
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}

func buildStarted(t *testing.T, dir string) bool {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.Contains(e.Name(), ".tmp-") {
			return true
		}
	}
	return false
}
