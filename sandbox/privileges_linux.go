package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/filekind"
)

// Credentials are the user and group a process drops to.
type Credentials struct {
	UID, GID int // the user and group IDs
}

// MaxID is the largest user or group id a process can take. The kernel's
// ids are 32 bits wide and 4294967295 is (uid_t)-1, which setresuid and
// setresgid read as "leave this id unchanged": a larger id would be cut
// to its low 32 bits (4294967296 to 0, root's), and -1 would keep root's.
const MaxID = 1<<32 - 2

// checkIDs refuses ids DropPrivileges cannot give exactly.
func checkIDs(c Credentials) error {
	for _, id := range []struct {
		kind string
		v    int
	}{{"uid", c.UID}, {"gid", c.GID}} {
		if id.v < 0 || int64(id.v) > MaxID {
			return fmt.Errorf("%s %d is out of range: ids go from 0 to %d (4294967295 means \"unchanged\" to the kernel)", id.kind, id.v, int64(MaxID))
		}
	}
	return nil
}

// ErrNoPasswdEntry is wrapped when LookupUser is given a numeric user id
// that the user database has no entry for: it names no group.
var ErrNoPasswdEntry = errors.New("has no entry in the user database, which would give its group")

// userLookup is user.Lookup, which a test replaces to fail as a user
// database that cannot be read does.
var userLookup = user.Lookup

