package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
		newCache              bool // the cache directory does not exist yet
		relative              bool // the cache is given relative to the working directory
	}{
		{"unreachable mirror", "http://127.0.0.1:1/pub/NetBSD", "abc", ErrNetwork, false, false},
		{"unknown version", srv.Mirror(), "abc", ErrNotFound, false, false},
		{"new cache directory", srv.Mirror(), "abc", ErrNotFound, true, false},
		// --cache c5 with no c5 yet left c5/abc/i386: the walk up to the
		// directory that was there compared a relative path with ".".
		{"new relative cache directory", srv.Mirror(), "abc", ErrNotFound, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			f := &Fetcher{Mirror: tc.mirror, Cache: cache}
			if tc.newCache {
				// Made by the Fetch, so removed with the rest.
				f.Cache = filepath.Join(cache, "made", "smolvmm")
			}
			if tc.relative {
				t.Chdir(cache)
				f.Cache = filepath.Join("made", "smolvmm")
			}
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

// TestLockWaitNamesTheHolder: a Fetch that must wait for another process
// fetching the same release says whom it waits for, then goes on.
func TestLockWaitNamesTheHolder(t *testing.T) {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": []byte("set")}})
	defer srv.Close()
	cache := t.TempDir()
	dir := filepath.Join(cache, "9.3", "i386")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	other, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	waited := make(chan string, 1)
	f := &Fetcher{Mirror: srv.Mirror(), Cache: cache, LockWait: func(h string) { waited <- h }}
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(context.Background(), "9.3", "i386")
		done <- err
	}()
	holder := <-waited
	if want := "process " + strconv.Itoa(os.Getpid()) + " ("; !strings.HasPrefix(holder, want) {
		t.Errorf("LockWait(%q), want %q...", holder, want)
	}
	other.Close() // the other process is done
	if err := <-done; err != nil {
		t.Fatalf("Fetch after the wait: %v", err)
	}
}

// TestLockWaitHeedsTheContext: a Fetch waiting for another process's
// lock on the release stops when its context ends (Ctrl-C), with the
// context's cause; it waited in a blocking flock, killed only with -9 when
// the holder hung.
func TestLockWaitHeedsTheContext(t *testing.T) {
	stopped := errors.New("interrupted")
	for _, tc := range []struct {
		name   string
		cancel func(ctx context.Context, cancel context.CancelCauseFunc) // after the wait starts
		want   error
	}{
		{"cancelled while waiting", func(_ context.Context, cancel context.CancelCauseFunc) { cancel(stopped) }, stopped},
		{"cancelled before", nil, stopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			dir := filepath.Join(cache, "9.3", "i386")
			// The holder's directories, still empty as at its start.
			for _, sub := range []string{"kernel", "sets"} {
				if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			other, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := unix.Flock(int(other.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.cancel == nil {
				cancel(stopped)
			}
			waited := make(chan string, 1)
			f := &Fetcher{Mirror: "http://127.0.0.1:1/pub/NetBSD", Cache: cache, LockWait: func(h string) { waited <- h }}
			done := make(chan error, 1)
			go func() {
				_, err := f.Fetch(ctx, "9.3", "i386")
				done <- err
			}()
			if tc.cancel != nil {
				<-waited
				tc.cancel(ctx, cancel)
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), ".lock") {
					t.Errorf("Fetch = %v, want %v naming the lock file", err, tc.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Fetch still waits for the lock after its context ended")
			}
			// The waiter never held the lock: what the holder uses stays.
			for _, p := range []string{"kernel", "sets", ".lock"} {
				if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
					t.Errorf("the lock holder's %s: %v", p, err)
				}
			}
			held, err1 := other.Stat()
			now, err2 := os.Stat(filepath.Join(dir, ".lock"))
			if err1 != nil || err2 != nil || !os.SameFile(held, now) {
				t.Errorf("the holder's .lock was replaced or removed (%v, %v)", err1, err2)
			}
		})
	}
}

// TestBelow: the walk removing a failed fetch's directories stops at the
// cache directory that was there, relative or not.
func TestBelow(t *testing.T) {
	for _, tt := range []struct {
		root, d string
		want    bool
	}{
		{".", "c5/abc/i386", true},
		{".", "c5", true},
		{".", ".", false},
		{"c5", "c5/abc", true},
		{"c5", "c5", false},
		{"/a/b", "/a/b/c", true},
		{"/a/b", "/a/b", false},
		{"/a/b", "/a/bc", false},
		{"/a/b", "/a", false},
		{"/a/b", "/", false},
		{"..", "../x", true},
		{".", "..", false},
		{".", "..x", true},
	} {
		if got := below(tt.root, tt.d); got != tt.want {
			t.Errorf("below(%q, %q) = %v, want %v", tt.root, tt.d, got, tt.want)
		}
	}
}
