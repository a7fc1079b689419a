package fstree_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestTarErrorOffsets: a set that breaks off is reported at the byte of
// the (decompressed) archive where it did, for a header as for a member's
// content. "at byte N" counted from the member's content, read as an
// offset in the archive, and a header gave no offset at all.
func TestTarErrorOffsets(t *testing.T) {
	sh := bytes.Repeat([]byte{'x'}, 300_000)
	// ./a: header 0, data 512; ./bin/sh: header 1024, data 1536.
	full := tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: "./a", Linkname: "data", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "./bin/sh", Linkname: string(sh), Mode: 0o755})
	gzOf := func(b []byte) []byte {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		return z.Bytes()
	}
	const inContent = "t: entry 2 (./bin/sh): reading content (300000 bytes): truncated or corrupt archive at byte 97408 of the "
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"cut in the content", full[:1536+95872], inContent + "archive (byte 95872 of its content): unexpected EOF"},
		{"cut in the header", full[:1024+100], "t: entry 2: corrupt or truncated archive at byte 1124 of the archive: unexpected EOF"},
		{"gzipped, cut in the content", gzOf(full[:1536+95872]), inContent + "decompressed archive (byte 95872 of its content): unexpected EOF"},
		{"gzipped, cut in the header", gzOf(full[:1024+100]), "t: entry 2: corrupt or truncated archive at byte 1124 of the decompressed archive: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fstree.New().AddArchive(bytes.NewReader(tt.data), "t")
			if err == nil || err.Error() != tt.want {
				t.Errorf("AddArchive:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}
