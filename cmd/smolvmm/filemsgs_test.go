package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestFileMessages: the refusals of a file named on the command line say
// what the file is for and what to do, without a system call's name, and
// a path no file can have is a bad flag value (status 2). They were
// "open k.gz: permission denied", "output lstat X: file name too long"
// (status 1), "--snapshot X: open: open X: ...", "--json lstat X",
// "lease file: lstat X", "set k.gz: open: permission denied" and
// "--module k.gz: permission denied", with no advice.
func TestFileMessages(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	dir := openTempDir(t, true)
	unreadable := filepath.Join(dir, "k.gz")
	if err := os.WriteFile(unreadable, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, strings.Repeat("a", 300))
	cut := shortName(long)
	tooLong := ": the name " + shortName(strings.Repeat("a", 300)) + " is 300 bytes; a file name has at most 255"
	const readable = ": permission denied (make it readable by the user smolvmm runs as, or give another "
	tests := []struct {
		name   string
		nobody bool // run unprivileged, for whom mode 000 is unreadable
		args   []string
		status int
		want   string // stderr
	}{
		{"kstrip unreadable kernel", true, []string{"kstrip", unreadable}, 1,
			"smolvmm kstrip: kernel " + unreadable + readable + "KERNEL)"},
		{"kstrip -o too long", false, []string{"kstrip", "-o", long, kern}, 2,
			"smolvmm kstrip: -o " + cut + tooLong},
		{"run --snapshot too long", false, []string{"run", "-k", kern, "--snapshot", long}, 2,
			"smolvmm run: --snapshot " + cut + tooLong},
		{"bench --json too long", false, []string{"bench", "-k", kern, "--json", long}, 2,
			"smolvmm bench: --json " + cut + tooLong},
		{"net --leases too long", false, []string{"net", "--socket", filepath.Join(dir, "n.sock"), "--leases", long}, 2,
			"smolvmm net: --leases " + cut + tooLong},
		{"mkimg unreadable set", true, []string{"mkimg", "-x", unreadable, "-i", filepath.Join(dir, "r.img")}, 1,
			"smolvmm mkimg: -x " + unreadable + readable + "-x)"},
		{"run unreadable module", true, []string{"run", "-k", kern, "--module", unreadable}, 1,
			"smolvmm run: --module " + unreadable + readable + "--module)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cmd *exec.Cmd
			if tt.nobody {
				cmd = asUnprivileged(t, tt.args...) // unreadable_test.go
			} else {
				cmd = exec.Command(smolvmmBin(t), tt.args...)
			}
			code, stderr := runStatus(t, cmd)
			if code != tt.status || stderr != tt.want+"\n" {
				t.Errorf("status %d, stderr:\n%s\nwant status %d and\n%s", code, stderr, tt.status, tt.want)
			}
		})
	}
}

// TestUnsafeLinkAdvice: kstrip and mkimg refuse another user's symlink
// in a sticky directory, as the output, with what to do, as --snapshot
// does; they named the link and the rule only.
func TestUnsafeLinkAdvice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give a link to another user")
	}
	nobody := nobodyUser(t) // contain_test.go
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	data := t.TempDir()
	sticky := openTempDir(t, true)
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(sticky, "out")
	if err := os.Symlink(filepath.Join(sticky, "target"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, nobody.UID, nobody.GID); err != nil {
		t.Fatal(err)
	}
	const advice = " (a link there could name any file, which would be replaced; give the file's own path)\n"
	for _, args := range [][]string{{"kstrip", "-o", link, kern}, {"mkimg", "--data", data, "-i", link}} {
		t.Run(args[0], func(t *testing.T) {
			code, stderr := runStatus(t, exec.Command(smolvmmBin(t), args...))
			if code != 1 || !strings.HasSuffix(stderr, advice) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d, stderr:\n%s\nwant status 1 and one line ending %q", code, stderr, advice)
			}
		})
	}
}

// TestDataImageDiskFull: a data image that fills its file system says so
// and what to do, as a root image does; go-diskfs's words ("unable to
// write to file: write X: no space left on device") hid the cause.
func TestDataImageDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	defer syscall.Unmount(mnt, 0)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not zeros: a FAT32 image of them would be holes.
	f, _ := os.OpenFile(filepath.Join(data, "f"), os.O_WRONLY, 0)
	f.Write([]byte(strings.Repeat("smolvmm ", 512<<10)))
	f.Close()
	img := filepath.Join(mnt, "d.img")
	code, stderr := runStatus(t, exec.Command(smolvmmBin(t), "mkimg", "--data", data, "-i", img))
	want := "smolvmm mkimg: image " + img + ": the file system that holds it is full (free some space there, or write the image elsewhere): "
	if code != 1 || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("status %d, stderr:\n%s\nwant status 1 and one line beginning %q", code, stderr, want)
	}
	if left, _ := os.ReadDir(mnt); len(left) != 0 {
		t.Errorf("left in %s: %v", mnt, left)
	}
}
