//go:build linux && amd64

package sandbox

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// kvmRun is KVM_RUN; tiocsti (push a byte into a terminal's input) is an
// ioctl a compromised VMM must not make.
const (
	kvmRun  = 0xAE80
	tiocsti = 0x5412
)

// seccompData lays out struct seccomp_data for x/net/bpf's VM, which loads
// 32-bit words big-endian where the kernel loads them in the host's order:
// each word is stored big-endian at its little-endian place.
func seccompData(auditArch uint32, nr int, args ...uint64) []byte {
	b := make([]byte, 64)
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	put(0, uint32(nr))
	put(4, auditArch)
	for i, a := range args {
		put(16+8*i, uint32(a))
		put(20+8*i, uint32(a>>32))
	}
	return b
}

const auditArchX8664 = 0xC000003E

// filterVM is f's program in x/net/bpf's VM.
func filterVM(t *testing.T, f Filter) *bpf.VM {
	t.Helper()
	insts, err := f.Program()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// verdict is what f's program decides for system call nr of the
// architecture auditArch with args.
func verdict(t *testing.T, f Filter, auditArch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	got, err := filterVM(t, f).Run(seccompData(auditArch, nr, args...))
	if err != nil {
		t.Fatal(err)
	}
	return uint32(got)
}

func TestFilterVerdicts(t *testing.T) {
	pid := os.Getpid()
	tests := []struct {
		name          string
		sockets, unix bool
		renameDir     int
		truncate      bool // Filter.Truncate
		fileTimes     bool // Filter.SetFileTimes
		arch          uint32
		nr            int
		args          []uint64
		want          uint32
	}{
		{name: "KVM_RUN", nr: 16, args: []uint64{9, kvmRun}, want: retAllow},
		// The kernel takes ioctl's command as an unsigned int.
		{name: "KVM_RUN with high bits set", nr: 16, args: []uint64{9, 1<<32 | kvmRun}, want: retAllow},
		// The next call's number: a library's filter let it through.
		{name: "ioctl numbered as futex", nr: 16, args: []uint64{9, 202}, want: retTrap},
		{name: "ioctl numbered as read", nr: 16, args: []uint64{9, 0}, want: retTrap},
		{name: "TCSETS", nr: 16, args: []uint64{0, 0x5402}, want: retAllow},
		{name: "TIOCSTI", nr: 16, args: []uint64{0, tiocsti}, want: retTrap},
		{name: "KVM_CREATE_VM after setup", nr: 16, args: []uint64{3, 0xAE01}, want: retTrap},
		{name: "read", nr: 0, want: retAllow},
		{name: "futex", nr: 202, want: retAllow},
		{name: "pwritev", nr: 296, want: retAllow},
		{name: "openat", nr: 257, args: []uint64{^uint64(99), 0}, want: openatVerdict},
		{name: "open", nr: 2, want: retTrap},
		{name: "execve", nr: 59, want: retTrap},
		{name: "ptrace", nr: 101, want: retTrap},
		{name: "mount", nr: 165, want: retTrap},
		{name: "unshare", nr: 272, want: retTrap},
		{name: "setns", nr: 308, want: retTrap},
		{name: "chroot", nr: 161, want: retTrap},
		{name: "setresuid", nr: 117, want: retTrap},
		{name: "bpf", nr: 321, want: retTrap},
		{name: "seccomp (another filter)", nr: 317, want: retTrap},
		{name: "prctl", nr: 157, want: retTrap},
		{name: "prctl PR_SET_VMA_ANON_NAME", nr: 157, args: []uint64{unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME, 0x10000, 4096, 0x20000}, want: retAllow},
		{name: "prctl PR_SET_VMA, another operation", nr: 157, args: []uint64{unix.PR_SET_VMA, 1, 0x10000, 4096, 0x20000}, want: retTrap},
		{name: "prctl PR_SET_NAME", nr: 157, args: []uint64{unix.PR_SET_NAME, 0x20000}, want: retTrap},
		{name: "prctl PR_SET_DUMPABLE", nr: 157, args: []uint64{unix.PR_SET_DUMPABLE, 1}, want: retTrap},
		{name: "prctl PR_SET_NO_NEW_PRIVS numbered as PR_SET_VMA_ANON_NAME", nr: 157, args: []uint64{unix.PR_SET_NO_NEW_PRIVS, unix.PR_SET_VMA_ANON_NAME}, want: retTrap},
		{name: "unlinkat", nr: 263, want: retTrap},
		{name: "clone of a thread", nr: 56, args: []uint64{0x50f00}, want: retAllow},
		{name: "clone of a process (fork)", nr: 56, args: []uint64{0x11}, want: retTrap},
		{name: "mmap read-write", nr: 9, args: []uint64{0, 4096, 3, 0x22}, want: retAllow},
		{name: "mmap executable", nr: 9, args: []uint64{0, 4096, 7, 0x22}, want: retTrap},
		{name: "mprotect to no access", nr: 10, args: []uint64{0, 4096, 0}, want: retAllow},
		{name: "mprotect to executable", nr: 10, args: []uint64{0, 4096, 5}, want: retTrap},
		{name: "clone3 fails with ENOSYS", nr: 435, want: retErrno | 38},
		{name: "tgkill of this process", nr: 234, args: []uint64{uint64(pid), 5, 23}, want: retAllow},
		{name: "tgkill of another process", nr: 234, args: []uint64{uint64(pid) + 1, 5, 23}, want: retTrap},
		{name: "kill of another process", nr: 62, args: []uint64{1, 9}, want: retTrap},
		{name: "rt_sigaction SIGINT", nr: 13, args: []uint64{2}, want: retAllow},
		{name: "rt_sigaction SIGSYS", nr: 13, args: []uint64{31}, want: retTrap},
		{name: "fcntl F_SETFL", nr: 72, args: []uint64{3, 4}, want: retAllow},
		{name: "fcntl F_SETFL O_NONBLOCK on a tap", nr: 72, args: []uint64{9, unix.F_SETFL, unix.O_RDWR | unix.O_NONBLOCK}, want: retAllow},
		// Standard error opened to append (2>>log): a VMM taken over
		// cleared O_APPEND, then wrote over the log's first lines.
		{name: "fcntl F_SETFL on standard error", nr: 72, args: []uint64{2, unix.F_SETFL, unix.O_WRONLY}, want: retTrap},
		{name: "fcntl F_SETFL O_APPEND kept on standard error", nr: 72, args: []uint64{2, unix.F_SETFL, unix.O_WRONLY | unix.O_APPEND}, want: retTrap},
		{name: "fcntl F_SETFL on standard input", nr: 72, args: []uint64{0, unix.F_SETFL, unix.O_NONBLOCK}, want: retTrap},
		{name: "fcntl F_SETFL on standard output", nr: 72, args: []uint64{1, unix.F_SETFL, 0}, want: retTrap},
		// The kernel reads the descriptor as an unsigned int.
		{name: "fcntl F_SETFL on standard error, high bits set", nr: 72, args: []uint64{1<<32 | 2, unix.F_SETFL, 0}, want: retTrap},
		{name: "fcntl F_GETFL on standard error", nr: 72, args: []uint64{2, unix.F_GETFL}, want: retAllow},
		{name: "fcntl F_SETFD on standard error", nr: 72, args: []uint64{2, unix.F_SETFD, unix.FD_CLOEXEC}, want: retAllow},
		{name: "pwritev2", nr: unix.SYS_PWRITEV2, args: []uint64{7, 0x10000, 1, 0, 0, unix.RWF_DSYNC}, want: retAllow},
		{name: "pwritev2 RWF_NOAPPEND", nr: unix.SYS_PWRITEV2, args: []uint64{2, 0x10000, 1, 0, 0, unix.RWF_NOAPPEND}, want: retTrap},
		{name: "pwrite64 on standard error", nr: unix.SYS_PWRITE64, args: []uint64{2, 0x10000, 1, 0}, want: retAllow},
		{name: "fcntl F_DUPFD", nr: 72, args: []uint64{3, 0}, want: retTrap},
		{name: "socket without Sockets", nr: 41, args: []uint64{2, 1, 0}, want: retTrap},
		{name: "connect without Sockets", nr: 42, want: retTrap},
		{name: "socket AF_INET", sockets: true, nr: 41, args: []uint64{2, 1, 0}, want: retAllow},
		{name: "socket AF_INET6", sockets: true, nr: 41, args: []uint64{10, 2, 0}, want: retAllow},
		{name: "socket AF_UNIX", sockets: true, nr: 41, args: []uint64{1, 1, 0}, want: retTrap},
		{name: "socket AF_UNIX with UnixSockets", sockets: true, unix: true, nr: 41, args: []uint64{1, 1, 0}, want: retAllow},
		{name: "socket AF_UNIX with UnixSockets only", unix: true, nr: 41, args: []uint64{1, 1, 0}, want: retAllow},
		{name: "socket AF_INET with UnixSockets only", unix: true, nr: 41, args: []uint64{2, 1, 0}, want: retTrap},
		{name: "socket AF_INET6 with UnixSockets only", unix: true, nr: 41, args: []uint64{10, 1, 0}, want: retTrap},
		{name: "connect with UnixSockets only", unix: true, nr: 42, want: retAllow},
		// Descriptors passed over a Unix socket (SCM_RIGHTS).
		{name: "sendmsg with UnixSockets only", unix: true, nr: unix.SYS_SENDMSG, want: retTrap},
		{name: "recvmsg with UnixSockets only", unix: true, nr: unix.SYS_RECVMSG, want: retTrap},
		{name: "sendmmsg with UnixSockets only", unix: true, nr: unix.SYS_SENDMMSG, want: retTrap},
		{name: "recvmmsg with UnixSockets only", unix: true, nr: unix.SYS_RECVMMSG, want: retTrap},
		{name: "read with UnixSockets only", unix: true, nr: 0, want: retAllow},
		{name: "sendto with UnixSockets only", unix: true, nr: unix.SYS_SENDTO, want: retAllow},
		{name: "sendmsg with Sockets", sockets: true, nr: unix.SYS_SENDMSG, want: retAllow},
		{name: "recvmsg with Sockets", sockets: true, nr: unix.SYS_RECVMSG, want: retAllow},
		{name: "sendmsg without sockets", nr: unix.SYS_SENDMSG, want: retTrap},
		{name: "socket AF_NETLINK with UnixSockets", sockets: true, unix: true, nr: 41, args: []uint64{16, 3, 0}, want: retTrap},
		{name: "socket AF_NETLINK", sockets: true, nr: 41, args: []uint64{16, 3, 0}, want: retTrap},
		{name: "connect", sockets: true, nr: 42, want: retAllow},
		// Only TCP and UDP: a raw socket let a root VMM forge packets
		// and reach iptables (IPT_SO_SET_REPLACE).
		{name: "socket TCP as Go opens it", sockets: true, nr: 41, args: []uint64{2, 1 | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, 0}, want: retAllow},
		{name: "socket TCP IPv6 IPPROTO_TCP", sockets: true, nr: 41, args: []uint64{10, 1 | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, unix.IPPROTO_TCP}, want: retAllow},
		{name: "socket MPTCP", sockets: true, nr: 41, args: []uint64{2, 1 | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP}, want: retAllow},
		{name: "socket UDP", sockets: true, nr: 41, args: []uint64{2, 2 | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, 0}, want: retAllow},
		{name: "socket UDP IPv6 IPPROTO_UDP", sockets: true, nr: 41, args: []uint64{10, 2, unix.IPPROTO_UDP}, want: retAllow},
		{name: "socket SOCK_RAW IPPROTO_RAW", sockets: true, nr: 41, args: []uint64{2, unix.SOCK_RAW, unix.IPPROTO_RAW}, want: retTrap},
		{name: "socket SOCK_RAW IPPROTO_ICMP", sockets: true, nr: 41, args: []uint64{2, unix.SOCK_RAW | unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP}, want: retTrap},
		{name: "socket SOCK_RAW IPv6 IPPROTO_TCP", sockets: true, nr: 41, args: []uint64{10, unix.SOCK_RAW, unix.IPPROTO_TCP}, want: retTrap},
		{name: "socket ping (SOCK_DGRAM IPPROTO_ICMP)", sockets: true, nr: 41, args: []uint64{2, unix.SOCK_DGRAM, unix.IPPROTO_ICMP}, want: retTrap},
		{name: "socket SOCK_STREAM IPPROTO_UDP", sockets: true, nr: 41, args: []uint64{2, unix.SOCK_STREAM, unix.IPPROTO_UDP}, want: retTrap},
		{name: "socket SOCK_SEQPACKET SCTP", sockets: true, nr: 41, args: []uint64{2, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP}, want: retTrap},
		{name: "socket TCP with another flag bit", sockets: true, nr: 41, args: []uint64{2, 1 | 0x10000, 0}, want: retTrap},
		{name: "socket AF_PACKET", sockets: true, unix: true, nr: 41, args: []uint64{unix.AF_PACKET, unix.SOCK_RAW, 0x300}, want: retTrap},
		{name: "socket AF_PACKET datagram", sockets: true, nr: 41, args: []uint64{unix.AF_PACKET, unix.SOCK_DGRAM, 0x300}, want: retTrap},
		{name: "socket AF_NETLINK route", sockets: true, nr: 41, args: []uint64{unix.AF_NETLINK, unix.SOCK_RAW | unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE}, want: retTrap},
		{name: "setsockopt TCP_NODELAY", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_TCP, unix.TCP_NODELAY}, want: retAllow},
		{name: "setsockopt TCP_KEEPIDLE", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}, want: retAllow},
		{name: "setsockopt SO_KEEPALIVE", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_KEEPALIVE}, want: retAllow},
		{name: "setsockopt SO_REUSEADDR", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_REUSEADDR}, want: retAllow},
		{name: "setsockopt SO_BROADCAST", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_BROADCAST}, want: retAllow},
		{name: "setsockopt IPV6_V6ONLY", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}, want: retAllow},
		{name: "setsockopt IPT_SO_SET_REPLACE", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_IP, 64}, want: retTrap},
		{name: "setsockopt IP6T_SO_SET_REPLACE", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_IPV6, 64}, want: retTrap},
		{name: "setsockopt IP_HDRINCL", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_IP, unix.IP_HDRINCL}, want: retTrap},
		{name: "setsockopt SO_MARK", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_MARK}, want: retTrap},
		{name: "setsockopt SO_BINDTODEVICE", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_BINDTODEVICE}, want: retTrap},
		{name: "setsockopt SO_ATTACH_FILTER", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER}, want: retTrap},
		{name: "setsockopt TCP_REPAIR", sockets: true, nr: 54, args: []uint64{5, unix.IPPROTO_TCP, unix.TCP_REPAIR}, want: retTrap},
		{name: "setsockopt TCP_NODELAY's number at SOL_SOCKET (SO_DEBUG)", sockets: true, nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.TCP_NODELAY}, want: retTrap},
		{name: "getsockopt SO_ERROR", sockets: true, nr: 55, args: []uint64{5, unix.SOL_SOCKET, unix.SO_ERROR}, want: retAllow},
		{name: "getsockopt SO_PEERCRED with UnixSockets only", unix: true, nr: 55, args: []uint64{5, unix.SOL_SOCKET, unix.SO_PEERCRED}, want: retAllow},
		{name: "getsockopt IPT_SO_GET_INFO", sockets: true, nr: 55, args: []uint64{5, unix.IPPROTO_IP, 64}, want: retTrap},
		{name: "getsockopt IPT_SO_GET_ENTRIES", sockets: true, nr: 55, args: []uint64{5, unix.IPPROTO_IP, 65}, want: retTrap},
		{name: "setsockopt without Sockets", nr: 54, args: []uint64{5, unix.SOL_SOCKET, unix.SO_KEEPALIVE}, want: retTrap},
		{name: "newfstatat", nr: 262, want: retTrap},
		{name: "accept4", sockets: true, nr: 288, want: retAllow},
		{name: "accept", sockets: true, nr: 43, want: retAllow},
		// The forwards' listeners are opened before the filter: a VMM
		// taken over bound 0.0.0.0:444, or a Unix socket's file.
		{name: "bind", sockets: true, nr: unix.SYS_BIND, want: retTrap},
		{name: "listen", sockets: true, nr: unix.SYS_LISTEN, want: retTrap},
		{name: "bind with UnixSockets", unix: true, nr: unix.SYS_BIND, want: retTrap},
		{name: "listen with UnixSockets", unix: true, nr: unix.SYS_LISTEN, want: retTrap},
		{name: "madvise MADV_DONTNEED", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_DONTNEED}, want: retAllow},
		{name: "madvise MADV_FREE", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_FREE}, want: retAllow},
		{name: "madvise MADV_HUGEPAGE", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_HUGEPAGE}, want: retAllow},
		{name: "madvise MADV_NOHUGEPAGE", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_NOHUGEPAGE}, want: retAllow},
		{name: "madvise MADV_COLLAPSE", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_COLLAPSE}, want: retAllow},
		// A root VMM could take the host's RAM offline page by page.
		{name: "madvise MADV_HWPOISON", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_HWPOISON}, want: retTrap},
		{name: "madvise MADV_SOFT_OFFLINE (101)", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, 101}, want: retTrap},
		{name: "madvise MADV_REMOVE", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, unix.MADV_REMOVE}, want: retTrap},
		{name: "madvise MADV_HWPOISON with high bits set", nr: unix.SYS_MADVISE, args: []uint64{0x10000, 4096, 1<<32 | unix.MADV_HWPOISON}, want: retTrap},
		{name: "renameat without RenameDir", nr: 264, args: []uint64{7, 0, 7, 0}, want: retTrap},
		{name: "renameat in RenameDir", renameDir: 7, nr: 264, args: []uint64{7, 0, 7, 0}, want: retAllow},
		{name: "renameat out of RenameDir", renameDir: 7, nr: 264, args: []uint64{7, 0, 8, 0}, want: retTrap},
		{name: "renameat into RenameDir", renameDir: 7, nr: 264, args: []uint64{^uint64(99), 0, 7, 0}, want: retTrap},
		{name: "renameat2 in RenameDir", renameDir: 7, nr: 316, args: []uint64{7, 0, 7, 0, 0}, want: retAllow},
		{name: "renameat2 exchange in RenameDir", renameDir: 7, nr: 316, args: []uint64{7, 0, 7, 0, 2}, want: retAllow},
		{name: "renameat2 whiteout in RenameDir", renameDir: 7, nr: 316, args: []uint64{7, 0, 7, 0, 4}, want: retTrap},
		{name: "renameat2 exchange out of RenameDir", renameDir: 7, nr: 316, args: []uint64{7, 0, 3, 0, 2}, want: retTrap},
		// The broker checks what a name holds before renaming it.
		{name: "newfstatat in RenameDir", renameDir: 7, nr: 262, args: []uint64{7, 0, 0, unix.AT_SYMLINK_NOFOLLOW}, want: retAllow},
		{name: "newfstatat out of RenameDir", renameDir: 7, nr: 262, args: []uint64{^uint64(99), 0, 0, 0}, want: retTrap},
		{name: "newfstatat without RenameDir", nr: 262, args: []uint64{7, 0, 0, 0}, want: retTrap},
		{name: "ftruncate without Truncate", nr: 77, args: []uint64{7, 0}, want: retTrap},
		{name: "ftruncate with RenameDir only", renameDir: 7, nr: 77, args: []uint64{7, 0}, want: retTrap},
		{name: "ftruncate with Truncate", truncate: true, nr: 77, args: []uint64{7, 0}, want: retAllow},
		{name: "ftruncate of standard error with Truncate", truncate: true, nr: 77, args: []uint64{2, 0}, want: retTrap},
		{name: "ftruncate of standard input with Truncate", truncate: true, nr: 77, args: []uint64{0, 0}, want: retTrap},
		// A VMM writing snapshots (Truncate, no RenameDir: its broker
		// renames) may neither rename nor remove anything, by any
		// directory descriptor.
		{name: "renameat with Truncate", truncate: true, nr: 264, args: []uint64{7, 0, 7, 0}, want: retTrap},
		{name: "renameat2 with Truncate", truncate: true, nr: 316, args: []uint64{7, 0, 7, 0, 2}, want: retTrap},
		{name: "unlinkat with Truncate", truncate: true, nr: 263, args: []uint64{7, 0, 0}, want: retTrap},
		{name: "unlinkat in RenameDir", renameDir: 7, nr: 263, args: []uint64{7, 0, 0}, want: retAllow},
		{name: "unlinkat of a directory in RenameDir", renameDir: 7, nr: 263, args: []uint64{7, 0, 0x200}, want: retTrap},
		{name: "unlinkat elsewhere with RenameDir", renameDir: 7, nr: 263, args: []uint64{^uint64(99), 0, 0}, want: retTrap},
		{name: "linkat with RenameDir", renameDir: 7, nr: 265, args: []uint64{7, 0, 7, 0, 0}, want: retTrap},
		// futimens on an open image (a snapshot sets a writable
		// image's time back); any other form fails, not trapped.
		{name: "futimens", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0, 0x10000, 0}, want: retAllow},
		{name: "futimens, descriptor's high bits set", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{1<<32 | 7, 0, 0x10000, 0}, want: retAllow},
		{name: "futimens, times NULL (now)", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0, 0, 0}, want: retAllow},
		{name: "futimens without SetFileTimes", nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "futimens with Truncate only", truncate: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "futimens of standard error", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{2, 0, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "futimens of standard input", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{0, 0, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "utimensat with a path", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{^uint64(99), 0x20000, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "utimensat with a path by a descriptor", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0x20000, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		// A path whose low half is 0: not NULL.
		{name: "utimensat with a path above 4 GiB", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 1 << 32, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "utimensat with a path at 0xc000000000", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0xc0_0000_0000, 0x10000, 0}, want: retErrno | uint32(unix.EPERM)},
		{name: "futimens AT_SYMLINK_NOFOLLOW", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0, 0x10000, unix.AT_SYMLINK_NOFOLLOW}, want: retErrno | uint32(unix.EPERM)},
		{name: "futimens AT_EMPTY_PATH", fileTimes: true, nr: unix.SYS_UTIMENSAT, args: []uint64{7, 0, 0x10000, unix.AT_EMPTY_PATH}, want: retErrno | uint32(unix.EPERM)},
		// Not the older calls, which take a path (futimesat's NULL
		// path the kernel refuses anyway).
		{name: "utimes with SetFileTimes", fileTimes: true, nr: unix.SYS_UTIMES, args: []uint64{0x20000, 0x10000}, want: retTrap},
		{name: "utime with SetFileTimes", fileTimes: true, nr: unix.SYS_UTIME, args: []uint64{0x20000, 0x10000}, want: retTrap},
		{name: "futimesat with SetFileTimes", fileTimes: true, nr: unix.SYS_FUTIMESAT, args: []uint64{7, 0, 0x10000}, want: retTrap},
		{name: "i386 ABI", arch: 0x40000003, nr: 3, want: retTrap},
		{name: "x32 ABI", nr: 0x40000000, want: retTrap},
		{name: "x32 read", nr: 0x40000000 | 0, want: retTrap},
		{name: "fcntl F_DUPFD numbered as read", nr: 72, args: []uint64{3, 0}, want: retTrap},
		{name: "mmap with prot numbered as an allowed call", nr: 9, args: []uint64{0, 4096, 4 | 1, 0x22}, want: retTrap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Filter{Ioctls: []uint64{kvmRun, 0x4040AE79}, Sockets: tt.sockets, UnixSockets: tt.unix, RenameDir: tt.renameDir,
				Truncate: tt.truncate, SetFileTimes: tt.fileTimes}
			arch := tt.arch
			if arch == 0 {
				arch = auditArchX8664
			}
			if got := verdict(t, f, arch, tt.nr, tt.args...); got != uint32(tt.want) {
				t.Errorf("verdict %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestProgramSize(t *testing.T) {
	var sizes []int
	for _, sockets := range []bool{false, true} {
		f := Filter{Ioctls: []uint64{kvmRun}, Sockets: sockets}
		insts, err := f.Program()
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(insts))
		// Sizes gives this build's size as its own.
		static, cgo, err := f.Sizes()
		if err != nil {
			t.Fatal(err)
		}
		if own := map[bool]int{false: static, true: cgo}[OpenRefusedQuietly]; own != len(insts) || static == cgo {
			t.Errorf("Sizes() = %d static, %d cgo; this build's program (cgo %v) has %d", static, cgo, OpenRefusedQuietly, len(insts))
		}
	}
	if sizes[0] >= sizes[1] || sizes[1] > 400 {
		t.Errorf("filter sizes %v: want the socket calls to add instructions, and both well under the kernel's 4096", sizes)
	}
	if s := (Installed{Instructions: 10}).String(); !strings.Contains(s, "10 BPF instructions (80 bytes)") {
		t.Errorf("Installed.String() = %q", s)
	}
}

// The child modes of TestMain: the test binary re-executed with
// SANDBOX_TEST_CHILD set installs the filter and then does what the mode
// says, so that a refused call ends that process, not the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SANDBOX_TEST_CHILD"); mode != "" {
		os.Exit(child(mode))
	}
	if mode := os.Getenv("SANDBOX_TEST_DROP"); mode != "" {
		os.Exit(dropChild(mode))
	}
	if mode := os.Getenv("SANDBOX_TEST_CAPS"); mode != "" {
		os.Exit(capsChild(strings.TrimPrefix(mode, "x"))) // privileges_linux_test.go
	}
	if name := os.Getenv("SANDBOX_TEST_NAME"); name != "" {
		os.Exit(nameChild(name)) // jail_linux_test.go
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	// A thread that exists before the filter: TSYNC must cover it.
	ready, run := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(ready)
		<-run
		_, err := os.Open("/etc/passwd")
		fmt.Fprintln(os.Stderr, "old thread opened /etc/passwd:", err)
		os.Exit(0)
	}()
	<-ready
	if mode == "wait-busy" {
		// Goroutines that keep every thread busy, and a blocking call
		// between no_new_privs and the filter: the runtime hands the
		// processor to another thread meanwhile, and a goroutine not
		// held on its thread resumes on another one.
		for range 4 {
			go func() {
				for {
				}
			}()
		}
		betweenNoNewPrivsAndSeccomp = func() {
			unix.Nanosleep(&unix.Timespec{Nsec: int64(time.Millisecond)}, nil)
		}
	}
	f := Filter{Prefix: "child: ", Advice: " (test)", Process: os.Getenv("SANDBOX_TEST_PROCESS"), UnixSockets: mode == "bind-unix",
		ReadFiles: mode == "read-open" || mode == "create-open", SetFileTimes: os.Getenv("SANDBOX_TEST_FILETIMES") != ""}
	var setTimes func() error
	if strings.HasPrefix(mode, "utimensat-") {
		// Opened and mapped before the filter, which forbids openat.
		var err error
		if setTimes, err = fileTimesCall(mode, os.Getenv("SANDBOX_TEST_PATH")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	if _, err := Install(f); err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 3
	}
	if setTimes != nil {
		fmt.Println(mode+":", setTimes())
		return 0
	}
	switch mode {
	case "openat":
		_, err := os.Open("/etc/passwd")
		fmt.Fprintln(os.Stderr, "opened /etc/passwd:", err)
	case "read-open":
		_, err := os.ReadFile("/etc/passwd")
		fmt.Fprintln(os.Stderr, "read /etc/passwd:", err)
	case "create-open":
		_, err := os.OpenFile(os.Getenv("SANDBOX_TEST_PATH"), os.O_WRONLY|os.O_CREATE, 0o600)
		fmt.Fprintln(os.Stderr, "create refused:", err != nil)
	case "execve":
		err := syscall.Exec("/bin/true", []string{"true"}, nil)
		fmt.Fprintln(os.Stderr, "exec:", err)
	case "old-thread":
		close(run)
		select {}
	case "prctl-vma":
		// What the Go runtime does to name its heap's mappings
		// (decoratemappings): allowed, whether or not this kernel
		// names mappings (EINVAL without CONFIG_ANON_VMA_NAME).
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mmap:", err)
			return 3
		}
		name := []byte("test\x00")
		unix.Syscall6(unix.SYS_PRCTL, unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME,
			uintptr(unsafe.Pointer(&mem[0])), 4096, uintptr(unsafe.Pointer(&name[0])), 0)
		fmt.Fprintln(os.Stderr, "named a mapping")
	case "x32":
		_, _, err := unix.Syscall(unix.SYS_GETPID|x32SyscallBit, 0, 0, 0)
		fmt.Fprintln(os.Stderr, "x32 getpid:", err)
	case "madvise-random":
		// Advice no VMM gives, harmless should the filter let it
		// through (MADV_HWPOISON, which it refuses too, would take a
		// page of the host's RAM offline): TestFilterVerdicts checks
		// that one.
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err == nil {
			err = unix.Madvise(mem, unix.MADV_RANDOM)
		}
		fmt.Fprintln(os.Stderr, "madvise MADV_RANDOM:", err)
	case "madvise-dontneed":
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err == nil {
			mem[0] = 1
			err = unix.Madvise(mem, unix.MADV_DONTNEED)
		}
		fmt.Fprintln(os.Stderr, "madvise MADV_DONTNEED:", err)
	case "bind-unix":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrUnix{Name: os.Getenv("SANDBOX_TEST_PATH")})
		}
		fmt.Fprintln(os.Stderr, "bind:", err)
	case "unappend":
		// What a VMM taken over did to a log shared by several VMs
		// (2>>log): O_APPEND cleared, then a write at its start.
		fl, err := unix.FcntlInt(2, unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(2, unix.F_SETFL, fl&^unix.O_APPEND)
		}
		if err == nil {
			_, err = unix.Pwrite(2, []byte("OVERWRITTEN"), 0)
		}
		fmt.Fprintln(os.Stderr, "unappend:", err)
	case "noappend-write":
		_, err := unix.Pwritev2(2, [][]byte{[]byte("OVERWRITTEN")}, 0, unix.RWF_NOAPPEND)
		fmt.Fprintln(os.Stderr, "pwritev2 RWF_NOAPPEND:", err)
	case "append-pwrite":
		// Allowed: the kernel appends to a file opened so whatever
		// the offset.
		_, err := unix.Pwrite(2, []byte("appended\n"), 0)
		fmt.Fprintln(os.Stderr, "pwrite:", err)
	case "prctl-name":
		err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("x\x00")[0])), 0, 0, 0)
		fmt.Fprintln(os.Stderr, "renamed the thread:", err)
	case "wait", "wait-busy":
		fmt.Println("installed")
		// Threads keep running and the runtime keeps working under
		// the filter until the parent closes standard input.
		bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Println("bye")
	}
	return 0
}

