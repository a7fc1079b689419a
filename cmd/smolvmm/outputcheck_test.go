package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// unwritableDir is a directory no one, root included, can create a file
// in: /proc/sys takes no new entries.
func unwritableDir(t *testing.T) string {
	t.Helper()
	const dir = "/proc/sys"
	if f, err := os.CreateTemp(dir, "smolvmm-test-*"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Skipf("%s takes new files here", dir)
	}
	return dir
}

// TestOutputsCheckedFirst: an output that cannot be written fails the
// command (status 1) before any work, as docs/commands.md promises. Each of
// these did the work first: bench booted its VMs, mkimg read the sets
// (here, failed on a missing one), kstrip stripped (here, failed on a
// file that is no kernel), up began its download (here, from a mirror
// nothing answers).
func TestOutputsCheckedFirst(t *testing.T) {
	ro := unwritableDir(t)
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "k.gz")
	if err := os.WriteFile(notKernel, []byte("no kernel here"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := func(name string) string { return filepath.Join(ro, name) }
	tests := []struct {
		name string
		args []string
		want string // the output named in the error
	}{
		{"bench --json", []string{"bench", "-n", "1", "--warmup", "0", "--json", out("x.json")}, "--json " + out("x.json")},
		{"bench --svg", []string{"bench", "-n", "1", "--warmup", "0", "--svg", out("x.svg")}, "--svg " + out("x.svg")},
		{"mkimg", []string{"mkimg", "-x", filepath.Join(dir, "rescue.tgz"), "-i", out("x.img")}, "image " + out("x.img")},
		{"mkimg --data", []string{"mkimg", "--data", filepath.Join(dir, "nodata"), "-i", out("x.img")}, "image " + out("x.img")},
		{"kstrip -o", []string{"kstrip", "-o", out("x.gz"), notKernel}, "-o " + out("x.gz")},
		{"up -i", []string{"up", "--mirror", "http://127.0.0.1:1/pub/NetBSD", "--cache", filepath.Join(dir, "cache"),
			"-i", out("x.img"), "rescue"}, "image " + out("x.img")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runCLIIn(t, dir, tt.args...)
			msg := strings.TrimSpace(stderr)
			if status != 1 || !strings.Contains(msg, tt.want+": cannot be written: ") {
				t.Fatalf("status %d, stderr %q; want 1 and %q", status, msg, tt.want+": cannot be written")
			}
			// One line, and no output: no VM booted, no set or kernel read,
			// no download begun.
			if strings.Contains(msg, "\n") || stdout != "" {
				t.Errorf("work was done before the output was checked:\nstdout %q\nstderr %q", stdout, msg)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cache")); len(ents) != 0 {
		t.Errorf("up wrote to its cache: %v", ents)
	}
}

// TestKstripKeepsAnImageInUse: kstrip -o does not replace a disk image a
// running VM holds (its flock, taken here by the test process as the VM
// takes it), as mkimg -f does not; the error names the holder's PID.
// kstrip replaced it, and the VM wrote on to the unlinked file.
func TestKstripKeepsAnImageInUse(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "not-a-kernel")
	if err := os.WriteFile(notKernel, []byte("no kernel here"), 0o644); err != nil {
		t.Fatal(err)
	}
	kernels := []struct{ name, path string }{{"no kernel", notKernel}}
	if kstriptest.Available(32) == nil {
		kernels = append(kernels, struct{ name, path string }{"kernel", testKernel(t, kstriptest.Options{Bits: 32})})
	}
	for _, lock := range []struct {
		name string
		how  int
	}{{"read-write disk", unix.LOCK_EX}, {"read-only disk", unix.LOCK_SH}} {
		for _, k := range kernels {
			t.Run(lock.name+"/"+k.name, func(t *testing.T) {
				img := filepath.Join(t.TempDir(), "d.img")
				if err := os.WriteFile(img, []byte("the guest's disk"), 0o644); err != nil {
					t.Fatal(err)
				}
				vm, err := os.Open(img)
				if err != nil {
					t.Fatal(err)
				}
				defer vm.Close()
				if err := unix.Flock(int(vm.Fd()), lock.how|unix.LOCK_NB); err != nil {
					t.Fatal(err)
				}
				before, _ := os.Stat(img)
				_, stderr, status := runCLI(t, "kstrip", "-o", img, k.path)
				want := "image " + img + " is in use by a running VM: stop that VM before replacing the image (its lock is held by process " +
					strconv.Itoa(os.Getpid()) + " ("
				if status != 1 || !strings.Contains(stderr, want) {
					t.Errorf("status %d, stderr %q; want 1 and %q", status, stderr, want)
				}
				sameNode(t, img, before)
				if b, _ := os.ReadFile(img); string(b) != "the guest's disk" {
					t.Errorf("the image now holds %q", b)
				}
			})
		}
	}
}
