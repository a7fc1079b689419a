package service_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/rebuild"
	"github.com/smolvmm/smolvmm/service"
)

// TestLoadCommonForBuiltin: a common/ in the service directory is laid
// over the built-in one for a built-in service taken from the binary as
// well (it was used only for the directory's own services, and mkimg -s
// rescue built an image without it, saying nothing), its basicrc checked
// as for a service of the directory.
func TestLoadCommonForBuiltin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    map[string]string // path in Common: content
		wantErr string            // %s is the directory
	}{
		{"beside basicrc", map[string]string{"common/extra": "x\n", "common/lib/f": "f\n"},
			map[string]string{"extra": "x\n", "lib/f": "f\n"}, ""},
		{"own basicrc", map[string]string{"common/basicrc": "PATH=/bin\n"},
			map[string]string{"basicrc": "PATH=/bin\n"}, ""},
		{"CR LF basicrc", map[string]string{"common/basicrc": "PATH=/bin\r\n"},
			nil, "common files in %s: basicrc has CR LF (DOS) line endings"},
		{"other service's common", map[string]string{"web/etc/rc": "sh\n", "common/extra": "x\n"},
			map[string]string{"extra": "x\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.files)
			for _, name := range []string{"rescue", "base"} {
				s, err := service.Load(name, dir)
				if tc.wantErr != "" {
					want := strings.ReplaceAll(tc.wantErr, "%s", filepath.Join(dir, "common"))
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("Load(%s): %v, want %q", name, err, want)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Load(%s): %v", name, err)
				}
				if !s.Embedded {
					t.Errorf("Load(%s): not the built-in service", name)
				}
				for p, content := range tc.want {
					if b, err := fs.ReadFile(s.Common, p); err != nil || string(b) != content {
						t.Errorf("Load(%s): common %s = %q (%v), want %q", name, p, b, err, content)
					}
				}
				if _, ok := tc.want["basicrc"]; !ok {
					if b, err := fs.ReadFile(s.Common, "basicrc"); err != nil || !strings.Contains(string(b), "mount") {
						t.Errorf("Load(%s): the built-in basicrc is gone: %q (%v)", name, b, err)
					}
				}
			}
		})
	}
}

// TestLoadDanglingLink: a service's directory or common/ that is a
// symlink to nothing is refused, naming the link and its target: the
// built-in service of the name was built instead, and common/ passed
// over, without a word.
func TestLoadDanglingLink(t *testing.T) {
	for _, tc := range []struct {
		link, name string
		files      map[string]string
		want       string // %s is the directory
	}{
		{"rescue", "rescue", nil, "service rescue: %[1]s/rescue links to gone, which does not exist"},
		{"svc", "svc", nil, "service svc: %[1]s/svc links to gone, which does not exist"},
		{"common", "svc", map[string]string{"svc/etc/rc": "sh\n"}, "common files: %[1]s/common links to gone, which does not exist"},
		{"common", "rescue", nil, "common files: %[1]s/common links to gone, which does not exist"},
	} {
		t.Run(tc.link+"/"+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.files)
			if err := os.Symlink("gone", filepath.Join(dir, tc.link)); err != nil {
				t.Fatal(err)
			}
			_, err := service.Load(tc.name, dir)
			want := strings.ReplaceAll(tc.want, "%[1]s", dir)
			if err == nil || err.Error() != want {
				t.Fatalf("Load(%s): %v, want %q", tc.name, err, want)
			}
		})
	}
	// A link to a directory that exists is followed, as before.
	dir := t.TempDir()
	write(t, dir, map[string]string{"real/etc/rc": "sh\n"})
	if err := os.Symlink("real", filepath.Join(dir, "svc")); err != nil {
		t.Fatal(err)
	}
	if s, err := service.Load("svc", dir); err != nil || s.Embedded {
		t.Errorf("Load(svc) through a link: %v", err)
	}
}

// TestCommonForBuiltinRebuilds: a change to the service directory's
// common/ changes the digest of a built-in service loaded with it, and
// so an image up built and stamped is rebuilt (rebuild.ServiceChanged).
func TestCommonForBuiltinRebuilds(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"common/extra": "one\n"})
	digest := func() string {
		t.Helper()
		s, err := service.Load("rescue", dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := rebuild.ServiceDigest(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	img := filepath.Join(dir, "rescue.img")
	b := make([]byte, 2048)
	b[1024+56], b[1024+57] = 0x53, 0xEF // ext2's magic: an image up built
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	stamp := rebuild.DirStamp(filepath.Join(dir, "cache"), img)
	first := digest()
	if err := stamp.Record(img, first, 1, ""); err != nil {
		t.Fatal(err)
	}
	if v, err := (rebuild.Image{Path: img, Digest: first, Builder: 1, Stamp: stamp}).Check(); err != nil || v != rebuild.Fresh {
		t.Fatalf("Check before the change: %v (%v), want %v", v, err, rebuild.Fresh)
	}
	write(t, dir, map[string]string{"common/extra": "two\n"})
	second := digest()
	if v, err := (rebuild.Image{Path: img, Digest: second, Builder: 1, Stamp: stamp}).Check(); err != nil || v != rebuild.ServiceChanged {
		t.Errorf("Check after common/extra changed: %v (%v), want %v", v, err, rebuild.ServiceChanged)
	}
	if err := os.Remove(filepath.Join(dir, "common", "extra")); err != nil {
		t.Fatal(err)
	}
	if third := digest(); third == second {
		t.Errorf("digest unchanged by removing common/extra")
	}
}