// LookupUser finds name in the user database (read now, before any
// filter), or takes it as a numeric uid, whose group is then its entry's
// (a uid's own number as a gid is some other group: 5 is tty's on
// Debian, games' uid 5 has gid 60). A uid without an entry is refused
// (ErrNoPasswdEntry): its group cannot be known.
func LookupUser(name string) (Credentials, error) {
	u, err := userLookup(name)
	if err != nil {
		id, nerr := strconv.Atoi(name)
		if nerr != nil || id < 0 {
			// Only a database read to its end says there is no such user.
			if errors.As(err, new(user.UnknownUserError)) {
				return Credentials{}, fmt.Errorf("user %s: no such user", name)
			}
			return Credentials{}, fmt.Errorf("user %s: reading the user database: %w", name, err)
		}
		if err := checkIDs(Credentials{UID: id}); err != nil {
			return Credentials{}, fmt.Errorf("user %s: %w", name, err)
		}
		var unknown user.UnknownUserIdError
		switch u, err = user.LookupId(strconv.Itoa(id)); {
		case errors.As(err, &unknown):
			return Credentials{}, fmt.Errorf("user %s: uid %d %w", name, id, ErrNoPasswdEntry)
		case err != nil:
			return Credentials{}, fmt.Errorf("user %s: %w", name, err)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return Credentials{}, fmt.Errorf("user %s: uid %q, gid %q are not numbers", name, u.Uid, u.Gid)
	}
	cr := Credentials{UID: uid, GID: gid}
	if err := checkIDs(cr); err != nil {
		return Credentials{}, fmt.Errorf("user %s: %w", name, err)
	}
	return cr, nil
}

// ErrNotRoot means dropping privileges was asked of a process that has
// none to drop.
var ErrNotRoot = errors.New("only a process started as root can change its user")

// DropPrivileges makes every thread of the process c.UID and c.GID (real,
// effective and saved), with no supplementary groups, an empty
// capability bounding set and no capability, inheritable and ambient
// ones included (leaving root clears the others), and not dumpable, which
// it then checks, with the ids and groups the process then has. Ids above
// MaxID are refused. Call it after
// everything the process needs has been opened: files and devices
// opened before stay usable. Emptying the bounding set takes
// CAP_SETPCAP: a process without it effective (root started with a
// bounding set that lacks it) keeps the set, and gets no_new_privs on
// every thread instead, which it checks too, except in a cgo build, which
// keeps the set anyway and cannot set no_new_privs on every thread
// (DropKeepsBoundingSet).
func DropPrivileges(c Credentials) error {
	if c.UID <= 0 || c.GID < 0 {
		return fmt.Errorf("drop privileges to uid %d, gid %d: give a user other than root", c.UID, c.GID)
	}
	if err := checkIDs(c); err != nil {
		return fmt.Errorf("drop privileges to uid %d, gid %d: %w", c.UID, c.GID, err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("drop privileges to uid %d: running as uid %d: %w", c.UID, os.Geteuid(), ErrNotRoot)
	}
	kept, err := DropKeepsBoundingSet()
	if err != nil {
		return err
	}
	// no_new_privs on every thread takes what a cgo build cannot do.
	noNewPrivs := kept == KeptWithoutSetpcap
	if kept == 0 {
		if err := dropBoundingSet(); err != nil {
			return err
		}
	} else if noNewPrivs {
		if err := setNoNewPrivs(); err != nil {
			return err
		}
	}
	// The Go runtime applies each to all threads.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups(none): %w", err)
	}
	if err := syscall.Setresgid(c.GID, c.GID, c.GID); err != nil {
		return fmt.Errorf("setresgid(%d): %w", c.GID, err)
	}
	if err := syscall.Setresuid(c.UID, c.UID, c.UID); err != nil {
		return fmt.Errorf("setresuid(%d): %w", c.UID, err)
	}
	if err := clearCapabilities(); err != nil {
		return err
	}
	// Leaving root made the process not dumpable only if fs.suid_dumpable
	// is 0: whatever it is, no process of c.UID may attach to this one or
	// take its descriptors (pidfd_getfd), its caller's stderr among them.
	// The setting is the process's, not a thread's.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return checkDropped(c, noNewPrivs)
}

// BoundingSetKept is why DropPrivileges keeps the capability bounding
// set instead of emptying it: 0 when it empties it, else one or both of
// KeptByCgo and KeptWithoutSetpcap.
type BoundingSetKept uint8

const (
	// KeptByCgo: the build is linked with cgo (KeepsBoundingSet), which
	// cannot make a call on every thread.
	KeptByCgo BoundingSetKept = 1 << iota
	// KeptWithoutSetpcap: CAP_SETPCAP, which emptying the set takes, is
	// not in the calling thread's effective set (root started by a
	// service manager with CapabilityBoundingSet=CAP_SETUID
	// CAP_SETGID..., or in a container that drops all capabilities but a
	// few).
	KeptWithoutSetpcap
)

// DropKeepsBoundingSet reports whether DropPrivileges, called now, keeps
// the capability bounding set instead of emptying it, and why (0: it
// empties it). The set kept grants nothing to a process left with no
// capability: the kernel reads it only at an execve, to cap what a
// set-user-ID or file-capability program gains, and at a capset, to cap
// the inheritable set, which a process with no capability cannot raise
// anyway. Kept for KeptWithoutSetpcap alone, DropPrivileges gives every
// thread no_new_privs, under which an execve gains nothing; a cgo build
// cannot (KeptByCgo), and only a seccomp filter installed after, whose
// no_new_privs the kernel spreads to every thread, forbids such an
// execve. A user namespace's capabilities do not come from the set.
func DropKeepsBoundingSet() (BoundingSetKept, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return keepBoundingSet(data[0].Effective, linkedWithLibc), nil
}

// keepBoundingSet is DropKeepsBoundingSet's answer from the low word of
// the effective set (CAP_SETPCAP is capability 8) and whether the build
// is linked with cgo.
func keepBoundingSet(effective uint32, cgo bool) BoundingSetKept {
	var kept BoundingSetKept
	if cgo {
		kept |= KeptByCgo
	}
	if effective&(1<<unix.CAP_SETPCAP) == 0 {
		kept |= KeptWithoutSetpcap
	}
	return kept
}

// setNoNewPrivs gives every thread no_new_privs (a per-thread attribute,
// which new threads inherit): no program executed gains capabilities or
// ids, whatever the bounding set.
func setNoNewPrivs() error {
	if _, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS, 1): %w", errno)
	}
	return nil
}

