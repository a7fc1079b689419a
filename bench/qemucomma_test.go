package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
)

// TestQEMUCommaPaths: QEMU boots a kernel and a disk whose names hold a
// comma, the disk's a colon too and given relative, under every QEMU
// target bench compares with. -drive file=c,d.img made QEMU open "c" and
// fail, file=c:d.img made it look for a protocol "c"; -kernel takes its
// path whole.
func TestQEMUCommaPaths(t *testing.T) {
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-x86)", QEMUBinary)
	}
	dir := filepath.Join(t.TempDir(), "a,b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vblk, err := os.ReadFile(guests.ForTest(t, "vblk"))
	if err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(dir, "k,1.elf")
	if err := os.WriteFile(kernel, vblk, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	disk := "c:x,d.img"
	img, err := guests.WriteVblkDisk(disk)
	if err != nil {
		t.Fatal(err)
	}
	// A read-only disk: every target boots the same, unwritten image.
	targets, skipped, err := QEMUTargets(QEMUSetup{Kernel: kernel, Append: "seq=1", MemoryMiB: 64,
		Disks: []QEMUDisk{{Path: disk, ReadOnly: true}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		t.Logf("skipped %s", s)
	}
	for _, target := range targets {
		t.Run(target.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			boot, err := RunBoot(ctx, target, BootOptions{Timeout: time.Minute})
			if err != nil {
				t.Fatalf("%v (command %q)", err, target.Command())
			}
			for _, want := range []string{"vblk: read-only disk, write status 1\r\n", "vblk: ok\r\n"} {
				if !strings.Contains(string(boot.Output), want) {
					t.Errorf("console lacks %q:\n%s", want, boot.Output)
				}
			}
		})
	}
	if b, err := os.ReadFile(disk); err != nil || string(b) != string(img) {
		t.Errorf("read-only disk changed (%v)", err)
	}
}
