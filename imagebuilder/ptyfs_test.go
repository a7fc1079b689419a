package imagebuilder_test

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestBuildPtyfs reads back the fstab and /dev/pts of images built with
// and without base's /sbin/mount_ptyfs. NetBSD 9 hands out ptys through
// /dev/ptm only with ptyfs mounted (ptyfs_vfsops.c:339 installs its
// handler at mount; without it ptm looks up /dev/ptyXX nodes, which images
// lack), so sshd logins, script and tmux failed: an image whose sets can
// mount ptyfs now gets NetBSD's own fstab line for it, which basicrc's
// mount -a mounts on the /dev/pts every image has; so does one whose
// rescue set has /rescue/mount_ptyfs. The stock rescue set has no
// mount_ptyfs, and its fstab no line mount -a would fail on at each boot.
func TestBuildPtyfs(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	rescue := rescueSet(t, "tar")
	b, err := testsets.Bytes([]testsets.Entry{{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./sbin/mount_ptyfs", Mode: 0555, Size: 4}, Data: []byte("elf\n")}}, "tar")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "base.tar")
	if err := os.WriteFile(base, b, 0644); err != nil {
		t.Fatal(err)
	}
	// A rescue set built with mount_ptyfs: a rescue mount looks in
	// /rescue first.
	b, err = testsets.Bytes([]testsets.Entry{{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./rescue/mount_ptyfs", Mode: 0555, Size: 4}, Data: []byte("elf\n")}}, "tar")
	if err != nil {
		t.Fatal(err)
	}
	rescuePtyfs := filepath.Join(t.TempDir(), "rescueptyfs.tar")
	if err := os.WriteFile(rescuePtyfs, b, 0644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		sets  []string
		fstab string
	}{
		{"rescue", []string{rescue}, "/dev/ld0a / ext2fs rw 1 1\n"},
		{"base", []string{rescue, base}, "/dev/ld0a / ext2fs rw 1 1\nptyfs /dev/pts ptyfs rw 0 0\n"},
		{"rescue with mount_ptyfs", []string{rescue, rescuePtyfs}, "/dev/ld0a / ext2fs rw 1 1\nptyfs /dev/pts ptyfs rw 0 0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "root.img")
			cfg := imagebuilder.Config{Sets: tc.sets, Service: loadService(t, "rescue", ""), Timestamp: ts}
			if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
				t.Fatal(err)
			}
			if got := imagecheck.Debugfs(t, img, "cat /etc/fstab"); got != tc.fstab {
				t.Errorf("/etc/fstab = %q, want %q", got, tc.fstab)
			}
			if got := imagecheck.Debugfs(t, img, "stat /dev/pts"); !strings.Contains(got, "Type: directory") || !strings.Contains(got, "Mode:  0755") {
				t.Errorf("/dev/pts: want a directory of mode 0755:\n%s", got)
			}
		})
	}
}