// clearCapabilities empties every thread's ambient and inheritable sets
// (and effective and permitted, which leaving root emptied already).
// Leaving root keeps the inheritable set, which a process started with
// one (setpriv --inh-caps, a service manager's) has: checkDropped refused
// to go on with it. The calls only lower sets, which any user may. Only
// a process with some capability left pays for the calls on all threads.
// A process linked with cgo cannot make them (ErrNotSupported): its
// calling thread's sets are emptied, the other threads keep their
// inheritable set, with nothing permitted to use it on, as
// dropBoundingSet leaves their bounding sets.
func clearCapabilities() error {
	if caps, err := capabilities(); err != nil || caps == 0 {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0)
	if errno == syscall.ENOTSUP {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
		}
		if err := unix.Capset(&hdr, &none[0]); err != nil {
			return fmt.Errorf("capset(none): %w", err)
		}
		return nil
	}
	if errno != 0 {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", errno)
	}
	_, _, errno = syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&none[0])), 0)
	if errno != 0 {
		return fmt.Errorf("capset(none): %w", errno)
	}
	return nil
}

// setNotDumpable makes the process not dumpable, and checks that it is.
// A process started with ambient capabilities stays dumpable, as exec
// leaves a process whose ids did not change: once its capabilities are
// dropped, any process of its user could attach to it or take its
// descriptors (pidfd_getfd), those its capabilities opened among them
// (root's /dev/kvm, a tap). The setting is the process's, not a thread's.
func setNotDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_GET_DUMPABLE): %w", err)
	} else if d != 0 {
		return fmt.Errorf("the process is still dumpable (%d) after prctl(PR_SET_DUMPABLE, 0)", d)
	}
	return nil
}

// ErrCapsOnEveryThread is wrapped by DropCapabilities in a build linked
// with cgo, which cannot make a call on every thread: the other threads
// would keep the capabilities.
var ErrCapsOnEveryThread = errors.New("a build linked with cgo cannot drop capabilities on every thread")

// DropCapabilities empties every thread's effective, permitted,
// inheritable and ambient capability sets, for a process that keeps its
// user (no DropPrivileges): one started by an ordinary user with
// capabilities (setpriv --ambient-caps, a service's AmbientCapabilities,
// file capabilities for a tap) keeps them otherwise. Call it after
// everything has been opened (a tap's open needs CAP_NET_ADMIN). When
// CAP_SETPCAP is permitted it also empties the bounding set, first (it
// needs that capability, raised if not effective); boundingEmptied says
// so. had is the capabilities there were (effective, permitted and
// inheritable ORed), 0 when none, and then it makes no call. With
// effective or permitted ones, it first makes the process not dumpable,
// and checks it: no process of its user may then attach to it or take
// the descriptors its capabilities opened (exec left it dumpable);
// inheritable ones alone open nothing, and it stays dumpable. In a build
// linked with cgo a process with effective or permitted capabilities
// gets ErrCapsOnEveryThread and keeps them; one with only inheritable
// ones keeps those and gets no error when execForbidden, the caller
// installing a filter that forbids execve next (KeepsInheritable), and
// ErrCapsOnEveryThread otherwise: a program it executed with matching
// file capabilities would get them.
func DropCapabilities(execForbidden bool) (had uint64, boundingEmptied bool, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, false, fmt.Errorf("capget: %w", err)
	}
	var held uint64 // effective or permitted
	for i, d := range data {
		had |= uint64(d.Effective|d.Permitted|d.Inheritable) << (32 * i)
		held |= uint64(d.Effective|d.Permitted) << (32 * i)
	}
	// Ambient capabilities are permitted and inheritable ones too.
	if had == 0 {
		return 0, false, nil
	}
	// Inheritable ones alone opened nothing, and a not-dumpable process's
	// /proc files are root's: its user could no longer read its memory
	// (smaps) or set its oom_score_adj.
	if held != 0 {
		if err := setNotDumpable(); err != nil {
			return had, false, err
		}
	}
	if linkedWithLibc {
		if held != 0 {
			return had, false, fmt.Errorf("capabilities %#x: %w", had, ErrCapsOnEveryThread)
		}
		if !execForbidden {
			return had, false, fmt.Errorf("inheritable capabilities %#x, with no system call filter to forbid executing a program with file capabilities that would get them: %w", had, ErrCapsOnEveryThread)
		}
		return had, false, nil
	}
	const setpcap = 1 << unix.CAP_SETPCAP
	if data[0].Permitted&setpcap != 0 {
		if data[0].Effective&setpcap == 0 {
			data[0].Effective |= setpcap
			if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
				return had, false, fmt.Errorf("capset(CAP_SETPCAP effective): %w", errno)
			}
		}
		if err := dropBoundingSet(); err != nil {
			return had, false, err
		}
		boundingEmptied = true
	}
	if err := clearCapabilities(); err != nil {
		return had, boundingEmptied, err
	}
	if left, err := capabilities(); err != nil {
		return had, boundingEmptied, err
	} else if left != 0 {
		return had, boundingEmptied, fmt.Errorf("capabilities %#x are left after dropping them", left)
	}
	return had, boundingEmptied, nil
}

