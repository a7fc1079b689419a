package fstree_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestGzipTrailer: a .tgz with zero bytes after its gzip member (the
// padding of a file written in tape blocks, which gzip -t accepts) was
// refused as "corrupt or truncated compressed stream after the tar end:
// gzip: invalid header". Zero bytes after the last member are read as
// padding; further members are read as gzip reads them; anything else
// after the last member is still refused, naming its offset.
func TestGzipTrailer(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, name := range []string{"./a", "./b"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(name))})
		tw.Write([]byte(name))
	}
	tw.Close()
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	badCRC := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-8] ^= 0xff
		return b
	}
	one := gz(raw.Bytes())
	half := raw.Len() / 2
	two := cat(gz(raw.Bytes()[:half]), gz(raw.Bytes()[half:]))
	tests := []struct {
		name string
		data []byte
		want string // in the error; "" for none
	}{
		{"no padding", one, ""},
		{"one zero byte", cat(one, make([]byte, 1)), ""},
		{"padded to 10240", cat(one, make([]byte, 10240-len(one))), ""},
		{"two members", two, ""},
		{"two members, padded", cat(two, make([]byte, 512)), ""},
		{"an empty member after", cat(one, gz(nil), make([]byte, 3)), ""},
		{"garbage after", cat(one, []byte("x")), "corrupt or truncated compressed stream after the tar end: byte " + strconv.Itoa(len(one)) + ", after the last gzip member, is 0x78: only zero bytes (padding) may follow it"},
		{"garbage after padding", cat(one, make([]byte, 100), []byte{1}), "byte " + strconv.Itoa(len(one)+100) + ", after the last gzip member, is 0x01"},
		{"half a magic after", cat(one, []byte{0x1f}), "is 0x1f: only zero bytes"},
		{"truncated member after", cat(one, gz([]byte("more"))[:5]), "gzip member at byte " + strconv.Itoa(len(one)) + ": unexpected EOF"},
		// Past its header, a later member's data and trailer: these
		// errors came without the member's offset.
		{"member after truncated in its data", cat(one, gz(bytes.Repeat([]byte("more"), 100))[:14]), "gzip member at byte " + strconv.Itoa(len(one)) + ": unexpected EOF"},
		{"member after with a bad checksum", cat(one, badCRC(gz([]byte("more")))), "gzip member at byte " + strconv.Itoa(len(one)) + ": gzip: invalid checksum"},
		{"second half's member truncated", cat(gz(raw.Bytes()[:half]), gz(raw.Bytes()[half:])[:20]), "gzip member at byte " + strconv.Itoa(len(gz(raw.Bytes()[:half]))) + ": unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(tt.data), "set.tgz")
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "set.tgz: ") {
					t.Fatalf("got %v, want an error naming the set and containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"a", "b"} {
				if n, err := tr.Get(p); err != nil || string(n.Content()) != "./"+p {
					t.Errorf("%s: %+v %v", p, n, err)
				}
			}
		})
	}
}
