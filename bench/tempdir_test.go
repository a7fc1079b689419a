package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testproc"
)

// holdTempDir is the bench of TestKilledBenchLeavesNoTempDir: it makes
// its directory with MakeTempDir, puts a file in it as bench --compare
// qemu puts the guest, says the directory's path on standard output and
// waits for its standard input to end, which the test never ends.
func holdTempDir() int {
	dir, lock, err := MakeTempDir()
	if err != nil {
		return 1
	}
	defer lock.Close()
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "demo.elf"), []byte("guest"), 0o644); err != nil {
		return 1
	}
	os.Stdout.WriteString(dir + "\n")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startHolder starts holdTempDir with TMPDIR tmp and returns it and its
// directory, once made.
func startHolder(t *testing.T, tmp string) (*exec.Cmd, string) {
	t.Helper()
	return testproc.StartHolder(t, "BENCH_HOLDTEMPDIR=1", "TMPDIR="+tmp)
}

// bench --compare qemu made its directory for QEMU's guest with
// os.MkdirTemp, unlocked and under a name no bench looks for: killed
// (SIGKILL, the OOM killer), it left $TMPDIR/smolvmm-benchNNN/demo.elf
// for good. The next bench, whether it makes such a directory or only
// its VMs' reports', removes it, and keeps a live bench's.
func TestKilledBenchLeavesNoTempDir(t *testing.T) {
	for _, next := range []struct {
		name string
		run  func(t *testing.T) error
	}{
		{"MakeTempDir", func(t *testing.T) error {
			dir, lock, err := MakeTempDir()
			if err != nil {
				return err
			}
			defer lock.Close()
			return os.RemoveAll(dir)
		}},
		{"RunParallel", func(t *testing.T) error {
			target := fakeTarget(t, "fake", "report")
			target.GuestBytes, target.ReportFlag = 0, "--report"
			_, err := RunParallel(context.Background(), target, ParallelOptions{N: 1, Timeout: 30 * time.Second,
				Config: Config{Kernel: "fake", MemoryMiB: 1}})
			return err
		}},
	} {
		t.Run(next.name, func(t *testing.T) {
			tmp := t.TempDir()
			// The live bench first: a bench starting removes a killed one's.
			_, live := startHolder(t, tmp)
			killed, stale := startHolder(t, tmp)
			if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = killed.Wait()
			if _, err := os.Stat(filepath.Join(stale, "demo.elf")); err != nil {
				t.Fatalf("the killed bench left nothing: %v", err)
			}

			t.Setenv("TMPDIR", tmp)
			if err := next.run(t); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if want := []string{filepath.Base(live)}; !slices.Equal(got, want) {
				t.Errorf("%s holds %q after the next bench, want %q (%s removed)", tmp, got, want, filepath.Base(stale))
			}
		})
	}
}