// checkDropped checks that the calling thread (as every other: the Go
// runtime set each) runs as c, real, effective and saved ids, with no
// supplementary group and no capability, with no_new_privs when
// noNewPrivs, and that the process is not dumpable.
func checkDropped(c Credentials, noNewPrivs bool) error {
	// x/sys returns the kernel's unsigned ids as C ints: 4294967294 is -2.
	ru, eu, su := getresid(unix.Getresuid)
	rg, eg, sg := getresid(unix.Getresgid)
	if ru != c.UID || eu != c.UID || su != c.UID || rg != c.GID || eg != c.GID || sg != c.GID {
		return fmt.Errorf("after dropping to uid %d, gid %d the process runs as uids %d %d %d, gids %d %d %d (real, effective, saved)", c.UID, c.GID, ru, eu, su, rg, eg, sg)
	}
	if groups, err := unix.Getgroups(); err != nil {
		return fmt.Errorf("getgroups: %w", err)
	} else if len(groups) != 0 {
		return fmt.Errorf("after dropping to uid %d, gid %d the process keeps groups %v", c.UID, c.GID, groups)
	}
	if caps, err := capabilities(); err != nil {
		return err
	} else if caps != 0 {
		return fmt.Errorf("capabilities %#x are left after dropping to uid %d", caps, c.UID)
	}
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_GET_DUMPABLE): %w", err)
	} else if d != 0 {
		return fmt.Errorf("the process is still dumpable (%d) after dropping to uid %d", d, c.UID)
	}
	if !noNewPrivs {
		return nil
	}
	if n, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_GET_NO_NEW_PRIVS): %w", err)
	} else if n != 1 {
		return fmt.Errorf("no_new_privs is %d after dropping to uid %d with the bounding set kept", n, c.UID)
	}
	return nil
}

// KeepsInheritable is true in a build linked with cgo, whose
// DropCapabilities leaves a process started with only inheritable
// capabilities (setpriv --inh-caps, pam_cap, older Docker) as it is
// rather than refuse it, when the caller's system call filter forbids
// execve: it cannot clear the set on every thread, and with nothing
// effective or permitted (so nothing ambient) the set grants nothing
// unless a program with matching file capabilities is executed. Without
// such a filter it refuses the process.
const KeepsInheritable = linkedWithLibc

// KeepsBoundingSet is true in a build linked with cgo, whose
// DropPrivileges cannot empty the capability bounding set of every
// thread (dropBoundingSet) and keeps it whole: the process has no
// capability, but a set-user-ID or file-capability program it executed
// would get them back (a filter installed after forbids execve, and the
// no_new_privs set with it voids such gains).
const KeepsBoundingSet = linkedWithLibc

// dropBoundingSet empties every thread's capability bounding set (a
// per-thread attribute, which leaving root does not touch), so that not
// even a program with file capabilities could give any back. It needs
// CAP_SETPCAP: call it while still root. A process linked with cgo cannot
// make a call on all its threads (ErrNotSupported): its bounding set is
// left, as the setuid calls and no_new_privs leave it nothing to use.
//
// Each AllThreadsSyscall stops the world and signals every thread, ~0.1
// to 0.5 ms, and the kernel drops one capability a call: the bounding set
// is read on this thread first (PR_CAPBSET_READ, a plain system call)
// and only the capabilities in it are dropped, with no round to find the
// kernel's last one (EINVAL). That is the bounding set of every thread:
// each starts with its creator's, and nothing in a Go program without cgo
// changes one thread's alone (the runtime has no such call; this package
// changes all threads at once).
func dropBoundingSet() error {
	for c := uintptr(0); c < 64; c++ {
		in, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_READ, c, 0)
		if errno == syscall.EINVAL { // past the kernel's last capability
			return nil
		}
		if errno != 0 {
			return fmt.Errorf("prctl(PR_CAPBSET_READ, %d): %w", c, errno)
		}
		if in == 0 {
			continue
		}
		_, _, errno = syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0)
		switch {
		case errno == syscall.ENOTSUP:
			return nil
		case errno != 0:
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %d): %w", c, errno)
		}
	}
	return nil
}

