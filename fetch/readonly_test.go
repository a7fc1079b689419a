package fetch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// asOtherUser makes the cache fail every write as for a user who may not
// write there (the tests may run as root, who may write anywhere): no
// directory is made and no file opened for writing.
func asOtherUser(t *testing.T) {
	t.Helper()
	mkdirAll = func(p string, perm fs.FileMode) error {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.EACCES}
	}
	openFile = func(p string, flag int, perm fs.FileMode) (*os.File, error) {
		if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE) != 0 {
			return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.EACCES}
		}
		return os.OpenFile(p, flag, perm)
	}
	t.Cleanup(func() { mkdirAll, openFile = os.MkdirAll, os.OpenFile })
}

// TestReadOnlyCache: a release cached in a directory this process may not
// write (another user's, a read-only file system) is verified and used;
// opening its lock file read-write failed ("create lock file: permission
// denied") and nothing could be used. What must be downloaded is refused,
// saying the cache is not writable, without a request.
func TestReadOnlyCache(t *testing.T) {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("rescue"), "base.tgz": []byte("base")}})
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		cached bool // the kernel and rescue were fetched before
		change func(t *testing.T, dir string)
		sets   []string
		want   string // in the error; "" for success
	}{
		{"fully cached", true, nil, []string{"rescue"}, ""},
		{"fully cached, no lock file", true, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ".lock")) }, []string{"rescue"}, ""},
		// Another user's lock file is 0600: served without the lock.
		{"fully cached, lock file unreadable", true, func(t *testing.T, dir string) {
			lockUnreadable(t, filepath.Join(dir, ".lock"))
		}, []string{"rescue"}, ""},
		{"a set not cached", true, nil, []string{"rescue", "base"}, "base.tgz is not cached, and the cache directory"},
		{"a cached set corrupt", true, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "sets", "rescue.tgz"), []byte("bad"), 0o644)
		}, []string{"rescue"}, "rescue.tgz does not match its SHA512"},
		{"digest file not cached", true, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "sets", "SHA512")) }, []string{"rescue"}, "SHA512 is not cached"},
		{"nothing cached", false, nil, []string{"rescue"}, "create cache directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			f := &Fetcher{Mirror: srv.Mirror(), Cache: cache}
			dir := filepath.Join(cache, "9.3", "i386")
			if tc.cached {
				if _, err := f.Fetch(context.Background(), "9.3", "i386", "rescue"); err != nil {
					t.Fatal(err)
				}
			}
			asOtherUser(t)
			if tc.change != nil {
				tc.change(t, dir)
			}
			srv.ResetLog()
			rel, err := f.Fetch(context.Background(), "9.3", "i386", tc.sets...)
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests to the mirror; the cache cannot keep what they bring", n)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Fetch from a read-only cache: %v", err)
				}
				if rel.Kernel.Action != Cached || rel.Sets[0].Action != Cached || rel.Requests != 0 {
					t.Errorf("kernel %s, set %s, %d requests; want both cached, none", rel.Kernel.Action, rel.Sets[0].Action, rel.Requests)
				}
				return
			}
			if !errors.Is(err, ErrCacheNotWritable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("Fetch = %v, want %v saying %q and why", err, ErrCacheNotWritable, tc.want)
			}
			if tc.name == "a cached set corrupt" {
				if _, err := os.Stat(filepath.Join(dir, "sets", "rescue.tgz")); err != nil {
					t.Errorf("the corrupt set is gone from a cache that is not ours to write: %v", err)
				}
			}
		})
	}
}

// lockUnreadable makes openFile fail on lock, as on another user's lock
// file (mode 0600), for a process that opens nothing else for writing.
func lockUnreadable(t *testing.T, lock string) {
	t.Helper()
	next := openFile
	openFile = func(p string, flag int, perm fs.FileMode) (*os.File, error) {
		if p == lock {
			return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.EACCES}
		}
		return next(p, flag, perm)
	}
}
