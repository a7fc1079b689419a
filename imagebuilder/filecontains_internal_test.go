package imagebuilder

import (
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestFileContains: checkShell looks for init's "/etc/rc\x00" across the
// file's extents, holes read as zeros: the string may straddle two
// extents, or end in a hole (its NUL there), and is not found in data
// past the file's size.
func TestFileContains(t *testing.T) {
	needle := []byte("/etc/rc\x00")
	for _, tc := range []struct {
		name    string
		size    int64
		extents []fstree.Extent
		want    bool
	}{
		{"one extent", 20, []fstree.Extent{{Off: 0, Data: []byte("xx/etc/rc\x00yy")}}, true},
		{"none", 20, []fstree.Extent{{Off: 0, Data: []byte("xx/etc/rc.local\x00")}}, false},
		{"across extents", 30, []fstree.Extent{{Off: 0, Data: []byte("abc/et")}, {Off: 6, Data: []byte("c/rc\x00z")}}, true},
		{"across three extents", 30, []fstree.Extent{{Off: 0, Data: []byte("a/e")}, {Off: 3, Data: []byte("tc")}, {Off: 5, Data: []byte("/rc\x00")}}, true},
		{"NUL in a hole", 30, []fstree.Extent{{Off: 0, Data: []byte("ab/etc/rc")}, {Off: 20, Data: []byte("q")}}, true},
		{"NUL in the trailing hole", 30, []fstree.Extent{{Off: 0, Data: []byte("ab/etc/rc")}}, true},
		{"file ends before the NUL", 9, []fstree.Extent{{Off: 0, Data: []byte("ab/etc/rc")}}, false},
		{"a hole splits it", 30, []fstree.Extent{{Off: 0, Data: []byte("/et")}, {Off: 4, Data: []byte("c/rc\x00")}}, false},
		{"past the size", 5, []fstree.Extent{{Off: 0, Data: []byte("/etc/rc\x00")}}, false},
		{"empty", 0, nil, false},
	} {
		n := &fstree.Node{Type: fstree.Regular, Size: tc.size, Extents: tc.extents}
		if got := fileContains(n, needle); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