// childMtime is the modification time the utimensat- children set.
var childMtime = time.Unix(1_000_000_000, 0)

// fileTimesCall opens path read-write and returns the call of the
// utimensat- child mode that sets its modification time to childMtime
// (its access time omitted): "utimensat-fd" on its descriptor (futimens),
// "utimensat-stderr" on descriptor 2, "utimensat-path" by its path,
// "utimensat-high" by its path at address 1<<32, whose low half is 0 (a
// filter testing only that half takes it for NULL), "utimensat-nofollow"
// on its descriptor with AT_SYMLINK_NOFOLLOW.
func fileTimesCall(mode, path string) (func() error, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ts := &[2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(childMtime.UnixNano())}
	call := func(dirfd int, path uintptr, flags int) func() error {
		return func() error {
			_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(dirfd), path, uintptr(unsafe.Pointer(ts)), uintptr(flags), 0, 0)
			runtime.KeepAlive(ts)
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
	name := append([]byte(path), 0)
	switch mode {
	case "utimensat-fd":
		return call(fd, 0, 0), nil
	case "utimensat-stderr":
		return call(2, 0, 0), nil
	case "utimensat-nofollow":
		return call(fd, 0, unix.AT_SYMLINK_NOFOLLOW), nil
	case "utimensat-path":
		return call(unix.AT_FDCWD, uintptr(unsafe.Pointer(&name[0])), 0), nil
	case "utimensat-high":
		// The name in a memfd mapped there: no Go pointer made of
		// an address.
		const at = 1 << 32
		mfd, err := unix.MemfdCreate("path", unix.MFD_CLOEXEC)
		if err == nil {
			_, err = unix.Write(mfd, name)
		}
		if err != nil {
			return nil, fmt.Errorf("memfd: %w", err)
		}
		addr, _, errno := unix.Syscall6(unix.SYS_MMAP, at, 4096, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_FIXED_NOREPLACE, uintptr(mfd), 0)
		if errno != 0 || addr != at {
			return nil, fmt.Errorf("mmap at %#x: at %#x, %v", at, addr, errno)
		}
		return call(fd, at, 0), nil
	}
	return nil, fmt.Errorf("unknown mode %s", mode)
}

// TestFileTimes: under SetFileTimes a filtered process sets the times of
// a file it holds open past the standard descriptors (futimens), and no
// other file's: utimensat by a path, even one at an address whose low
// half is 0, on standard error or with a flag fails with EPERM, the file
// untouched and the process running on; without SetFileTimes futimens
// fails so too.
func TestFileTimes(t *testing.T) {
	before := time.Unix(2_000_000_000, 0)
	eperm := ": " + unix.EPERM.Error() + "\n"
	for _, tt := range []struct {
		mode      string
		fileTimes bool // Filter.SetFileTimes
		want      string
		set       bool // the file's mtime set to childMtime
	}{
		{"utimensat-fd", true, "utimensat-fd: <nil>\n", true},
		{"utimensat-fd", false, "utimensat-fd" + eperm, false},
		{"utimensat-path", true, "utimensat-path" + eperm, false},
		{"utimensat-high", true, "utimensat-high" + eperm, false},
		{"utimensat-stderr", true, "utimensat-stderr" + eperm, false},
		{"utimensat-nofollow", true, "utimensat-nofollow" + eperm, false},
	} {
		t.Run(fmt.Sprintf("%s,filetimes=%v", tt.mode, tt.fileTimes), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, []byte("image"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, before, before); err != nil {
				t.Fatal(err)
			}
			cmd := childCmd(t, tt.mode)
			cmd.Env = append(cmd.Env, "SANDBOX_TEST_PATH="+path)
			if tt.fileTimes {
				cmd.Env = append(cmd.Env, "SANDBOX_TEST_FILETIMES=1")
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout = &stdout
			cmd.Stderr = &stderr
			if tt.mode == "utimensat-stderr" {
				// Standard error is the file: a log opened to append.
				log, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer log.Close()
				cmd.Stderr = log
			}
			if err := cmd.Run(); err != nil {
				t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
			}
			if stdout.String() != tt.want || stderr.Len() > 0 {
				t.Errorf("stdout %q, stderr %q; want %q, nothing", stdout.String(), stderr.String(), tt.want)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			want := before
			if tt.set {
				want = childMtime
			}
			if !fi.ModTime().Equal(want) {
				t.Errorf("the file's mtime %v, want %v", fi.ModTime(), want)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if a := time.Unix(st.Atim.Unix()); !a.Equal(before) {
				t.Errorf("the file's atime %v, want %v untouched", a, before)
			}
		})
	}
}

// openatVerdict is the filter's answer to openat: trapped, except in a cgo
// build (OpenRefusedQuietly).
var openatVerdict = func() uint32 {
	if OpenRefusedQuietly {
		return retErrno | uint32(unix.EACCES)
	}
	return retTrap
}()

func childCmd(t *testing.T, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SANDBOX_TEST_CHILD="+mode)
	return cmd
}

func TestForbiddenCallStopsTheProcess(t *testing.T) {
	trapped := func(call string) string {
		return "child: seccomp: the VMM attempted the forbidden " + call + " and was stopped (test)\n"
	}
	tests := []struct {
		mode, want string
		status     int
		process    string // Filter.Process
	}{
		{"openat", trapped("openat (system call 257)"), ExitStatus, ""},
		{"execve", trapped("execve (system call 59)"), ExitStatus, ""},
		// Another process than the VMM is named as itself.
		{"execve", strings.Replace(trapped("execve (system call 59)"), "the VMM", "the broker", 1), ExitStatus, "the broker"},
		{"old-thread", trapped("openat (system call 257)"), ExitStatus, ""},
		{"prctl-vma", "named a mapping\n", 0, ""},
		{"prctl-name", trapped("prctl (system call 157)"), ExitStatus, ""},
		// x32's numbers are x86-64's with bit 30 set: not getpid's
		// name, nor "512 or more".
		{"x32", trapped("x32 system call 39"), ExitStatus, ""},
		{"madvise-random", trapped("madvise (system call 28)"), ExitStatus, ""},
		{"madvise-dontneed", "madvise MADV_DONTNEED: <nil>\n", 0, ""},
		// Under UnixSockets the socket is allowed, its bind (which
		// would create a file) not.
		{"bind-unix", trapped("bind (system call 49)"), ExitStatus, ""},
		// Under ReadFiles a file is opened and read, not created.
		{"read-open", "read /etc/passwd: <nil>\n", 0, ""},
		{"create-open", trapped("openat (system call 257)"), ExitStatus, ""},
	}
	if OpenRefusedQuietly {
		tests[0].want, tests[0].status = "opened /etc/passwd: open /etc/passwd: permission denied\n", 0
		tests[3].want, tests[3].status = "old thread opened /etc/passwd: open /etc/passwd: permission denied\n", 0
		tests[len(tests)-1].want, tests[len(tests)-1].status = "create refused: true\n", 0
	}
	for _, tt := range tests {
		t.Run(tt.mode+tt.process, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := childCmd(t, tt.mode)
			sock := filepath.Join(testsock.Dir(t), "s")
			cmd.Env = append(cmd.Env, "SANDBOX_TEST_PROCESS="+tt.process, "SANDBOX_TEST_PATH="+sock)
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("child: %v", err)
			}
			if status != tt.status {
				t.Fatalf("child: exit status %d, want %d; stderr:\n%s", status, tt.status, stderr.Bytes())
			}
			if stderr.String() != tt.want {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.want)
			}
			if _, err := os.Lstat(sock); err == nil {
				t.Errorf("the child created %s", sock)
			}
		})
	}
}

