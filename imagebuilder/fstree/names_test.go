package fstree_test

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestTarEntryNameEscaped: an entry's name in an error reaches the
// terminal escaped: a set's bytes (a hostile one's escape sequences) were
// printed as they stood.
func TestTarEntryNameEscaped(t *testing.T) {
	tests := []struct {
		name, entry, want string
	}{
		{"escape sequence", "./\x1b[2J/../x", `set.tar: entry 1 ("./\x1b[2J/../x"): `},
		{"newline", "/etc/\nfake: ok", `set.tar: entry 1 ("/etc/\nfake: ok"): `},
		{"printable", "/etc/passwd", "set.tar: entry 1 (/etc/passwd): "},
	}
	for _, tt := range tests {
		var set bytes.Buffer
		tw := tar.NewWriter(&set)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: tt.entry, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		err := fstree.New().AddArchive(bytes.NewReader(set.Bytes()), "set.tar")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: AddArchive = %v, want it to start %q", tt.name, err, tt.want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Errorf("%s: %q holds the name's control bytes", tt.name, err)
		}
	}
}
