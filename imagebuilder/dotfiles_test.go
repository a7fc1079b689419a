package imagebuilder_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

// TestBuildKeepsDotfiles builds an image from a service whose common/ and
// etc/ hold dotfiles and dot-directories at several depths, and reads them
// back from the image: each keeps its leading dot (common/'s .kshrc was
// /etc/include/kshrc).
func TestBuildKeepsDotfiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"svc/etc/rc":              ". /etc/include/.kshrc\n",
		"svc/etc/.profile":        "profile\n",
		"svc/etc/.d/.e/.f":        "etc deep\n",
		"common/.kshrc":           "kshrc\n",
		"common/.hidden/x":        "hidden x\n",
		"common/.hidden/.y":       "hidden y\n",
		"common/a/.b/.c":          "abc\n",
		"common/a/.b/d/.e/.f":     "deep\n",
		"common/..dots":           "two dots\n",
		"common/plain.. ":         "plain\n",
		"common/sub/.kshrc":       "sub kshrc\n",
		"common/.hidden/.z/.w/.v": "hidden deep\n",
	}
	for p, c := range files {
		hp := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := imagebuilder.Config{Sets: []string{rescueSet(t, "tar")}, Service: loadService(t, "svc", dir), SizeMB: 10, Timestamp: ts}
	img := filepath.Join(t.TempDir(), "root.img")
	if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
		t.Fatal(err)
	}
	imagecheck.Fsck(t, img)
	for _, tc := range []struct{ path, want string }{
		{"/etc/.profile", "profile\n"},
		{"/etc/.d/.e/.f", "etc deep\n"},
		{"/etc/include/.kshrc", "kshrc\n"},
		{"/etc/include/.hidden/x", "hidden x\n"},
		{"/etc/include/.hidden/.y", "hidden y\n"},
		{"/etc/include/a/.b/.c", "abc\n"},
		{"/etc/include/a/.b/d/.e/.f", "deep\n"},
		{"/etc/include/..dots", "two dots\n"},
		{"/etc/include/plain.. ", "plain\n"},
		{"/etc/include/sub/.kshrc", "sub kshrc\n"},
		{"/etc/include/.hidden/.z/.w/.v", "hidden deep\n"},
	} {
		if got := imagecheck.Debugfs(t, img, `cat "`+tc.path+`"`); got != tc.want {
			t.Errorf("%s in the image: %q, want %q", tc.path, got, tc.want)
		}
	}
	for d, want := range map[string][]string{
		"/etc/include":         {".", "..", "..dots", ".hidden", ".kshrc", "a", "basicrc", "plain.. ", "sub"},
		"/etc/include/.hidden": {".", "..", ".y", ".z", "x"},
	} {
		got := names(imagecheck.Debugfs(t, img, "ls -p "+d))
		if !slices.Equal(got, want) {
			t.Errorf("%s in the image holds %q, want %q", d, got, want)
		}
	}
}

// names are the file names of debugfs "ls -p" output
// (/inode/mode/uid/gid/name/size/ lines), sorted.
func names(ls string) []string {
	var out []string
	for _, l := range strings.Split(ls, "\n") {
		if f := strings.Split(l, "/"); len(f) >= 7 {
			out = append(out, f[5])
		}
	}
	slices.Sort(out)
	return out
}
