package ext2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestCheckName: a directory entry's name length is one byte, so a name
// over 255 bytes was written with its length wrapped (a 300-byte name
// became a clean image's 44-byte one). The writer refuses it, naming the
// path, whatever the tree let in.
func TestCheckName(t *testing.T) {
	long := strings.Repeat("a", fstree.MaxNameLen+1)
	tests := []struct {
		path    string
		wantErr string
	}{
		{"etc/" + strings.Repeat("a", fstree.MaxNameLen), ""},
		{strings.Repeat("b", fstree.MaxNameLen), ""},
		{"etc/" + long, `/etc/` + long + `: name "aaaaaaaaaaaaaaaaaaaa"... is 256 bytes, more than the 255 an ext2 directory entry holds`},
		{long + "/x", ""}, // its directory's own entry is the one refused
		{long, "/" + long + `: name "aaaaaaaaaaaaaaaaaaaa"... is 256 bytes`},
	}
	for _, tt := range tests {
		err := checkName(tt.path)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%.30s...: %v, want no error", tt.path, err)
			}
			continue
		}
		var ce *ContentError
		if !errors.As(err, &ce) || ce.Path != "/"+tt.path || !strings.HasPrefix(err.Error(), tt.wantErr) {
			t.Errorf("%.30s...: %v, want a ContentError for /%s starting %q", tt.path, err, tt.path, tt.wantErr)
		}
	}
}

// TestLongestNameEntry: a name of 255 bytes, the most, is written whole:
// its entry's name length is 255.
func TestLongestNameEntry(t *testing.T) {
	name := strings.Repeat("n", fstree.MaxNameLen)
	tr := fstree.New()
	mustPut(t, tr, name, fstree.NewFile(0644, []byte("x")))
	p, err := newPlan(tr, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, b := range p.byNode[tr.Root].dir {
		for off := 0; off+8 <= len(b); {
			rl := int(binary.LittleEndian.Uint16(b[off+4:]))
			if n := int(b[off+6]); off+8+n <= len(b) && bytes.Equal(b[off+8:off+8+n], []byte(name)) {
				found = true
			}
			if rl == 0 {
				break
			}
			off += rl
		}
	}
	if !found {
		t.Errorf("no entry of the %d-byte name in the root directory", len(name))
	}
}
