package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreDiskGuestWroteSignature: a guest that wrote a gzip stream at
// the start of its disk (tar czf /dev/rld0d) before its snapshot is
// restored with that disk, the snapshot's own or a copy, though a cold
// boot refuses the image as gzip-compressed; another image is still
// refused, saying it is not raw when it is not.
func TestRestoreDiskGuestWroteSignature(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), MemoryMiB: 16, Disks: []blk.Spec{{Path: img}}})
	if err != nil {
		t.Fatal(err)
	}
	// What the disk's pwrite of the guest's sector 0 leaves in the image.
	writeAt(t, img, 0, []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0})
	path := snapshotFile(t, m) // memhole_test.go
	m.Close()
	if err := os.Chmod(path, 0o600); err != nil { // a snapshot whose disks Restore opens itself
		t.Fatal(err)
	}
	content, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "copy.img")
	if err := os.WriteFile(cp, content, 0o644); err != nil {
		t.Fatal(err)
	}
	qcow := filepath.Join(dir, "other.img")
	if err := os.WriteFile(qcow, append([]byte("QFI\xfb"), content[4:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other-gzip.img")
	changed := append([]byte(nil), content...)
	changed[4096] = 1
	if err := os.WriteFile(other, changed, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		disks  []blk.Spec
		modify bool   // the snapshot's image changed after it, its signature kept
		format string // of the refusal's blk.FormatError; "" for none
	}{
		{name: "the snapshot's own disk"},
		{name: "the snapshot's image given", disks: []blk.Spec{{Path: img}}},
		{name: "a copy", disks: []blk.Spec{{Path: cp}}},
		{name: "another gzip-signed image", disks: []blk.Spec{{Path: other}}, format: "gzip"},
		{name: "a qcow2 image", disks: []blk.Spec{{Path: qcow}}, format: "qcow2"},
		{name: "the snapshot's image modified", disks: []blk.Spec{{Path: img}}, modify: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.modify {
				writeAt(t, img, 8192, []byte{1})
				// A later modification time than the snapshot's
				// record, whatever the clock's granularity.
				fi, err := os.Stat(img)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(img, fi.ModTime(), fi.ModTime().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			r, err := vmm.Restore(vmm.Config{Disks: tt.disks}, path)
			if !tt.modify && tt.format == "" {
				if err != nil {
					t.Fatalf("Restore = %v, want it restored", err)
				}
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatal("restored, want ErrDiskChanged")
			}
			var fe *blk.FormatError
			isFormat := errors.As(err, &fe)
			if !errors.Is(err, vmm.ErrDiskChanged) || errors.Is(err, blk.ErrNotRaw) != (tt.format != "") ||
				(isFormat && fe.Format != tt.format) {
				t.Fatalf("Restore = %v, want ErrDiskChanged, and a FormatError %q (%t)", err, tt.format, isFormat)
			}
		})
	}

	// A cold boot on the image still refuses it.
	m, err = vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), MemoryMiB: 16, Disks: []blk.Spec{{Path: cp}}})
	if err == nil {
		m.Close()
		t.Fatal("a cold boot on the gzip-signed image: built, want refused")
	}
	var fe *blk.FormatError
	if !errors.As(err, &fe) || fe.Format != "gzip" || !strings.Contains(err.Error(), "disk image "+cp+": gzip-compressed, not a raw disk image") {
		t.Fatalf("cold boot: %v, want the image refused as gzip-compressed", err)
	}
}

// writeAt writes b at off into the file at path.
func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
