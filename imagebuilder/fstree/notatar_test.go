package fstree_test

import (
	"archive/tar"
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
	if xzd := xzOf(t, kernel); xzd != nil {
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

// TestCompressedTwice: a set compressed twice (gzip -c base.tgz >
// dbl.tgz) was said to decompress to "something that is not a tar
// archive, a compressed kernel perhaps". The decompressed stream's magic
// tells it: the file is said to be compressed twice, and to be
// decompressed once.
func TestCompressedTwice(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi\n"))
	tw.Close()
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	junk := bytes.Repeat([]byte("compressed "), 100)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"gzip in gzip", gz(gz(tb.Bytes())), "dbl.tgz: decompresses (gzip) to gzip data, not a tar archive: the file is compressed twice; decompress it once and give the .tgz it holds"},
		{"xz in gzip", gz(append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, junk...)), "dbl.tgz: decompresses (gzip) to xz data, not a tar archive: the file is compressed twice; decompress it once and give the .tar.xz it holds"},
		{"bzip2 in gzip", gz(append([]byte("BZh91AY&SY"), junk...)), "dbl.tgz: decompresses (gzip) to bzip2 data, not a tar archive: the file is compressed twice"},
		{"zstd in gzip", gz(append([]byte{0x28, 0xb5, 0x2f, 0xfd}, junk...)), "dbl.tgz: decompresses (gzip) to zstd data, not a tar archive: the file is compressed twice"},
	}
	if xzd := xzOf(t, gz(tb.Bytes())); xzd != nil {
		cases = append(cases, struct {
			name string
			data []byte
			want string
		}{"gzip in xz", xzd, "dbl.tgz: decompresses (xz) to gzip data, not a tar archive: the file is compressed twice"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fstree.New().AddArchive(bytes.NewReader(tc.data), "dbl.tgz")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("AddArchive = %v, want %q", err, tc.want)
			}
		})
	}
	// Once is a set; cut within its first tar header, it is still a
	// truncated one (the look at those bytes keeps the gzip error).
	once := gz(tb.Bytes())
	if err := fstree.New().AddArchive(bytes.NewReader(once), "once.tgz"); err != nil {
		t.Errorf("AddArchive of the set compressed once: %v", err)
	}
	err := fstree.New().AddArchive(bytes.NewReader(once[:30]), "cut.tgz")
	if err == nil || !strings.Contains(err.Error(), "cut.tgz: entry 1: corrupt or truncated archive at byte 112 of the decompressed archive: unexpected EOF") {
		t.Errorf("AddArchive of a cut set = %v, want it truncated", err)
	}
}

// xzOf is data compressed by the xz command, or nil when there is none.
func xzOf(t *testing.T, data []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		return nil
	}
	cmd := exec.Command("xz", "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