// TestAppendedLogKept: a filtered process whose standard error is a log
// opened to append (2>>log) cannot write over the log's earlier lines:
// clearing O_APPEND and pwritev2's RWF_NOAPPEND are refused, and a
// pwrite at offset 0 appends.
func TestAppendedLogKept(t *testing.T) {
	const earlier = "EARLIER LOG LINE\n"
	trapped := func(call string) string {
		return "child: seccomp: the VMM attempted the forbidden " + call + " and was stopped (test)\n"
	}
	for _, tt := range []struct {
		mode, want string
		status     int
	}{
		{"unappend", trapped("fcntl (system call 72)"), ExitStatus},
		{"noappend-write", trapped("pwritev2 (system call 328)"), ExitStatus},
		{"append-pwrite", "appended\npwrite: <nil>\n", 0},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shared.log")
			if err := os.WriteFile(path, []byte(earlier), 0o600); err != nil {
				t.Fatal(err)
			}
			log, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			cmd := childCmd(t, tt.mode)
			cmd.Stderr = log
			err = cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("child: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || string(got) != earlier+tt.want {
				t.Errorf("child: exit status %d, log %q; want %d, %q", status, got, tt.status, earlier+tt.want)
			}
		})
	}
}

// startInstalled starts cmd (a "wait" child) and reads its line saying
// the filter is installed; the caller kills and waits for it. stdin
// closed tells the child to end.
func startInstalled(cmd *exec.Cmd) (stdin io.WriteCloser, out *bufio.Reader, stderr *bytes.Buffer, err error) {
	if stdin, err = cmd.StdinPipe(); err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	out = bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); line != "installed\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, nil, fmt.Errorf("child said %q (%v); stderr:\n%s", line, err, stderr.Bytes())
	}
	return stdin, out, stderr, nil
}

