package fetch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCacheParentMode: directories made above the cache root were all made
// 0700, so a shared cache given as --cache /srv/cache/smolvmm or
// XDG_CACHE_HOME=/srv/cache, /srv/cache missing, could not be reached by
// the other users it serves. Only the default ~/.cache, the XDG default
// under $HOME, is made private; others get 0755 less the umask.
func TestCacheParentMode(t *testing.T) {
	tests := []struct {
		name   string
		xdg    string // XDG_CACHE_HOME under the test's directory, "" unset
		cache  string // Fetcher.Cache under the test's directory, "" default
		parent string // the directory made above the cache root
		want   os.FileMode
	}{
		{"default ~/.cache", "", "", "home/.cache", 0o700},
		{"XDG_CACHE_HOME set to ~/.cache", "home/.cache", "", "home/.cache", 0o700},
		{"--cache in ~/.cache", "", "home/.cache/smolvmm", "home/.cache", 0o700},
		{"XDG_CACHE_HOME elsewhere", "srv/cache", "", "srv/cache", 0o755},
		{"--cache elsewhere", "", "srv/shared/smolvmm", "srv/shared", 0o755},
		{"--cache elsewhere, XDG_CACHE_HOME set", "xdg", "srv/shared/smolvmm", "srv/shared", 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			t.Setenv("HOME", filepath.Join(base, "home"))
			t.Setenv("XDG_CACHE_HOME", "")
			if tt.xdg != "" {
				t.Setenv("XDG_CACHE_HOME", filepath.Join(base, tt.xdg))
			}
			f := &Fetcher{}
			if tt.cache != "" {
				f.Cache = filepath.Join(base, tt.cache)
			}
			dir, err := f.ReleaseDir("9.3", "i386")
			if err != nil {
				t.Fatal(err)
			}
			unlock, readOnly, err := lockDir(context.Background(), dir, base, nil, nil)
			if err != nil || readOnly != nil {
				t.Fatalf("lockDir: %v, read-only %v", err, readOnly)
			}
			defer unlock()
			want := tt.want &^ umask(t)
			for p := filepath.Join(base, tt.parent); p != base; p = filepath.Dir(p) {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := st.Mode().Perm(); got != want {
					t.Errorf("%s: mode %#o, want %#o", p, got, want)
				}
			}
			st, err := os.Stat(filepath.Dir(filepath.Dir(dir)))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.Mode().Perm(), 0o755&^umask(t); got != want {
				t.Errorf("cache root: mode %#o, want %#o", got, want)
			}
		})
	}
}
