package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestFailedFetchLeavesNoDirectories: a Fetch that fails before anything
// is cached (an unreachable mirror, a version it does not have) leaves the
// cache as it found it: no release directories and no lock file.
func TestFailedFetchLeavesNoDirectories(t *testing.T) {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("set")}})
	defer srv.Close()
	for _, tc := range []struct {
		name, mirror, version string
		is                    error
	}{
		{"unreachable mirror", "http://127.0.0.1:1/pub/NetBSD", "abc", ErrNetwork},
		{"unknown version", srv.Mirror(), "abc", ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			f := &Fetcher{Mirror: tc.mirror, Cache: cache}
			_, err := f.Fetch(context.Background(), tc.version, "i386")
			if !errors.Is(err, tc.is) {
				t.Fatalf("Fetch = %v, want %v", err, tc.is)
			}
			var left []string
			filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
				if p != cache {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("the failed Fetch left %q", left)
			}
		})
	}
}
