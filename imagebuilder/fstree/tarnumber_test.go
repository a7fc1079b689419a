package fstree

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

// TestTarEntryNumbers: errors number a set's entries from 1, as `tar tv`
// lists them, so "entry 2" is the second line of the listing.
func TestTarEntryNumbers(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	err := New().AddTar(bytes.NewReader(buf.Bytes()), "base.tar")
	if err == nil || !strings.HasPrefix(err.Error(), "base.tar: entry 2 (../escape): ") {
		t.Errorf("AddTar = %v, want the second entry named entry 2", err)
	}
	// A corrupt first header is entry 1.
	bad := bytes.Repeat([]byte{0xff}, 1024)
	err = New().AddTar(bytes.NewReader(bad), "rescue.tar")
	if err == nil || !strings.HasPrefix(err.Error(), "rescue.tar: entry 1: corrupt or truncated archive") {
		t.Errorf("AddTar(garbage) = %v, want entry 1", err)
	}
}