// getresid returns get's three ids as the kernel's unsigned numbers.
func getresid(get func() (int, int, int)) (r, e, s int) {
	r, e, s = get()
	return int(uint32(r)), int(uint32(e)), int(uint32(s))
}

// capabilities returns the calling thread's effective, permitted and
// inheritable capabilities ORed together.
func capabilities() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	var all uint64
	for i, d := range data {
		all |= uint64(d.Effective|d.Permitted|d.Inheritable) << (32 * i)
	}
	return all, nil
}

// Chroot makes dir, which must be an empty directory that only root may
// write (CheckChrootDir), the root of the process (every thread shares
// it), so that nothing of the host's files can be named any more. It
// needs root; call it after everything has been opened and before
// DropPrivileges. The directory checked is the one that becomes the
// root: it is opened, checked through that descriptor, and entered by it,
// so that a path swapped in between (a parent another user may write)
// changes nothing.
func Chroot(dir string) error {
	f, err := openChrootDir(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fchdir(int(f.Fd())); err != nil {
		return fmt.Errorf("chroot %s: fchdir: %w", dir, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", dir, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chroot %s: chdir /: %w", dir, err)
	}
	return nil
}

// CheckChrootDir reports whether dir can be Chroot's root: an empty
// directory owned by root that neither its group nor others may write
// (as Firecracker's jailer requires of its chroot). Whoever may write it
// could put files there for the VMM to use after the chroot: a shared
// network's socket is dialled again by its path, so a fake one would take
// over the VM's network. Callers check it before long work that Chroot
// would follow. A path that is missing or not a directory is said
// plainly, before any open (it read "open DIR: no such file or
// directory" and "readdirent DIR: not a directory").
func CheckChrootDir(dir string) error {
	f, err := openChrootDir(dir)
	if err != nil {
		return err
	}
	return f.Close()
}

// openChrootDir opens dir and checks it through the descriptor, as
// CheckChrootDir says.
func openChrootDir(dir string) (*os.File, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &ChrootDirError{Dir: dir, Reason: "does not exist"}
	case err != nil:
		return nil, fmt.Errorf("%s: %w", dir, pathErr(err))
	case !st.IsDir():
		return nil, &ChrootDirError{Dir: dir, Reason: "is " + filekind.Of(st.Mode()) + ", not a directory"}
	}
	// O_DIRECTORY: a FIFO put in its place since the stat is refused,
	// not opened (which would wait for a writer).
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	if err := checkChrootFile(dir, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkChrootFile checks the open directory f, named dir: empty, root's,
// only root may write it. Emptiness first: a directory in use, such as
// /tmp, is refused as that, never with a hint at its owner or mode.
func checkChrootFile(dir string, f *os.File) error {
	names, err := f.Readdirnames(1)
	switch {
	case err == nil && len(names) > 0:
		return &ChrootDirError{Dir: dir, Reason: fmt.Sprintf("is not empty (it holds %s)", names[0])}
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("%s: %w", dir, pathErr(err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("%s: fstat: %w", dir, err)
	}
	const risk = " could put files in it for the VMM to use, such as a socket in place of its network's"
	if st.Uid != 0 {
		owner := fmt.Sprintf("uid %d", st.Uid)
		if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
			owner += " (" + u.Username + ")"
		}
		return &ChrootDirError{Dir: dir, Reason: "is owned by " + owner + ", not root: its owner" + risk}
	}
	// With an ACL, the group's bits are its mask: a named user or group
	// that may write shows there.
	if w := st.Mode & 0o022; w != 0 {
		who := map[uint32]string{0o020: "its group", 0o002: "others", 0o022: "its group and others"}[w]
		return &ChrootDirError{Dir: dir, Reason: fmt.Sprintf("is writable by %s (mode %04o): they%s", who, st.Mode&0o7777, risk)}
	}
	return nil
}

// pathErr is err without the *fs.PathError's operation and path, which
// the caller's message names already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
