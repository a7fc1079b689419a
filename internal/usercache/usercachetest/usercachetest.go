// Package usercachetest checks, for the tests of a package whose cache
// directory usercache places, that the directory stays this user's.
package usercachetest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// CheckNotPlanted: with HOME unset, cacheDir falls back to the temporary
// directory; it must use a directory of this user's own there, and pass
// over one of that name that others may write (planted) for one of this
// process's, never trusting what another user put there.
func CheckNotPlanted(t *testing.T, cacheDir func() string) {
	t.Helper()
	for _, planted := range []bool{false, true} {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		t.Setenv("HOME", "")
		t.Setenv("XDG_CACHE_HOME", "")
		own := filepath.Join(tmp, "smolvmm-cache-"+strconv.Itoa(os.Geteuid()))
		if planted {
			if err := os.Mkdir(own, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(own, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		dir := cacheDir()
		if !strings.HasPrefix(dir, tmp+string(filepath.Separator)) {
			t.Fatalf("planted %v: cache directory %s, outside TMPDIR %s", planted, dir, tmp)
		}
		root := filepath.Join(tmp, strings.Split(strings.TrimPrefix(dir, tmp+string(filepath.Separator)), string(filepath.Separator))[0])
		if planted == (root == own) {
			t.Errorf("planted %v: cache directory %s, below %s", planted, dir, root)
		}
		st, err := os.Stat(root)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("planted %v: %s has mode %#o, want one only its user may use", planted, root, st.Mode().Perm())
		}
	}
}
