package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestCLIRestoreDiskGuestWroteSignature: vmm restores a snapshot whose
// guest wrote a gzip stream's signature on its disk (tar czf /dev/rld0d
// leaves 1f 8b 08 at offset 0), by the disk's recorded identity or
// content; the CLI still refused a copy of that disk given with -d to
// run --restore and bench --restore, checking it for the raw format as a
// boot's. It now leaves that to the restore, and a qcow2 file given with
// -d, which the restore refuses, is still told the conversion. A cold
// boot on the image is refused as before.
func TestCLIRestoreDiskGuestWroteSignature(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	dir := t.TempDir()
	img, snap := filepath.Join(dir, "d.img"), filepath.Join(dir, "d.snap")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// Snapshotted before it runs, once the disk holds what a guest's
	// write of a gzip stream to its sector 0 leaves: the restored guest
	// counts from the start to its end.
	m, err := vmm.New(vmm.Config{Kernel: kernel, Append: "n=5 at=2", MemoryMiB: 16, Disks: []blk.Spec{{Path: img}}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0}, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	sf, err := os.OpenFile(snap, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	_, err = m.Snapshot(sf)
	sf.Close()
	m.Close()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	content, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runCopy, benchCopy := file("run-copy.img", content), file("bench-copy.img", content)
	// A qcow2 header where the image's first bytes were: the same size,
	// another content.
	qcow := file("q.qcow2", append([]byte("QFI\xfb"), content[4:]...))
	qcowRaw := filepath.Join(dir, "q.raw")
	conversion := "(convert it to a raw image with: qemu-img convert -O raw " + qcow + " " + qcowRaw + ", and give -d " + qcowRaw

	const counted = "count 1\r\ncount 2\r\ncount 3\r\ncount 4\r\ncount 5\r\ncounter: done\r\n"
	tests := []struct {
		name   string
		args   []string
		status int
		stdout string   // run's whole output; "" for bench's, not checked
		want   []string // in stderr, or stdout: bench's results say why its boots failed
	}{
		// The counter's debug-exit 0 is status 1.
		{name: "run --restore, the snapshot's own disk", args: []string{"run", "--restore", snap}, status: 1, stdout: counted},
		{name: "run --restore -d a copy", args: []string{"run", "--restore", snap, "-d", runCopy}, status: 1, stdout: counted},
		{name: "bench --restore -d a copy", args: []string{"bench", "--restore", snap, "-d", benchCopy, "-n", "1", "--warmup", "0"}, status: 0},
		{name: "run --restore -d a qcow2 file", args: []string{"run", "--restore", snap, "-d", qcow}, status: 1,
			want: []string{"disk image changed since the snapshot", "disk image " + qcow + ": a qcow2 image, not a raw disk image", conversion}},
		{name: "bench --restore -d a qcow2 file", args: []string{"bench", "--restore", snap, "-d", qcow, "-n", "1", "--warmup", "0"}, status: 1,
			want: []string{"disk image " + qcow + ": a qcow2 image, not a raw disk image", conversion}},
		{name: "cold boot on a copy", args: []string{"run", "-k", kernel, "-m", "16", "-d", runCopy}, status: 1,
			want: []string{"disk image " + runCopy + ": gzip-compressed, not a raw disk image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, status := runCLI(t, append(tt.args, "--net", "none")...) // snapshot_test.go
			if status != tt.status || tt.stdout != "" && out != tt.stdout {
				t.Fatalf("status %d, stdout %q, stderr:\n%s\nwant status %d, stdout %q", status, out, stderr, tt.status, tt.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+stderr, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, stderr)
				}
			}
		})
	}
}

// TestDiskIndex: the disk a restore's refusal names, whether the machine
// opened it (ldN) or checked it against the snapshot (ldN (disk image P)).
func TestDiskIndex(t *testing.T) {
	tests := []struct {
		err  error
		n    int
		isOK bool
	}{
		{&vmm.Error{Op: "ld0", Field: "Disks", Err: blk.ErrNotWritable}, 0, true},
		{&vmm.Error{Op: "ld12 (disk image a b.img)", Field: "Disks", Err: vmm.ErrDiskChanged}, 12, true},
		{&vmm.Error{Op: "restore", Field: "Disks", Err: vmm.ErrSnapshotDevices}, 0, false},
		{&vmm.Error{Op: "ld1", Field: "Devices", Err: vmm.ErrSnapshotDevices}, 0, false},
		{&vmm.Error{Op: "ldx", Field: "Disks", Err: blk.ErrNotWritable}, 0, false},
		{blk.ErrNotWritable, 0, false},
	}
	for _, tt := range tests {
		if n, ok := diskIndex(tt.err); n != tt.n || ok != tt.isOK {
			t.Errorf("diskIndex(%v) = %d, %t; want %d, %t", tt.err, n, ok, tt.n, tt.isOK)
		}
	}
}
