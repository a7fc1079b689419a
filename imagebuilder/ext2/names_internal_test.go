package ext2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

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

// putUnchecked puts n in directory dir under name, past fstree's checks
// (Put refuses a name over MaxNameLen): a tree made some other way, or by
// a later fstree, may hold any name, and the writer's own check is the
// one under test.
func putUnchecked(dir *fstree.Node, name string, n *fstree.Node) {
	f := reflect.ValueOf(dir).Elem().FieldByName("children")
	children := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	children.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(n))
}

// TestWriteRefusesLongName: newPlan checks each name of the tree it
// walks, so Write refuses a tree holding a name over 255 bytes with a
// ContentError naming its path, before any block is written, whatever
// the tree let in (TestCheckName tests the check alone; with newPlan's
// call removed, the name was written with its length wrapped).
func TestWriteRefusesLongName(t *testing.T) {
	long := strings.Repeat("a", fstree.MaxNameLen+1)
	for _, tt := range []struct {
		name string
		dir  string // where the long name is put
	}{
		{"in the root", ""},
		{"in a directory", "etc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := fstree.New()
			mustPut(t, tr, "etc/rc", fstree.NewFile(0644, []byte("x")))
			dir, err := tr.Get(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			putUnchecked(dir, long, fstree.NewFile(0644, []byte("y")))
			want := "/" + long
			if tt.dir != "" {
				want = "/" + tt.dir + want
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *ContentError
				if !errors.As(err, &ce) || ce.Path != want || !strings.Contains(err.Error(), "is 256 bytes, more than the 255 an ext2 directory entry holds") {
					t.Errorf("%s: %v, want a ContentError for %.30s... saying the name is 256 bytes", what, err, want)
				}
			}
			_, err = newPlan(tr, 1024)
			check("newPlan", err)
			f, err := os.Create(filepath.Join(t.TempDir(), "root.img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			check("Write", Write(f, tr, Options{Size: 4 << 20}))
		})
	}
}
