package guests

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/smolvmm/smolvmm/internal/usercache"
)

// TestBuildPlantedCache: with HOME unset, Build cached in
// $TMPDIR/smolvmm-guests, a name anybody may make first, and returned
// the file another user had put at a build's path, for root too. It now
// builds below a directory of this user's own, and refuses one of that
// name another user made.
func TestBuildPlantedCache(t *testing.T) {
	needToolchain(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the planted files to another user (chown)")
	}
	const other = 65534
	// The build's path below a cache root: the same in every root.
	ref := t.TempDir()
	built, err := BuildIn(ref, "counter")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(ref, built)
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte("not an ELF")
	// plant puts junk at rel below dir, every part of it below tmp
	// another user's.
	plant := func(t *testing.T, tmp, dir string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, junk, 0o644); err != nil {
			t.Fatal(err)
		}
		for q := p; q != tmp; q = filepath.Dir(q) {
			if err := os.Lchown(q, other, other); err != nil {
				t.Fatal(err)
			}
		}
	}
	self := "smolvmm-cache-" + strconv.Itoa(os.Geteuid())
	tests := []struct {
		name    string
		planted string // below TMPDIR
		refused bool   // Build fails with usercache.ErrNotPrivate
	}{
		{"the old fixed name", "smolvmm-guests", false},
		{"this user's name, another user's directory", self + "/smolvmm-guests", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			if err := os.Chmod(tmp, 0o1777); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp)
			t.Setenv("HOME", "")
			t.Setenv("XDG_CACHE_HOME", "")
			planted := filepath.Join(tmp, tt.planted)
			plant(t, tmp, planted)
			got, err := Build("counter")
			if tt.refused {
				if !errors.Is(err, usercache.ErrNotPrivate) {
					t.Fatalf("Build = %q, %v, want an error matching usercache.ErrNotPrivate", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(got)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(b, junk) || !bytes.HasPrefix(b, []byte("\x7fELF")) {
				t.Errorf("Build = %s, holding %q, want a build of its own", got, b[:min(len(b), 16)])
			}
			if want := filepath.Join(tmp, self, "smolvmm-guests", rel); got != want {
				t.Errorf("Build = %s, want %s", got, want)
			}
		})
	}
}
