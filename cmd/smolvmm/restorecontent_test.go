package main

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotOnDisk writes, in dir, a disk image d.img holding content and
// a snapshot d.snap of the counter guest (counting to 5) with that disk,
// taken before the guest runs: the restored guest counts from the start.
func snapshotOnDisk(t *testing.T, dir string, content []byte) (img, snap string) {
	t.Helper()
	img, snap = filepath.Join(dir, "d.img"), filepath.Join(dir, "d.snap")
	if err := os.WriteFile(img, content, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := vmm.New(vmm.Config{Kernel: guests.ForTest(t, "counter"), Append: "n=5 at=2", MemoryMiB: 16, Disks: []blk.Spec{{Path: img}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := os.OpenFile(snap, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Snapshot(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return img, snap
}

// noise is n bytes gzip does not shrink, the same at every call.
func noise(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}

// TestRestoreSetOrKernelDiskAdvice: a restore refused a compressed set or
// kernel given with -d (not the snapshot's disk, and not raw) with a
// boot's advice followed by the restore's: "build a root image from it
// with: smolvmm mkimg ..., and give -d base.img, whose content is then
// checked against the snapshot's", which a new image never passes, and
// "give the kernel to run or bench with -k netbsd.gz, not -d, whose
// content is then checked". It is now told to give the snapshot's disk;
// a compressed disk image is still told how to decompress it.
func TestRestoreSetOrKernelDiskAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	_, snap := snapshotOnDisk(t, dir, make([]byte, 1<<20))
	const restore = ", whose content is then checked against the snapshot's; or restore against the image as it was (or a copy of it), or snapshot again)"
	set := "(decompressed, it is a tar archive, such as a NetBSD set, not a disk: give -d a raw image of the snapshot's disk" + restore
	kernel := "(decompressed, it is an ELF file, such as a NetBSD kernel, not a disk: give -d a raw image of the snapshot's disk" + restore
	run := []string{"run", "--restore", snap, "--net", "none"}
	bench := []string{"bench", "--restore", snap, "--net", "none", "-n", "1", "--warmup", "0"}
	tests := []struct {
		name, file string
		content    []byte
		cmd        []string
		want       string // in the output: bench's results say why its boots failed
	}{
		{"gzip set", "base.tgz", gzipped(t, append(setTar(t), noise(4096)...)), run, set},
		{"gzip kernel", "netbsd.gz", gzipped(t, append(elfFile(), noise(4096)...)), run, kernel},
		{"xz kernel", "netbsd.xz", xzed(t, append(elfFile(), noise(4096)...), 1<<20), run, kernel},
		{"bench, gzip set", "base.tgz", gzipped(t, append(setTar(t), noise(4096)...)), bench, set},
		{"gzip disk", "disk.img.gz", gzipped(t, make([]byte, 1<<20)), run,
			"(decompress it, keeping the original, with: gunzip -k disk.img.gz, and give -d disk.img" + restore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, tt.file), tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, status := runCLIIn(t, dir, append(tt.cmd, "-d", tt.file)...)
			if status != 1 || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("status %d, output\n%s%s\nwant status 1 and %s", status, out, stderr, tt.want)
			}
			if strings.Contains(out+stderr, "mkimg") || strings.Contains(out+stderr, "with -k") {
				t.Errorf("a restore was advised a new image or -k:\n%s%s", out, stderr)
			}
		})
	}
}
