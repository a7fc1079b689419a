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
	}
	for _, tt := range tests {
		got, gz, err := Decompress(tt.in)
		if string(got) != tt.want || gz != tt.gzipped || (err != nil) != tt.err {
			t.Errorf("%s: got %q gzipped=%v err=%v", tt.name, got, gz, err)
		}
	}
}
