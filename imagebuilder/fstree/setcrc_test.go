package fstree_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestSetChecksumMismatch: a set whose compressed data fails its
// checksum (gzip's CRC-32, xz's block check) covers every file in it:
// it was refused as a "corrupt or truncated compressed stream after the
// tar end", as if the files read were whole. The error says the archive
// is damaged and its files may be corrupt.
func TestSetChecksumMismatch(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	data := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./big", Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	badCRC := bytes.Clone(gz.Bytes())
	badCRC[len(badCRC)-8] ^= 0xff
	tests := []struct {
		name string
		data []byte
		want string // in the error, after the set's name
	}{
		{"gzip CRC-32", badCRC, "gzip: invalid checksum"},
	}
	for _, check := range []string{"crc32", "crc64", "sha256"} {
		xz, err := exec.LookPath("xz")
		if err != nil {
			t.Logf("xz not installed: only gzip's checksum is tried")
			break
		}
		cmd := exec.Command(xz, "-c", "--check="+check)
		cmd.Stdin = bytes.NewReader(raw.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		// The one block's check ends where the index starts, which the
		// stream footer's backward size (index size / 4 - 1) gives.
		index := len(out) - 12 - int(binary.LittleEndian.Uint32(out[len(out)-8:])+1)*4
		out[index-1] ^= 0xff
		tests = append(tests, struct {
			name string
			data []byte
			want string
		}{"xz " + check, out, "xz block 1 integrity check mismatch: the data is corrupt"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fstree.New().AddArchive(bytes.NewReader(tt.data), "set.tgz")
			want := "set.tgz: the compressed data fails its checksum: the set is damaged, and the files read from it may be corrupt: "
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q...%q", err, want, tt.want)
			}
		})
	}
}
