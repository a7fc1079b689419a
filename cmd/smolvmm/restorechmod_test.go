package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// modeInfo is a file's os.FileInfo as restoreNotWritableAdvice reads it:
// its mode and owner.
type modeInfo struct {
	os.FileInfo
	mode os.FileMode
	uid  uint32
}

func (i modeInfo) Mode() os.FileMode { return i.mode }
func (i modeInfo) Sys() any          { return &syscall.Stat_t{Uid: i.uid} }

// TestRestoreNotWritableChmod: a restore's refusal of an image it may not
// write advised "chmod u+w IMAGE as its owner or root" whatever the image's
// owner and mode, also to nobody of root's image of mode 0644, whose u+w
// is set: chmod changes nothing there. chmod u+w is now advised only when
// u+w is what the image lacks and this user may change its mode (its
// owner, or root); another's image is said to need its owner.
func TestRestoreNotWritableChmod(t *testing.T) {
	const (
		head = "the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; "
		cp   = " this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY"
	)
	eacces := &vmm.Error{Op: "ld0", Field: "Disks", Err: fmt.Errorf("disk image /i/d.img: cannot open it read-write: %w: %w", blk.ErrNotWritable, syscall.EACCES)}
	tests := []struct {
		name string
		st   os.FileInfo
		euid int
		want string
	}{
		{"own image, mode 0444", modeInfo{mode: 0o444, uid: 1000}, 1000, head + "make the image writable, chmod u+w /i/d.img, or give" + cp},
		{"own image, mode 0644 (refused by something else: an ACL)", modeInfo{mode: 0o644, uid: 1000}, 1000, head + "give" + cp},
		{"root's image, mode 0644, to nobody", modeInfo{mode: 0o644, uid: 0}, 65534, head + "the image is uid 0's (mode 0644), and only its owner or root may let this user write it; or give" + cp},
		{"root's image, mode 0444, to nobody", modeInfo{mode: 0o444, uid: 0}, 65534, head + "the image is uid 0's (mode 0444), and only its owner or root may let this user write it; or give" + cp},
		{"another's image, mode 0444, to root", modeInfo{mode: 0o444, uid: 1000}, 0, head + "make the image writable, chmod u+w /i/d.img, or give" + cp},
		{"root's image, mode 0644, to root (immutable)", modeInfo{mode: 0o644, uid: 0}, 0, head + "give" + cp},
		{"image not known", nil, 1000, head + "give" + cp},
	}
	for _, tt := range tests {
		err := restoreDiskNotWritable{error: eacces, disks: 1, image: "/i/d.img", st: tt.st}
		if got := restoreNotWritableAdvice(err, tt.euid); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestRestoreNotWritableAsNobody: the refusal said as it is, nobody
// restoring a snapshot of root's whose disk is root's of mode 0644: no
// chmod u+w, which nobody could not run and which would change nothing.
func TestRestoreNotWritableAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make root's image and restore as nobody")
	}
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	base := openTempDir(t, false) // unreadable_test.go: root's, mode 0755
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/kvm", &st); err != nil {
		t.Fatal(err)
	}
	// A KVM device nobody may open.
	kvm := filepath.Join(base, "kvm")
	if err := syscall.Mknod(kvm, syscall.S_IFCHR|0o666, int(st.Rdev)); err != nil {
		t.Skip(err)
	}
	if err := os.Chmod(kvm, 0o666); err != nil {
		t.Fatal(err)
	}
	img, snap := filepath.Join(base, "d.img"), filepath.Join(base, "d.snap")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smolvmmBin(t), "run", "--kvm-device", kvm, "-k", guests.ForTest(t, "counter"), "-m", "16", "-a", "n=5 at=2",
		"--net", "none", "-d", img, "--snapshot", snap, "--snapshot-exit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snapshot run: %v\n%s", err, out)
	}
	if err := os.Chmod(snap, 0o644); err != nil {
		t.Fatal(err)
	}
	status, stderr := runStatus(t, asUnprivileged(t, "run", "--kvm-device", kvm, "--restore", snap)) // unreadable_test.go
	want := "smolvmm run: ld0: disk image " + img + ": cannot open it read-write: the image is not writable: permission denied (the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; the image is uid 0's (mode 0644), and only its owner or root may let this user write it; or give this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY)\n"
	if status != 1 || stderr != want {
		t.Fatalf("status %d, stderr %q; want 1 and %q", status, stderr, want)
	}
	if strings.Contains(stderr, "chmod u+w "+img) {
		t.Fatalf("advises chmod u+w of root's image to nobody: %q", stderr)
	}
}