// TestStatusOfFilteredProcess: every thread of a process running under
// the filter shows seccomp mode 2 (filter) and no_new_privs.
func TestStatusOfFilteredProcess(t *testing.T) {
	cmd := childCmd(t, "wait")
	stdin, out, stderr, err := startInstalled(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("threads of the child: %v %v", tasks, err)
	}
	for _, path := range append(tasks, fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)) {
		st, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nSeccomp:\t2\n", "\nNoNewPrivs:\t1\n", "\nSeccomp_filters:\t1\n"} {
			if !bytes.Contains(st, []byte(want)) {
				t.Errorf("%s lacks %q", path, strings.TrimSpace(want))
			}
		}
	}
	stdin.Close()
	if line, _ := out.ReadString('\n'); line != "bye\n" {
		t.Errorf("child said %q after its input closed; stderr:\n%s", line, stderr.Bytes())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v; stderr:\n%s", err, stderr.Bytes())
	}
}

// TestEveryListedCallAllowed: each call of the tables is allowed whatever
// its arguments, and nothing else numbered near them is.
func TestEveryListedCallAllowed(t *testing.T) {
	vm := filterVM(t, Filter{Sockets: true})
	listed := map[int]bool{}
	for _, tab := range [][]int{hot, allowed, socketCalls, msgCalls} {
		for _, nr := range tab {
			listed[nr] = true
		}
	}
	conditional := map[int]bool{16: true, 234: true, 62: true, 13: true, 56: true, 9: true, 10: true, 72: true, 41: true, 54: true, 55: true, 435: true, unix.SYS_MADVISE: true, unix.SYS_PWRITEV2: true, unix.SYS_UTIMENSAT: true}
	if OpenRefusedQuietly {
		conditional[unix.SYS_OPENAT] = true // its verdict is openatVerdict, checked above
	}
	for nr := 0; nr < 512; nr++ {
		got, err := vm.Run(seccompData(auditArchX8664, nr, ^uint64(0), ^uint64(0), ^uint64(0)))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case listed[nr] && uint32(got) != retAllow:
			t.Errorf("listed call %d: verdict %#x, want allow", nr, got)
		case !listed[nr] && !conditional[nr] && uint32(got) != retTrap:
			t.Errorf("unlisted call %d: verdict %#x, want trap", nr, got)
		}
	}
}

