// Package nobodyfs lets a test running as root try a file operation as
// an ordinary user would, so that permission bits apply to it.
package nobodyfs

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Nobody is the uid and gid Do takes: nobody's, to which no file here
// belongs.
const Nobody = 65534

// Do runs f as an ordinary user: as root, on a thread of its own with
// nobody's file system uid and gid and no supplementary groups, to which
// permission bits apply; as anyone else, as itself. It skips t when
// those ids cannot be taken.
func Do(t testing.TB, f func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		return f()
	}
	type result struct{ err, setup error }
	done := make(chan result)
	go func() {
		// Never unlocked: the thread, with its ids, ends with this
		// goroutine.
		runtime.LockOSThread()
		if err := take(); err != nil {
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

// Become gives the calling goroutine's thread, as root, nobody's file
// system uid and gid and no supplementary groups; as anyone else it does
// nothing. The caller has locked the goroutine to its thread
// (runtime.LockOSThread) and never unlocks it, so that the thread ends
// with the goroutine: for a test that needs that thread (one in a network
// namespace of its own). It skips t when the ids cannot be taken.
func Become(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if err := take(); err != nil {
		t.Skipf("cannot take another user's file system ids here: %v", err)
	}
}

// take gives the calling thread, locked to its goroutine, nobody's file
// system ids and no supplementary groups, and checks that it has them
// and has lost the capabilities that override permission bits. The
// kernel's setfsuid and setfsgid report no failure (they return the
// previous id): only reading the ids back tells.
func take() error {
	// The raw system call changes this thread's groups alone (libc's
	// and Go's syscall.Setgroups change every thread's); root's groups
	// would still open a file of mode 0660 of root's group.
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	unix.SetfsgidRetGid(Nobody)
	unix.SetfsuidRetUid(Nobody)
	// -1 changes nothing and returns the id in force.
	if uid, _ := unix.SetfsuidRetUid(-1); uid != Nobody {
		return fmt.Errorf("file system uid is %d after setfsuid(%d) (no CAP_SETUID?)", uid, Nobody)
	}
	if gid, _ := unix.SetfsgidRetGid(-1); gid != Nobody {
		return fmt.Errorf("file system gid is %d after setfsgid(%d) (no CAP_SETGID?)", gid, Nobody)
	}
	n, _, e := unix.RawSyscall(unix.SYS_GETGROUPS, 0, 0, 0)
	if e != 0 || n != 0 {
		return fmt.Errorf("%d supplementary groups left after setgroups (%v)", n, e)
	}
	// The kernel drops these with a fsuid other than 0, unless the
	// process keeps them (SECBIT_NO_SETUID_FIXUP).
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	const override = 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH | 1<<unix.CAP_FOWNER
	if data[0].Effective&override != 0 {
		return fmt.Errorf("capabilities that override permission bits kept (effective %#x)", data[0].Effective)
	}
	return nil
}
