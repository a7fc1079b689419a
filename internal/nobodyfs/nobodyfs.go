// Package nobodyfs lets a test running as root try a file operation as
// an ordinary user would, so that permission bits apply to it.
package nobodyfs

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Nobody is the uid and gid Do takes: nobody's, to which no file here
// belongs.
const Nobody = 65534

// Do runs f as an ordinary user: as root, on a thread of its own with
// nobody's file system uid and gid, to which permission bits apply; as
// anyone else, as itself. It skips t when the ids cannot be taken.
func Do(t testing.TB, f func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		return f()
	}
	type result struct{ err, setup error }
	done := make(chan result)
	go func() {
		// Never unlocked: the thread, with its file system ids, ends
		// with this goroutine.
		runtime.LockOSThread()
		if err := unix.Setfsgid(Nobody); err != nil {
			done <- result{setup: err}
			return
		}
		if err := unix.Setfsuid(Nobody); err != nil {
			done <- result{setup: err}
			return
		}
		done <- result{err: f()}
	}()
	r := <-done
	if r.setup != nil {
		t.Skipf("cannot take another user's file system ids here: %v", r.setup)
	}
	return r.err
}
