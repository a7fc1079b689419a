// Package sandbox contains a running VMM: a seccomp-BPF allow-list of the
// system calls it still needs once its VM is set up, and the dropping of
// root's privileges after everything has been opened.
//
// A guest is hostile and the device models are its attack surface. Once a
// Machine has opened /dev/kvm, its images and its network, what it does is
// KVM_RUN, I/O on the descriptors it holds, the user network's sockets and
// the Go runtime's own calls (threads, memory, futexes, signals). Filter
// allows exactly those; any other call (openat, execve, ptrace, mount...)
// is not executed: the kernel raises SIGSYS (SECCOMP_RET_TRAP) on the
// thread that tried it, and a handler written in assembly, outside the Go
// runtime, restores the terminal, writes one line naming the call to
// standard error and ends the process with ExitStatus. Trapping rather
// than SECCOMP_RET_KILL_PROCESS is what Firecracker does too: the call
// is refused either way, but the user sees which call it was instead of a
// bare "Bad system call" (the kernel's own log of a kill goes to the audit
// log, which the user of a terminal does not read).
//
// The filter is installed with SECCOMP_FILTER_FLAG_TSYNC, so every thread
// the Go runtime has started carries it, and threads started later inherit
// it; no_new_privs is set first, as the kernel requires of an unprivileged
// process, and it also keeps an exec (were it allowed) from gaining
// privileges.
//
// The standard descriptors 0, 1 and 2 are the caller's: the filter
// refuses fcntl(F_SETFL), ftruncate and futimens on them (a log opened
// to append, 2>>log, keeps its O_APPEND, its earlier lines and its
// times), so a program that
// embeds the package changes their status flags before installing it.
// Go itself does not change them after: File.Fd makes blocking only
// sockets and descriptors Go made non-blocking, not os.Stdin, os.Stdout
// or os.Stderr.
package sandbox

import (
	"errors"
	"fmt"
)

// OpenRefusedQuietly is true in a cgo build: there, openat fails with
// EACCES instead of being trapped. glibc's malloc opens
// /proc/sys/vm/overcommit_memory the first time it shrinks a thread's heap,
// which can happen in a thread glibc has just started, before the Go
// runtime unblocks its signals; a SIGSYS raised while blocked kills the
// process without a word ("Bad system call", status 159), about one run in
// fifty at a VM's exit. Refusing the call keeps it refused (glibc then
// assumes the default policy) at the cost of the report naming it. A build
// with CGO_ENABLED=0, as make build does, has no such thread and traps
// every forbidden call.
const OpenRefusedQuietly = linkedWithLibc

// ExitStatus is the exit status of a process that attempted a forbidden
// system call (as Firecracker's 148; an even number, so that it never
// looks like a guest's (v<<1)|1 debug-exit status).
const ExitStatus = 148

// ExitStatusSIGSYS is the exit status of a filtered process that received
// SIGSYS from another process (kill -SYS) rather than from its filter: the
// handler says who sent it and exits as a process killed by SIGSYS is
// reported (128+31). It cannot give the signal its default action again,
// as the filter refuses changing SIGSYS's handler.
const ExitStatusSIGSYS = 128 + 31

// ErrUnsupported means this platform has no seccomp filter here (only
// linux/amd64 has one).
var ErrUnsupported = errors.New("seccomp filtering is only implemented on linux/amd64")

// ChrootDirError is Chroot's and CheckChrootDir's refusal of the
// directory itself: missing, not a directory, not empty, another user's,
// or writable by its group or others. Its advice is a new directory,
// never to change the owner or mode of the one given, which other
// programs may share (/tmp).
type ChrootDirError struct {
	Dir    string // the directory as given
	Reason string // what is wrong, after the directory's name: "is not empty (it holds x)"
}

// ChrootDirAdvice ends every ChrootDirError's message.
const ChrootDirAdvice = "give a new empty directory owned by root that only root may write"

// Error is the directory, what is wrong with it, and ChrootDirAdvice.
func (e *ChrootDirError) Error() string {
	return e.Dir + " " + e.Reason + "; " + ChrootDirAdvice
}

