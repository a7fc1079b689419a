package blk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrNotRaw is wrapped by Open's error (a *FormatError) for an image that
// is a compressed file or in a disk image format other than raw: the
// guest would see the compressed stream or the format's metadata as the
// disk's sectors, and its writes would land in them.
var ErrNotRaw = errors.New("not a raw disk image")

// FormatError is Open's refusal of an image whose first bytes are the
// signature of a compressed file or of a disk image format other than
// raw. It wraps ErrNotRaw.
type FormatError struct {
	// Path is the image's path as given to Open.
	Path string
	// Format names what the image is: "gzip", "xz", "bzip2", "zstd"
	// (Compressed), "qcow2", "VMDK", "VHD", "VHDX" or "VDI".
	Format string
	// Compressed: the file is compressed (and holds a raw image, or
	// another format, once decompressed).
	Compressed bool
}

// Error names the image and its format.
func (e *FormatError) Error() string {
	what := "a " + e.Format + " image"
	if e.Compressed {
		what = e.Format + "-compressed"
	}
	return fmt.Sprintf("disk image %s: %s, %v (it starts with %s's signature; the guest would see the file's bytes as its sectors)", e.Path, what, ErrNotRaw, e.Format)
}

// Unwrap returns ErrNotRaw.
func (e *FormatError) Unwrap() error { return ErrNotRaw }

// signatures are the first bytes of the formats Open refuses. Each is
// checked at its offset exactly: a raw image starts with a boot sector
// (x86 code, an MBR or GPT's protective MBR), a file system's boot block
// (zeroes, or a FAT jump) or a file system's own magic, never with these.
var signatures = []struct {
	format     string
	compressed bool
	off        int
	magic      string
}{
	{"gzip", true, 0, "\x1f\x8b\x08"},
	{"xz", true, 0, "\xfd7zXZ\x00"},
	{"zstd", true, 0, "\x28\xb5\x2f\xfd"},
	{"qcow2", false, 0, "QFI\xfb"},
	{"VMDK", false, 0, "KDMV"},
	{"VMDK", false, 0, "# Disk DescriptorFile"},
	{"VHDX", false, 0, "vhdxfile"},
	// A dynamic or differencing VHD starts with a copy of its 512-byte
	// footer, whose cookie is "conectix". A fixed VHD is a raw image with
	// the footer after its last sector: it starts as the raw image does
	// and opens, the footer one more sector to the guest, harmless past
	// its partitions.
	{"VHD", false, 0, "conectix"},
	// VDI: a text banner ("<<< Oracle VM VirtualBox Disk Image >>>",
	// older names before it) and the signature 0xbeda107f at 0x40.
	{"VDI", false, 0x40, "\x7f\x10\xda\xbe"},
}

// imageFormat names the format whose signature head (an image's first
// bytes, up to a sector) starts with, and says whether it is a
// compression; "" for none.
func imageFormat(head []byte) (format string, compressed bool) {
	// bzip2: "BZh" and the block size, a digit 1-9.
	if len(head) >= 4 && string(head[:3]) == "BZh" && head[3] >= '1' && head[3] <= '9' {
		return "bzip2", true
	}
	for _, s := range signatures {
		if len(head) < s.off+len(s.magic) || string(head[s.off:s.off+len(s.magic)]) != s.magic {
			continue
		}
		if s.format == "VDI" && !bytes.HasPrefix(head, []byte("<<< ")) {
			continue
		}
		return s.format, s.compressed
	}
	return "", false
}

// CheckRaw refuses, with a *FormatError, the image at path of size bytes,
// read through r, when its first sector starts with the signature of a
// compressed file or of another disk image format, as Open does.
func CheckRaw(r io.ReaderAt, size int64, path string) error {
	head := make([]byte, min(size, SectorSize))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("disk image %s: read its first sector: %w", path, err)
	}
	if format, compressed := imageFormat(head); format != "" {
		return &FormatError{Path: path, Format: format, Compressed: compressed}
	}
	return nil
}
