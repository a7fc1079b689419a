package bootelf

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

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
		{"gzip", elftest.Gzip([]byte("kernel")), ContentGzip, `the file starts with "\x1f\x8b\b\x00", not "\x7fELF": it is gzip data`},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F"), ContentXZ, `the file starts with "\xfd7zX", not "\x7fELF": it is xz-compressed data`},
		{"bzip2", []byte("BZh91AY&SY"), ContentBzip2, `the file starts with "BZh9", not "\x7fELF": it is bzip2-compressed data`},
		{"zstd", []byte("\x28\xb5\x2f\xfd\x24\x05"), ContentZstd, `the file starts with "(\xb5/\xfd", not "\x7fELF": it is zstd-compressed data`},
		{"ext2", elftest.Ext2Image(4096), ContentExt2, `the file starts with "\x00\x00\x00\x00", not "\x7fELF": it is an ext2 file system image (magic 0xef53 at offset 1080)`},
		{"tar", elftest.TarSet(), ContentTar, `the file starts with "./et", not "\x7fELF": it is a tar archive ("ustar" at offset 257)`},
		{"text", []byte("hello, no kernel here"), ContentUnknown, `the file starts with "hell", not "\x7fELF"`},
		{"BZh without a block size", []byte("BZhx and more"), ContentUnknown, `the file starts with "BZhx", not "\x7fELF"`},
		{"ext2 magic cut short", elftest.Ext2Image(4096)[:1081], ContentUnknown, `the file starts with "\x00\x00\x00\x00", not "\x7fELF"`},
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
	b := elftest.Ext2Image(4096)
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
