package setname

import (
	"strings"
	"testing"
)

// TestBase: a set's name is its archive's name without the extension,
// as each reader takes it; a name with no extension, or one that is
// only an extension, is kept whole.
func TestBase(t *testing.T) {
	tests := []struct {
		name                string
		release, read, both string
	}{
		{"rescue", "rescue", "rescue", "rescue"},
		{"rescue.tgz", "rescue", "rescue", "rescue"},
		{"base.tar.xz", "base", "base", "base"},
		{"base.tar.gz", "base", "base", "base"},
		{"base.txz", "base", "base", "base"},
		// bzip2: a release may ship it, the builder reads none.
		{"base.tar.bz2", "base", "base.tar.bz2", "base"},
		{"base.tbz", "base", "base.tbz", "base"},
		// A plain tar: the builder reads one, no release ships one.
		{"mine.tar", "mine.tar", "mine", "mine"},
		{".tgz", ".tgz", ".tgz", ".tgz"},
		{"x.tgz.tar", "x.tgz.tar", "x.tgz", "x.tgz"},
		{"etc.zip", "etc.zip", "etc.zip", "etc.zip"},
		{"rescue.TGZ", "rescue.TGZ", "rescue.TGZ", "rescue.TGZ"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			list string
			e    Exts
			want string
		}{{"Release", Release, tt.release}, {"Readable", Readable, tt.read}, {"Any", Any, tt.both}} {
			base, ok := c.e.Cut(tt.name)
			if base != c.want || ok != (c.want != tt.name) {
				t.Errorf("%s.Cut(%q) = %q, %v; want %q", c.list, tt.name, base, ok, c.want)
			}
			if got := c.e.Base(tt.name); got != c.want {
				t.Errorf("%s.Base(%q) = %q, want %q", c.list, tt.name, got, c.want)
			}
		}
	}
}

// TestExtsDoNotOverlap: no extension ends another, so the order of a
// list never decides which one is cut.
func TestExtsDoNotOverlap(t *testing.T) {
	for _, a := range Any {
		for _, b := range Any {
			if a != b && strings.HasSuffix(a, b) {
				t.Errorf("%s ends with %s", a, b)
			}
		}
	}
	if len(Any) != 7 {
		t.Errorf("Any = %q, want the 7 extensions of Release and Readable", Any)
	}
}
