package kernelimage

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func TestDecompress(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("kernel bytes"))
	zw.Close()
	tests := []struct {
		name    string
		in      []byte
		want    string
		gzipped bool
		err     bool
	}{
		{"plain", []byte("\x7fELF..."), "\x7fELF...", false, false},
		{"gzip", z.Bytes(), "kernel bytes", true, false},
		{"truncated gzip", z.Bytes()[:z.Len()-6], "", true, true},
		{"gzip magic only", []byte{0x1f, 0x8b}, "", true, true},
		{"empty", nil, "", false, false},
		// libsa's cread reads member after member, then passes bytes
		// that are not gzip data on as they stand.
		{"two members", bytes.Join([][]byte{z.Bytes(), z.Bytes()}, nil), "kernel byteskernel bytes", true, false},
		{"padded with zeros", bytes.Join([][]byte{z.Bytes(), {0, 0, 0, 0}}, nil), "kernel bytes\x00\x00\x00\x00", true, false},
		{"lone 0x1f after the member", bytes.Join([][]byte{z.Bytes(), {0x1f}}, nil), "kernel bytes", true, false},
		{"0x1f and other bytes after the member", bytes.Join([][]byte{z.Bytes(), []byte("\x1fxy")}, nil), "kernel bytesxy", true, false},
		{"second member corrupt", bytes.Join([][]byte{z.Bytes(), z.Bytes()[:12]}, nil), "", true, true},
	}
	for _, tt := range tests {
		got, gz, err := Decompress(tt.in)
		if string(got) != tt.want || gz != tt.gzipped || (err != nil) != tt.err {
			t.Errorf("%s: got %q gzipped=%v err=%v", tt.name, got, gz, err)
		}
	}
}

// TestDecompressBoundsPlain: MaxSize bounds a plain image as it bounds a
// gunzipped one; a plain one past it was returned as it stood.
func TestDecompressBoundsPlain(t *testing.T) {
	tests := []struct {
		name string
		size int
		err  bool
	}{
		{"at the limit", MaxSize, false},
		{"past the limit", MaxSize + 1, true},
	}
	for _, tt := range tests {
		// Fresh zero pages from the OS: neither make nor Decompress
		// touches most of them.
		raw := make([]byte, tt.size)
		copy(raw, "\x7fELF")
		out, gz, err := Decompress(raw)
		if (err != nil) != tt.err || gz {
			t.Errorf("%s: gzipped=%v err=%v, want an error %v", tt.name, gz, err, tt.err)
		}
		if err != nil && !strings.Contains(err.Error(), "512 MiB") {
			t.Errorf("%s: err %q does not name the limit", tt.name, err)
		}
		if err == nil && len(out) != tt.size {
			t.Errorf("%s: %d bytes back, want %d", tt.name, len(out), tt.size)
		}
	}
}
