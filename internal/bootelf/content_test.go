package bootelf

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

// gzipOf is data gzip-compressed.
func gzipOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tarOf is a tar archive holding one file, as a NetBSD set does.
func tarOf(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "./etc/motd", Mode: 0o644, Size: 5, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ext2Image is the start of an ext2 image: a boot block of zeroes, then
// the superblock with its magic 0xef53 (little-endian) at byte 56.
func ext2Image() []byte {
	b := make([]byte, 4096)
	b[1024+56], b[1024+57] = 0x53, 0xef
	return b
}

// TestReadHeaderNamesContent: a file given as a kernel that is compressed,
// a file system image or a tar archive is named as that, after its first
// bytes; it said only `the file starts with "\x00\x00\x00\x00"` of an
// ext2 image, and nothing of xz.
func TestReadHeaderNamesContent(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want Content
		msg  string
	}{
		{"gzip", gzipOf(t, []byte("kernel")), ContentGzip, `the file starts with "\x1f\x8b\b\x00", not "\x7fELF": it is gzip data`},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F"), ContentXZ, `the file starts with "\xfd7zX", not "\x7fELF": it is xz-compressed data`},
		{"bzip2", []byte("BZh91AY&SY"), ContentBzip2, `the file starts with "BZh9", not "\x7fELF": it is bzip2-compressed data`},
		{"zstd", []byte("\x28\xb5\x2f\xfd\x24\x05"), ContentZstd, `the file starts with "(\xb5/\xfd", not "\x7fELF": it is zstd-compressed data`},
		{"ext2", ext2Image(), ContentExt2, `the file starts with "\x00\x00\x00\x00", not "\x7fELF": it is an ext2 file system image (magic 0xef53 at offset 1080)`},
		{"tar", tarOf(t), ContentTar, `the file starts with "./et", not "\x7fELF": it is a tar archive ("ustar" at offset 257)`},
		{"text", []byte("hello, no kernel here"), ContentUnknown, `the file starts with "hell", not "\x7fELF"`},
		{"BZh without a block size", []byte("BZhx and more"), ContentUnknown, `the file starts with "BZhx", not "\x7fELF"`},
		{"ext2 magic cut short", ext2Image()[:1081], ContentUnknown, `the file starts with "\x00\x00\x00\x00", not "\x7fELF"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Identify(bytes.NewReader(tc.data), uint64(len(tc.data))); got != tc.want {
				t.Errorf("Identify = %v (%d), want %v (%d)", got, got, tc.want, tc.want)
			}
			_, err := ReadHeader(bytes.NewReader(tc.data), uint64(len(tc.data)))
			if !errors.Is(err, ErrNotELF) {
				t.Fatalf("ReadHeader: %v, want ErrNotELF", err)
			}
			if !strings.HasSuffix(err.Error(), tc.msg) {
				t.Errorf("ReadHeader: %v\nwant it to end %s", err, tc.msg)
			}
		})
	}
}

// TestIdentifyELF: an ELF file is no other kind, whatever lies at the
// offsets of the other kinds' magic.
func TestIdentifyELF(t *testing.T) {
	b := ext2Image()
	copy(b, "\x7fELF")
	copy(b[257:], "ustar")
	if got := IdentifyBytes(b); got != ContentUnknown {
		t.Errorf("IdentifyBytes(ELF) = %v, want ContentUnknown", got)
	}
}

// TestContentCompressed: only the compressions are compressed.
func TestContentCompressed(t *testing.T) {
	for c, want := range map[Content]bool{ContentUnknown: false, ContentGzip: true, ContentXZ: true, ContentBzip2: true,
		ContentZstd: true, ContentExt2: false, ContentTar: false} {
		if c.Compressed() != want {
			t.Errorf("%v.Compressed() = %v, want %v", c, !want, want)
		}
	}
}
