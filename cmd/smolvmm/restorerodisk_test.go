package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestRestoreReadOnlyDiskAdvice: a restore whose snapshot's disk became
// read-only advised a boot's way out, ",ro after its -d path", which the
// restore then refused (the snapshot's disk was read-write). It now
// advises what works, and each way it names is followed here: the image
// made writable, or a writable copy given with -d. Run as a user the
// image's mode binds: nobody when the test runs as root.
func TestRestoreReadOnlyDiskAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	dir, kvm := t.TempDir(), "/dev/kvm"
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		// nobody's own directory, in one nobody may search, with a KVM
		// device nobody may open and a kernel it may read.
		nobody := nobodyUser(t) // contain_test.go
		uid, gid = nobody.UID, nobody.GID
		base := openTempDir(t, false) // unreadable_test.go
		var st syscall.Stat_t
		if err := syscall.Stat("/dev/kvm", &st); err != nil {
			t.Fatal(err)
		}
		kvm = filepath.Join(base, "kvm")
		if err := syscall.Mknod(kvm, syscall.S_IFCHR|0o666, int(st.Rdev)); err != nil {
			t.Skip(err)
		}
		if err := os.Chmod(kvm, 0o666); err != nil {
			t.Fatal(err)
		}
		k := filepath.Join(base, "counter")
		if err := copyFile(kernel, k); err != nil { // unreadable_test.go
			t.Fatal(err)
		}
		kernel = k
		dir = filepath.Join(base, "u")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Files of the user the commands run as.
	mine := func(p string, data []byte, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	img, snap := filepath.Join(dir, "d.img"), filepath.Join(dir, "d.snap")
	mine(img, make([]byte, 1<<20), 0o600)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := asUnprivileged(t, append([]string{"run", "--kvm-device", kvm}, args...)...) // unreadable_test.go
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		status := exitStatus(t, cmd.Run()) // snapshotsafe_test.go
		return stdout.String(), stderr.String(), status
	}
	if _, stderr, status := run("-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none", "-d", img, "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	if err := os.Chmod(img, 0o444); err != nil {
		t.Fatal(err)
	}
	want := "smolvmm run: ld0: disk image " + img + ": cannot open it read-write: the image is not writable: permission denied (the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; make the image writable, chmod u+w " + img + ", or give this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY)\n"
	if _, stderr, status := run("--restore", snap); status != 1 || stderr != want {
		t.Fatalf("restore of a read-only disk: status %d, stderr %q; want 1 and %q", status, stderr, want)
	}
	// The advice it gave before, refused: what the new advice says.
	if _, stderr, status := run("--restore", snap, "-d", img+",ro"); status != 2 || !strings.Contains(stderr, "the machine's devices differ from the snapshot's: read-only, the snapshot's disk read-write") {
		t.Errorf("restore with ,ro: status %d, stderr %q; want it refused, 2", status, stderr)
	}
	// The ways it advises, followed: each restore counts on from the
	// snapshot to the counter's end (status 1: its debug-exit 0).
	const rest = "count 3\r\ncount 4\r\ncount 5\r\ncounter: done\r\n"
	copyImg := filepath.Join(dir, "copy.img")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	mine(copyImg, data, 0o644)
	for _, tt := range []struct {
		name   string
		before func() error
		args   []string
	}{
		{"writable copy with -d", func() error { return nil }, []string{"--restore", snap, "-d", copyImg}},
		{"image made writable", func() error { return os.Chmod(img, 0o644) }, []string{"--restore", snap}},
	} {
		if err := tt.before(); err != nil {
			t.Fatal(err)
		}
		if out, stderr, status := run(tt.args...); status != 1 || out != rest {
			t.Errorf("%s: status %d, stdout %q, stderr %q; want 1 and %q", tt.name, status, out, stderr, rest)
		}
	}
}
