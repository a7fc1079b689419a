package fstree_test

import (
	"bytes"
	"compress/gzip"
	"os/exec"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestCompressedNotTar: a gzip or xz file that holds no tar archive (a
// netbsd-GENERIC.gz given as a set) was "entry 1: corrupt or truncated
// archive: archive/tar: invalid tar header", while the same kernel
// uncompressed was called no set at all. It is said to decompress to no
// tar archive, with what a set must be.
func TestCompressedNotTar(t *testing.T) {
	kernel := append([]byte("\x7fELF\x01\x01\x01"), bytes.Repeat([]byte("kernel text "), 400)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(kernel)
	zw.Close()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"gzip", gz.Bytes(), "k.gz: decompresses (gzip) to something that is not a tar archive, a compressed kernel perhaps: a set must be a .tgz, .tar.xz, .tar or a directory"},
	}
	if _, err := exec.LookPath("xz"); err == nil {
		cmd := exec.Command("xz", "-c")
		cmd.Stdin = bytes.NewReader(kernel)
		xzd, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			data []byte
			want string
		}{"xz", xzd, "k.gz: decompresses (xz) to something that is not a tar archive"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fstree.New().AddArchive(bytes.NewReader(tc.data), "k.gz")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("AddArchive = %v, want %q", err, tc.want)
			}
		})
	}
}
