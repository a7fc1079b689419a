package realnetbsd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCacheDirNotPlanted: with HOME unset the cache fell back to a fixed
// name under the temporary directory and trusted what another user had
// put there. Now a directory of this user's own is used there, and one
// of its name that others may write (planted) is passed over for one of
// this process's.
func TestCacheDirNotPlanted(t *testing.T) {
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
		dir := CacheDir()
		if !strings.HasPrefix(dir, tmp+string(filepath.Separator)) {
			t.Fatalf("planted %v: CacheDir = %s, outside TMPDIR %s", planted, dir, tmp)
		}
		root := filepath.Join(tmp, strings.Split(strings.TrimPrefix(dir, tmp+string(filepath.Separator)), string(filepath.Separator))[0])
		if planted == (root == own) {
			t.Errorf("planted %v: CacheDir = %s, below %s", planted, dir, root)
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
