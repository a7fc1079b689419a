package imagebuilder

import (
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestStageTarget: what a set's symlink points at in the staging root.
// Targets that stay inside as they are keep their text; the others become
// the host path of what the guest resolves them to, with no "..", and a
// resolution that loops links to itself.
func TestStageTarget(t *testing.T) {
	tr := fstree.New()
	tr.Put("deep/dir/f", fstree.NewFile(0o644, nil))
	tr.Put("abs", fstree.NewSymlink("/deep/dir"))
	tr.Put("rel", fstree.NewSymlink("deep/dir"))
	tr.Put("loop1", fstree.NewSymlink("loop2"))
	tr.Put("loop2", fstree.NewSymlink("loop1"))
	const stage = "/st/root"
	for _, tc := range []struct{ p, target, want string }{
		{"etc/a", "b/c", "b/c"},
		{"etc/a", "../lib/x", "../lib/x"},
		{"etc/a", "/etc/x", "/st/root/etc/x"},
		{"etc/a", "/", "/st/root"},
		{"etc/a", "../../../x", "/st/root/x"},
		{"etc/a", "../abs/../../x", "/st/root/x"},
		{"etc/a", "../rel/../x", "/st/root/deep/x"},
		{"etc/a", "/abs", "/st/root/abs"}, // the last name is not followed
		{"etc/a", "/abs/f", "/st/root/deep/dir/f"},
		{"etc/a", "/loop1/x", "a"},
		{"a", "./.././/etc/./x/", "/st/root/etc/x"},
	} {
		if got := stageTarget(tr, tc.p, tc.target, stage); got != tc.want {
			t.Errorf("%s -> %s: staged as %q, want %q", tc.p, tc.target, got, tc.want)
		}
	}
}
