package blk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestOpenRecorded: an image whose first sector starts with another
// format's signature, which Open refuses, is opened by OpenRecorded, locked
// and sized as Open does; Open's other refusals stand.
func TestOpenRecorded(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		head   string
		format string
	}{
		{"gzip", "\x1f\x8b\x08\x00", "gzip"},
		{"qcow2", "QFI\xfb", "qcow2"},
		{"raw", "\x00\x00\x00\x00", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := make([]byte, 4096)
			copy(img, tt.head)
			p := filepath.Join(dir, tt.name+".img")
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
			var fe *blk.FormatError
			d, err := blk.Open(p, blk.Options{})
			if tt.format != "" && (!errors.As(err, &fe) || fe.Format != tt.format) {
				t.Fatalf("Open = %v, want a FormatError for %s", err, tt.format)
			}
			if err == nil {
				d.Close()
			}
			d, err = blk.OpenRecorded(p, blk.Options{})
			if err != nil {
				t.Fatalf("OpenRecorded = %v, want it open", err)
			}
			defer d.Close()
			if d.Capacity() != 8 || d.Serial() != blk.DeriveSerial(p) {
				t.Errorf("capacity %d sectors, serial %q; want 8 and %q", d.Capacity(), d.Serial(), blk.DeriveSerial(p))
			}
			if d2, err := blk.OpenRecorded(p, blk.Options{ReadOnly: true}); !errors.Is(err, blk.ErrInUse) {
				if d2 != nil {
					d2.Close()
				}
				t.Errorf("second open while open read-write: %v, want ErrInUse", err)
			}
		})
	}
	if d, err := blk.OpenRecorded(dir, blk.Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file (it is a directory)") {
		if d != nil {
			d.Close()
		}
		t.Errorf("OpenRecorded(a directory) = %v, want it refused as not a regular file", err)
	}
}