// TestInstallWhileBusy: a process whose threads are all busy, as root and
// as a user without CAP_SYS_ADMIN, installs the filter every time and
// leaves no_new_privs set on every thread. Install set no_new_privs on
// one thread and called seccomp on whichever the goroutine had moved to:
// as nobody the kernel refused (EACCES), as root the filter went on
// without no_new_privs on the other threads.
func TestInstallWhileBusy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the child as root and as nobody")
	}
	bin := binaryForNobody(t)
	for _, tt := range []struct {
		name string
		cred *syscall.Credential
	}{
		{"root", nil},
		{"nobody", &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 20 {
				cmd := exec.Command(bin, "-test.run=^$")
				cmd.Env = append(os.Environ(), "SANDBOX_TEST_CHILD=wait-busy")
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: tt.cred}
				if err := checkAllThreadsFiltered(cmd); err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
			}
		})
	}
}

// checkAllThreadsFiltered starts cmd (a "wait" child) and reports a thread
// of it without the filter or no_new_privs.
func checkAllThreadsFiltered(cmd *exec.Cmd) error {
	stdin, _, _, err := startInstalled(cmd)
	if err != nil {
		return err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	defer stdin.Close()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
	if err != nil || len(tasks) < 2 {
		return fmt.Errorf("threads of the child: %v %v", tasks, err)
	}
	for _, path := range tasks {
		st, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, want := range []string{"\nSeccomp:\t2\n", "\nNoNewPrivs:\t1\n"} {
			if !bytes.Contains(st, []byte(want)) {
				return fmt.Errorf("%s lacks %q", path, strings.TrimSpace(want))
			}
		}
	}
	return nil
}

func copyExecutable(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// TestSIGSYSFromAnotherProcess: a SIGSYS another process sends (kill -SYS)
// is not taken for a refused call (whose number it does not carry): the
// handler names the sender and exits with ExitStatusSIGSYS.
// A sender outside the process's PID namespace (--jail's) is PID 0 to it:
// said as that, where it read "(PID 0)".
func TestSIGSYSFromAnotherProcess(t *testing.T) {
	tests := []struct {
		name   string
		newPID bool
		want   string
	}{
		{"same namespace", false, fmt.Sprintf("child: the VMM received SIGSYS from another process (PID %d), not from its seccomp filter, and exits\n", os.Getpid())},
		{"outside its namespace", true, "child: the VMM received SIGSYS from a process outside its PID namespace, not from its seccomp filter, and exits\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := childCmd(t, "wait")
			if tt.newPID {
				if os.Geteuid() != 0 {
					t.Skip("a PID namespace needs root")
				}
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
			}
			_, _, stderr, err := startInstalled(cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			if err := cmd.Process.Signal(unix.SIGSYS); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if cmd.ProcessState.ExitCode() != ExitStatusSIGSYS || stderr.String() != tt.want {
				t.Errorf("child: %v, stderr %q; want status %d, stderr %q", err, stderr.String(), ExitStatusSIGSYS, tt.want)
			}
		})
	}
}