// Filter is the allow-list of a running VMM and how a forbidden call is
// reported.
type Filter struct {
	// Ioctls are the ioctl requests allowed besides the terminal's
	// (TCGETS, TCSETS...): a VMM passes the KVM requests it issues while
	// running (vmm.RunIoctls).
	Ioctls []uint64
	// Sockets allows IPv4 and IPv6 TCP and UDP sockets and the calls on
	// them (connect, accept, send, receive...): the user network's NAT
	// and its forwarded ports, and a ready port being probed. Not bind
	// nor listen (listeners are opened before the filter), nor raw,
	// packet or ICMP sockets, nor another family (netlink...); and with
	// it or UnixSockets, setsockopt and getsockopt only for the options
	// Go's net package uses (address reuse, broadcast, IPv6-only, TCP's
	// no-delay and keep-alive; a connect's error, a Unix peer's
	// credentials), not iptables' or multicast's. Without it socket is
	// forbidden.
	Sockets bool
	// UnixSockets allows Unix sockets and the same calls on them, but
	// for sendmsg, recvmsg, sendmmsg and recvmmsg (which only Sockets
	// allows), whose ancillary data would pass descriptors: a VM on a
	// shared network dials its hub's socket again when the hub returns. The filter cannot see which address connect names, so any
	// Unix socket file the process's user may connect to is reachable (as
	// root: a container runtime's, the system bus...), and any abstract
	// Unix socket of its network namespace, whatever its user and root
	// directory (an abstract socket has no permission check and no path):
	// set it only for such a VM. Its user bounds the files it reaches;
	// only a network namespace of its own keeps it from the host's
	// abstract sockets. Without Sockets, IPv4 and IPv6 sockets stay
	// forbidden.
	UnixSockets bool
	// Listen allows bind and listen, with Sockets: a shared network's
	// daemon opens a VM's forwarded ports on the host when it joins.
	// The filter cannot see a bind's address, so any port the process
	// may bind is open to it; without UnixSockets, socket makes IPv4 and
	// IPv6 sockets only, and its Unix listeners are bound already.
	Listen bool
	// RenameDir, when not zero, is a descriptor of a directory in which
	// renameat and renameat2 may rename or exchange files, unlinkat
	// may remove files (not directories) and newfstatat may describe
	// them: every path relative to it. The
	// filter cannot see the names, and a name may be absolute or climb
	// out with "..": set it only for a process that chooses the names
	// itself (smolvmm's broker, which renames the snapshots a VMM
	// writes), never for one a guest may take over. (Descriptor 0 is
	// standard input, never such a directory.)
	RenameDir int
	// ReadFiles allows openat to open files for reading only: its flags
	// without O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND or
	// O_TMPFILE (O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY... are
	// allowed), then fstat, read and close on what it opened, as on any
	// descriptor. The filter cannot see the path, so any file the
	// process's user may read is readable: set it only for a process
	// that chooses the paths itself (a shared network's broker, which
	// reads the host's resolver files), never for one a guest may take
	// over. Not openat2, whose flags the filter cannot read. In a cgo
	// build (OpenRefusedQuietly) other opens fail with EACCES.
	ReadFiles bool
	// Truncate allows ftruncate on the descriptors held but the
	// standard ones (0, 1, 2: a log opened to append keeps its earlier
	// lines): a VMM empties a snapshot's temporary file before writing
	// it again.
	Truncate bool
	// SetFileTimes allows futimens, utimensat on a descriptor held but
	// the standard ones with no path and no flags: a vmm.Machine
	// writing a snapshot sets a read-write disk image's modification
	// time back, so that the restore of the unchanged image trusts it
	// without reading the image. The filter cannot see which file a
	// descriptor is, so the times of any file the process holds open
	// may be changed (its content no more than before); a path, which
	// would reach any file of the process's user, is refused. Other
	// forms of utimensat, and every form without SetFileTimes, fail with
	// EPERM instead of being trapped: a snapshot then keeps the image's
	// time, and the restore reads the image.
	SetFileTimes bool

	// Prefix starts the line printed when a call is refused (e.g.
	// "smolvmm: "); Advice ends it (e.g. how to turn the filter off).
	Prefix, Advice string
	// Process is what that line calls the process ("the VMM" when
	// empty).
	Process string
	// Terminal, when set, is put back in this state before the line is
	// printed (a console in raw mode would otherwise stay so).
	Terminal *Terminal
}

// Terminal is a terminal to restore when the process is stopped for a
// forbidden call: TCSETS with Termios (a *unix.Termios's bytes) on FD.
type Terminal struct {
	FD      int
	Termios []byte
}

// Installed describes an installed filter.
type Installed struct {
	// Instructions is the number of BPF instructions of the filter (each
	// 8 bytes; the kernel accepts at most 4096).
	Instructions int
}

// Bytes is the filter's size in bytes.
func (i Installed) Bytes() int { return i.Instructions * 8 }

// String says how large the filter is, for a verbose log.
func (i Installed) String() string {
	s := fmt.Sprintf("seccomp filter of %d BPF instructions (%d bytes)", i.Instructions, i.Bytes())
	if OpenRefusedQuietly {
		s += ", openat refused without a report (a cgo build)"
	}
	return s
}
