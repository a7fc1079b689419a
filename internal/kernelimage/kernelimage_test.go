package kernelimage

import (
	"bytes"
	"compress/gzip"
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
