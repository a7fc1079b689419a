package sandbox

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Why not a library's assembler: github.com/elastic/go-seccomp-bpf v1.6.0
// (the pure-Go one served here) jumps from a failed argument test to the
// next syscall's number test with the argument, not the number, in the
// accumulator, so that ioctl(fd, 202) matched futex's number and was
// allowed. Its syscall table still names the calls in the trap message.
//
// This filter is built so that it cannot happen: the accumulator holds the
// syscall number at the start of every rule, and a rule that loads an
// argument ends in a return on every path.

// seccomp_data offsets (<linux/seccomp.h>) and verdicts.
const (
	offNR   = 0
	offArch = 4
	offArgs = 16

	auditArchX86_64 = 0xC000003E // AUDIT_ARCH_X86_64
	x32SyscallBit   = 0x40000000

	retAllow = unix.SECCOMP_RET_ALLOW
	retTrap  = unix.SECCOMP_RET_TRAP
	retErrno = unix.SECCOMP_RET_ERRNO
)

// op is how a condition tests an argument's low 32 bits.
type op int

const (
	opEq    op = iota // equal to val
	opNe              // not equal to val
	opSet             // some bit of val set
	opClear           // every bit of val clear
	opType            // equal to val once sockTypeFlags are masked off (socket's type)
	opGe              // val or more, unsigned (a descriptor past the standard ones)
)

// openWriteFlags are openat's flags that Filter.ReadFiles refuses: any
// access but reading, and those that create, empty or append to a file.
// O_TMPFILE without its O_DIRECTORY bit, which a read-only open of a
// directory may have. openat reads its flags as an int: the low half
// holds them all.
const openWriteFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND | unix.O_TMPFILE&^unix.O_DIRECTORY

// stdDescriptors is the number of standard descriptors (0, 1 and 2),
// which the filter keeps a VMM from changing the flags of or truncating.
const stdDescriptors = 3

// sockTypeFlags are the flags socket takes in its type argument; the rest
// is the type.
const sockTypeFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC

// cond tests argument arg's low 32 bits, or, with arg as hi returns it,
// its high 32 bits. The low half is enough for every argument that is an
// int or unsigned int to the kernel (ioctl's and fcntl's command,
// fcntl's, ftruncate's and utimensat's descriptor, pwritev2's and
// utimensat's flags, socket's family, type and protocol, setsockopt's
// and getsockopt's level and option, tgkill's and kill's pid,
// rt_sigaction's signal, prctl's option, madvise's advice), for a word
// whose tested bits are in its low half (clone's flags, mmap's prot),
// and for one the kernel itself checks in full (prctl's PR_SET_VMA
// operation). A pointer tested for NULL (utimensat's path) is tested in
// both halves: one whose low half is 0 is not NULL.
type cond struct {
	arg int
	op  op
	val uint32
}

// argHigh, added to an argument's index in cond.arg, makes the condition
// test the argument's high 32 bits.
const argHigh = 8

// hi is cond.arg for argument n's high 32 bits.
func hi(n int) int { return n | argHigh }

// offset is where the 32 bits c tests lie in seccomp_data: the low half
// first on little-endian x86-64.
func (c cond) offset() uint32 {
	off := offArgs + 8*uint32(c.arg&^argHigh)
	if c.arg&argHigh != 0 {
		off += 4
	}
	return off
}

// rule allows syscall nr, unconditionally when any is empty, else when all
// the conditions of one of any's sets hold; or, with errno set, fails it
// with that error without running it: always when any is empty, else
// when none of its sets holds (instead of trapping it).
type rule struct {
	nr    int
	any   [][]cond
	errno unix.Errno
}

// TerminalIoctls are the terminal requests a running VMM makes on its
// console: TCGETS, TCSETS, TCSETSW, TCSETSF (raw mode and its restoring,
// again after a stop and continue), TIOCGPGRP (whether it is continued
// in the foreground, where raw mode is its to set again) and TIOCGWINSZ.
var TerminalIoctls = []uint64{unix.TCGETS, unix.TCSETS, unix.TCSETSW, unix.TCSETSF, unix.TIOCGPGRP, unix.TIOCGWINSZ}

// hot are the calls allowed whatever their arguments that a running VMM
// makes most (the kernel caches the verdict of such calls: it does not
// run the filter for them).
var hot = []int{
	unix.SYS_FUTEX, unix.SYS_NANOSLEEP, unix.SYS_WRITE, unix.SYS_READ, unix.SYS_EPOLL_PWAIT,
	unix.SYS_PREADV, unix.SYS_PWRITEV, unix.SYS_SCHED_YIELD, unix.SYS_GETPID, unix.SYS_GETTID,
	unix.SYS_RT_SIGRETURN,
}

// allowed are the other calls allowed whatever their arguments. Each works
// on descriptors or memory the process already has, or on itself.
var allowed = []int{
	// I/O on descriptors already open: disks (vectored I/O, flush,
	// flock's release), tap, eventfds, the console.
	// Writes at an offset (pwrite64, lseek then write) cannot reach
	// the earlier content of a standard descriptor opened to append
	// (2>>log): the kernel appends whatever the offset, and the filter
	// keeps O_APPEND (fcntl, pwritev2 below).
	unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_PREADV2,
	unix.SYS_LSEEK, unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_FLOCK,
	unix.SYS_FSTAT, unix.SYS_CLOSE,
	// The Go runtime: memory, threads' signal state, timers, the poller.
	unix.SYS_MUNMAP, unix.SYS_RT_SIGPROCMASK, unix.SYS_SIGALTSTACK,
	unix.SYS_RESTART_SYSCALL, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_CLOCK_GETTIME,
	unix.SYS_GETTIMEOFDAY, unix.SYS_SCHED_GETAFFINITY, unix.SYS_EPOLL_WAIT, unix.SYS_EPOLL_PWAIT2,
	unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_CREATE1, unix.SYS_EVENTFD2, unix.SYS_PIPE2,
	unix.SYS_POLL, unix.SYS_PPOLL, // the console input pump waits in poll
	unix.SYS_GETRANDOM, unix.SYS_EXIT, unix.SYS_EXIT_GROUP,
	// A cgo build's threads (glibc): robust futex list, restartable
	// sequences.
	unix.SYS_SET_ROBUST_LIST, unix.SYS_RSEQ,
}

// madviseAdvice are the advice values madvise may give: those of the Go
// runtime (returning memory, DONTNEED or FREE; huge pages on or off, and
// collapsing into them) and of the VMM's own (DONTNEED: exepages dropping
// its set-up code), glibc's in a cgo build (DONTNEED for freed memory and
// stacks, HUGEPAGE). Not MADV_HWPOISON or MADV_SOFT_OFFLINE, which a root
// VMM could use to take pages of the host's RAM offline, nor the others
// (MADV_REMOVE punching holes in shared files, MADV_DONTFORK...) that no
// running VMM gives.
var madviseAdvice = []uint32{unix.MADV_DONTNEED, unix.MADV_FREE, unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE, unix.MADV_COLLAPSE}

// socketCalls are the calls on sockets allowed whatever their arguments
// with Filter.Sockets or Filter.UnixSockets; setsockopt and getsockopt are
// allowed for the options of setSockopts and getSockopts only. Not bind
// nor listen: the only listeners, the user network's forwards, are opened
// before the filter, and after it the VMM only dials (NAT, a ready port's
// probe, a shared network's rejoin) and accepts on those listeners; a VMM
// taken over could otherwise open a port of its own on the host, or bind
// a Unix socket, which creates a file, anywhere its user may write.
var socketCalls = []int{
	unix.SYS_CONNECT, unix.SYS_ACCEPT, unix.SYS_ACCEPT4,
	unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME,
	unix.SYS_SENDTO, unix.SYS_RECVFROM, unix.SYS_SHUTDOWN, unix.SYS_SPLICE,
}

// msgCalls are the calls that may carry ancillary data, allowed with
// Filter.Sockets only. On a Unix socket that data passes descriptors
// (SCM_RIGHTS): a VMM taken over could hand its terminal, disk images or
// /dev/kvm to any Unix socket it reaches, or take one in. A shared
// network's link needs none of them (Go's stream conns read and write,
// its handshake reads SO_PEERCRED with getsockopt).
var msgCalls = []int{unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDMMSG, unix.SYS_RECVMMSG}

// ipSockets are the IPv4 and IPv6 sockets Filter.Sockets allows (of
// either family), as Go's net package opens them for the user network's
// NAT (TCP and UDP, DNS included), its forwarded ports and a ready port's
// probe: TCP streams with protocol 0, IPPROTO_TCP (Go's probe of the
// host's IPv6 support) or IPPROTO_MPTCP (Go's listeners try it first),
// and UDP datagrams. Never a raw socket (which would let a root VMM forge
// any packet, or reach iptables through its options) or an ICMP one: the
// user network answers ICMP in its own stack.
var ipSockets = []struct{ typ, proto uint32 }{
	{unix.SOCK_STREAM, 0}, {unix.SOCK_STREAM, unix.IPPROTO_TCP}, {unix.SOCK_STREAM, unix.IPPROTO_MPTCP},
	{unix.SOCK_DGRAM, 0}, {unix.SOCK_DGRAM, unix.IPPROTO_UDP},
}

// sockopt is a socket option: a level and an option name.
type sockopt struct{ level, name uint32 }

// setSockopts are the options setsockopt may set: those Go's net package
// sets on the sockets it opens, accepts and listens on (listeners'
// address reuse, UDP's broadcast, dual-stack IPv6, TCP's no-delay and
// keep-alive). Not the IP levels' others, whose iptables and multicast
// requests a root VMM could use, nor SOL_SOCKET's marks, devices or
// filters.
var setSockopts = []sockopt{
	{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_KEEPALIVE}, {unix.SOL_SOCKET, unix.SO_BROADCAST},
	{unix.IPPROTO_TCP, unix.TCP_NODELAY}, {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
	{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY},
}

// getSockopts are the options getsockopt may read: a connect's outcome
// (SO_ERROR, as Go's poller reads it) and a Unix socket's peer
// (SO_PEERCRED, a shared network's hub).
var getSockopts = []sockopt{{unix.SOL_SOCKET, unix.SO_ERROR}, {unix.SOL_SOCKET, unix.SO_PEERCRED}}

// optionConds are the condition sets of setsockopt or getsockopt allowing
// opts.
func optionConds(opts []sockopt) [][]cond {
	var sets [][]cond
	for _, o := range opts {
		sets = append(sets, []cond{{1, opEq, o.level}, {2, opEq, o.name}})
	}
	return sets
}

// rules is the allow-list for process pid (the only one it may signal);
// quietOpen refuses openat with EACCES instead of trapping it
// (OpenRefusedQuietly).
func (f *Filter) rules(pid int, quietOpen bool) []rule {
	one := func(c ...cond) [][]cond { return [][]cond{c} }
	// ioctl first, KVM_RUN first among its requests (the caller's
	// order): the call a running VM makes most.
	ioctl := rule{nr: unix.SYS_IOCTL}
	seen := map[uint32]bool{}
	for _, req := range append(append([]uint64(nil), f.Ioctls...), TerminalIoctls...) {
		if r := uint32(req); !seen[r] {
			seen[r] = true
			ioctl.any = append(ioctl.any, []cond{{1, opEq, r}})
		}
	}
	rs := []rule{ioctl}
	for _, nr := range append(append([]int(nil), hot...), allowed...) {
		rs = append(rs, rule{nr: nr})
	}
	var fcntl, madvise [][]cond
	for _, advice := range madviseAdvice {
		madvise = append(madvise, []cond{{2, opEq, advice}})
	}
	// fcntl: descriptor flags (the poller's O_NONBLOCK) and the pipe
	// sizes of the splice Go's net package does between two sockets; not
	// duplicates or locks.
	for _, cmd := range []uint32{unix.F_GETFD, unix.F_SETFD, unix.F_GETFL, unix.F_GETPIPE_SZ, unix.F_SETPIPE_SZ} {
		fcntl = append(fcntl, []cond{{1, opEq, cmd}})
	}
	// A file's status flags only past the standard descriptors (the
	// tap's, sockets' O_NONBLOCK): on standard error opened to append
	// (2>>log, one log for several VMs) a VMM taken over cleared
	// O_APPEND and wrote over the log's earlier lines. Refusing it costs
	// a VMM nothing: nothing in it changes 0, 1 and 2's flags (Go's
	// File.Fd makes blocking only a descriptor Go made non-blocking
	// itself, or a socket's file; os.Stdin, os.Stdout and os.Stderr,
	// from NewFile, are neither).
	fcntl = append(fcntl, []cond{{1, opEq, unix.F_SETFL}, {0, opGe, stdDescriptors}})
	rs = append(rs,
		// Signals to this process only: the runtime preempts its
		// threads with tgkill, and the vCPU is kicked out of KVM_RUN so.
		rule{nr: unix.SYS_TGKILL, any: one(cond{0, opEq, uint32(pid)})},
		rule{nr: unix.SYS_KILL, any: one(cond{0, opEq, uint32(pid)})},
		// Any handler but SIGSYS's, which reports refused calls.
		rule{nr: unix.SYS_RT_SIGACTION, any: one(cond{0, opNe, uint32(unix.SIGSYS)})},
		// New threads, never a new process.
		rule{nr: unix.SYS_CLONE, any: one(cond{0, opSet, unix.CLONE_THREAD})},
		// Memory, never executable: no code is mapped in after the start
		// (mprotect: the guard pages of a cgo build's thread stacks).
		rule{nr: unix.SYS_MMAP, any: one(cond{2, opClear, unix.PROT_EXEC})},
		rule{nr: unix.SYS_MPROTECT, any: one(cond{2, opClear, unix.PROT_EXEC})},
		// glibc's pthread_create (a cgo build) tries clone3 first, whose
		// flags the filter cannot read: ENOSYS makes it fall back to clone.
		rule{nr: unix.SYS_CLONE3, errno: unix.ENOSYS},
		rule{nr: unix.SYS_FCNTL, any: fcntl},
		// Not RWF_NOAPPEND, which writes at the offset given into a
		// file opened to append (2>>log).
		rule{nr: unix.SYS_PWRITEV2, any: one(cond{5, opClear, unix.RWF_NOAPPEND})},
		rule{nr: unix.SYS_MADVISE, any: madvise},
		// The Go runtime names its heap's mappings whenever it maps,
		// uses or returns memory, the background scavenger included
		// (GODEBUG decoratemappings, on for a go.mod of Go 1.25 or
		// later, and in a library's user's program too); no other
		// prctl. The kernel reads the option as an int and refuses a
		// second word other than PR_SET_VMA_ANON_NAME, high half
		// included.
		rule{nr: unix.SYS_PRCTL, any: one(cond{0, opEq, unix.PR_SET_VMA}, cond{1, opEq, unix.PR_SET_VMA_ANON_NAME})},
	)
	switch {
	case f.ReadFiles:
		// Read-only opens; others trapped, or refused in a cgo build.
		open := rule{nr: unix.SYS_OPENAT, any: one(cond{2, opClear, openWriteFlags})}
		if quietOpen {
			open.errno = unix.EACCES
		}
		rs = append(rs, open)
	case quietOpen:
		rs = append(rs, rule{nr: unix.SYS_OPENAT, errno: unix.EACCES})
	}
	if f.RenameDir != 0 {
		dir := uint32(f.RenameDir)
		rs = append(rs,
			// Both names relative to the directory; of renameat2's
			// flags only the exchange (no whiteout), no AT_REMOVEDIR.
			rule{nr: unix.SYS_RENAMEAT, any: one(cond{0, opEq, dir}, cond{2, opEq, dir})},
			rule{nr: unix.SYS_RENAMEAT2, any: [][]cond{
				{{0, opEq, dir}, {2, opEq, dir}, {4, opEq, 0}},
				{{0, opEq, dir}, {2, opEq, dir}, {4, opEq, unix.RENAME_EXCHANGE}},
			}},
			rule{nr: unix.SYS_UNLINKAT, any: one(cond{0, opEq, dir}, cond{2, opEq, 0})},
			// Whether a name still holds the file it should, before it
			// is renamed or removed.
			rule{nr: unix.SYS_NEWFSTATAT, any: one(cond{0, opEq, dir})},
		)
	}
	if f.Truncate {
		// Emptying a temporary file before it is written again; not a
		// standard descriptor (2>>log: its earlier lines).
		rs = append(rs, rule{nr: unix.SYS_FTRUNCATE, any: one(cond{0, opGe, stdDescriptors})})
	}
	// futimens on an open file only: the path NULL in both halves (a
	// path would reach any file the process's user owns), no flags,
	// not a standard descriptor. Any other form, and every form
	// without SetFileTimes, fails with EPERM instead of trapping: a
	// snapshot of a vmm.Machine tries it on every writable image
	// whose time is recent, and on failure leaves the time, which the
	// restore then does not trust, reading the image.
	utimensat := rule{nr: unix.SYS_UTIMENSAT, errno: unix.EPERM}
	if f.SetFileTimes {
		utimensat.any = one(cond{0, opGe, stdDescriptors}, cond{1, opEq, 0}, cond{hi(1), opEq, 0}, cond{3, opEq, 0})
	}
	rs = append(rs, utimensat)
	if f.Sockets || f.UnixSockets {
		var families [][]cond
		if f.Sockets {
			for _, family := range []uint32{unix.AF_INET, unix.AF_INET6} {
				for _, k := range ipSockets {
					families = append(families, []cond{{0, opEq, family}, {1, opType, k.typ}, {2, opEq, k.proto}})
				}
			}
		}
		if f.UnixSockets {
			families = append(families, []cond{{0, opEq, unix.AF_UNIX}})
		}
		rs = append(rs, rule{nr: unix.SYS_SOCKET, any: families})
		for _, nr := range socketCalls {
			rs = append(rs, rule{nr: nr})
		}
		if f.Sockets {
			for _, nr := range msgCalls {
				rs = append(rs, rule{nr: nr})
			}
		}
		if f.Sockets && f.Listen {
			rs = append(rs, rule{nr: unix.SYS_BIND}, rule{nr: unix.SYS_LISTEN})
		}
		rs = append(rs,
			rule{nr: unix.SYS_SETSOCKOPT, any: optionConds(setSockopts)},
			rule{nr: unix.SYS_GETSOCKOPT, any: optionConds(getSockopts)})
	}
	return rs
}

// Program assembles the filter for this process, as the BPF instructions
// Install loads: another architecture or the x32 ABI, and every call not
// allowed, are trapped.
func (f *Filter) Program() ([]bpf.Instruction, error) {
	return assemble(f.rules(os.Getpid(), OpenRefusedQuietly))
}

// Sizes returns the number of instructions of f's program in a build
// without cgo (the static binary) and in a cgo build, whose openat rule
// (OpenRefusedQuietly) changes the search tree's shape: what a
// description of the filter's size says, whichever build computes it.
func (f *Filter) Sizes() (static, cgo int, err error) {
	for _, quiet := range []bool{false, true} {
		insts, err := assemble(f.rules(os.Getpid(), quiet))
		if err != nil {
			return 0, 0, err
		}
		if quiet {
			cgo = len(insts)
		} else {
			static = len(insts)
		}
	}
	return static, cgo, nil
}

// asm is a BPF program with forward jumps to labels.
type asm struct {
	insts  []bpf.Instruction
	fixups []fixup
	labels map[int]int // label -> instruction index
	next   int
	far    bool // the search tree's branches jump through a BPF_JA, a leaf for each rule
}

// fixup is a jump whose true (jt) or false (jf) target is a label, or,
// with ja, an unconditional jump to label jt.
type fixup struct {
	at     int
	jt, jf int // labels, or -1 to fall through
	ja     bool
}

func (a *asm) label() int             { a.next++; return a.next }
func (a *asm) set(l int)              { a.labels[l] = len(a.insts) }
func (a *asm) emit(i bpf.Instruction) { a.insts = append(a.insts, i) }
func (a *asm) ret(v uint32)           { a.emit(bpf.RetConstant{Val: v}) }
func (a *asm) load(off uint32)        { a.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }

// jump emits "if A cc val" going to label jt when true and jf when false
// (-1: the next instruction).
func (a *asm) jump(cc bpf.JumpTest, val uint32, jt, jf int) {
	a.fixups = append(a.fixups, fixup{at: len(a.insts), jt: jt, jf: jf})
	a.emit(bpf.JumpIf{Cond: cc, Val: val})
}

// jumpTo emits a jump to label l, which may be any distance ahead.
func (a *asm) jumpTo(l int) {
	a.fixups = append(a.fixups, fixup{at: len(a.insts), jt: l, jf: -1, ja: true})
	a.emit(bpf.Jump{})
}

// leafSize is the most calls a leaf of the search tree tests in turn.
const leafSize = 4

// assemble builds the program: the architecture and the x32 ABI checked,
// then rules[0] (ioctl: the call a running VM makes most), then a binary
// search on the call's number among the other rules, whose leaves test up
// to leafSize numbers in turn. Every number the filter does not allow,
// most of the ~460, is refused after ~10 instructions instead of a walk
// past every rule: the kernel runs the filter once for each number when
// it installs it (to cache the verdicts that do not depend on the
// arguments), which a list of ~80 rules in turn made 0.13 ms of every
// start's installation, on the way to the guest's first instruction.
// Each rule's block returns on every path. A branch of the tree jumps
// over the lower half directly, or, in a program where some jump would
// skip more than 255 instructions (the most a conditional jump skips),
// through a BPF_JA, which has no such limit, with a leaf for each rule
// (whose test then skips one instruction).
func assemble(rules []rule) ([]bpf.Instruction, error) {
	insts, err := assembleTree(rules, false)
	if errors.Is(err, errJumpTooLong) {
		insts, err = assembleTree(rules, true)
	}
	return insts, err
}

// errJumpTooLong is a conditional jump over more than 255 instructions.
var errJumpTooLong = errors.New("conditional jump too long")

// assembleTree is assemble, the tree's branches jumping through BPF_JA
// when far.
func assembleTree(rules []rule, far bool) ([]bpf.Instruction, error) {
	if len(rules) == 0 {
		return nil, fmt.Errorf("seccomp filter: no rules")
	}
	seen := map[int]bool{}
	for _, r := range rules {
		if seen[r.nr] {
			return nil, fmt.Errorf("seccomp filter: system call %d has two rules", r.nr)
		}
		seen[r.nr] = true
	}
	a := &asm{labels: map[int]int{}, far: far}
	arch, nr, tree := a.label(), a.label(), a.label()
	a.load(offArch)
	a.jump(bpf.JumpEqual, auditArchX86_64, arch, -1)
	a.ret(retTrap)
	a.set(arch)
	a.load(offNR)
	a.jump(bpf.JumpGreaterOrEqual, x32SyscallBit, -1, nr)
	a.ret(retTrap)
	a.set(nr)
	a.leaf(rules[:1], tree)
	a.set(tree)
	rest := slices.Clone(rules[1:])
	slices.SortFunc(rest, func(x, y rule) int { return x.nr - y.nr })
	a.tree(rest)
	for _, fx := range a.fixups {
		to := func(label int) (int, error) {
			i, ok := a.labels[label]
			if !ok {
				return 0, fmt.Errorf("seccomp filter: jump at %d to an unplaced label", fx.at)
			}
			if i <= fx.at {
				return 0, fmt.Errorf("seccomp filter: jump at %d backwards to %d", fx.at, i)
			}
			return i - fx.at - 1, nil
		}
		if fx.ja {
			d, err := to(fx.jt)
			if err != nil {
				return nil, err
			}
			a.insts[fx.at] = bpf.Jump{Skip: uint32(d)}
			continue
		}
		j := a.insts[fx.at].(bpf.JumpIf)
		for _, t := range []struct {
			label int
			skip  *uint8
		}{{fx.jt, &j.SkipTrue}, {fx.jf, &j.SkipFalse}} {
			if t.label < 0 {
				continue
			}
			d, err := to(t.label)
			if err != nil {
				return nil, err
			}
			if d > 255 {
				return nil, fmt.Errorf("seccomp filter: jump at %d spans %d instructions (BPF allows 255): %w", fx.at, d, errJumpTooLong)
			}
			*t.skip = uint8(d)
		}
		a.insts[fx.at] = j
	}
	return a.insts, nil
}

// tree emits a binary search among rules, sorted by number: a leaf for a
// few, else "number >= the middle one's" to the upper half.
func (a *asm) tree(rules []rule) {
	if len(rules) <= leafSize && !a.far || len(rules) == 1 {
		a.leaf(rules, -1)
		return
	}
	mid := len(rules) / 2
	lower, upper := a.label(), a.label()
	if a.far {
		a.jump(bpf.JumpGreaterOrEqual, uint32(rules[mid].nr), -1, lower)
		a.jumpTo(upper)
	} else {
		a.jump(bpf.JumpGreaterOrEqual, uint32(rules[mid].nr), upper, -1)
	}
	a.set(lower)
	a.tree(rules[:mid])
	a.set(upper)
	a.tree(rules[mid:])
}

// leaf emits a test of each rule's number in turn, then, for a number
// none has, a jump to miss (-1: a trap), then the rules' blocks, the
// unconditional allows sharing one.
func (a *asm) leaf(rules []rule, miss int) {
	blocks := make([]int, len(rules))
	allow := -1
	for i, r := range rules {
		if r.errno == 0 && len(r.any) == 0 {
			if allow < 0 {
				allow = a.label()
			}
			blocks[i] = allow
		} else {
			blocks[i] = a.label()
		}
		a.jump(bpf.JumpEqual, uint32(r.nr), blocks[i], -1)
	}
	if miss < 0 {
		a.ret(retTrap)
	} else {
		a.jumpTo(miss)
	}
	if allow >= 0 {
		a.set(allow)
		a.ret(retAllow)
	}
	for i, r := range rules {
		if blocks[i] != allow {
			a.set(blocks[i])
			a.block(r)
		}
	}
}

// block emits rule r's verdict for its number: its errno, an allow, or
// its conditions' (each set's conditions in turn, the next set when one
// fails, a trap, or its errno, when the last does), returning on every
// path.
func (a *asm) block(r rule) {
	switch {
	case r.errno != 0 && len(r.any) == 0:
		a.ret(retErrno | uint32(r.errno))
		return
	case len(r.any) == 0:
		a.ret(retAllow)
		return
	}
	trap := a.label()
	held := -1 // the argument the accumulator holds at this set's start, or -1
	for s, set := range r.any {
		fail := trap
		if s < len(r.any)-1 {
			fail = a.label()
		}
		for i, c := range set {
			if i > 0 || c.arg != held {
				a.load(c.offset())
			}
			switch c.op {
			case opEq:
				a.jump(bpf.JumpEqual, c.val, -1, fail)
			case opNe:
				a.jump(bpf.JumpEqual, c.val, fail, -1)
			case opSet:
				a.jump(bpf.JumpBitsSet, c.val, -1, fail)
			case opClear:
				a.jump(bpf.JumpBitsSet, c.val, fail, -1)
			case opType:
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ^uint32(sockTypeFlags)})
				a.jump(bpf.JumpEqual, c.val, -1, fail)
			case opGe:
				a.jump(bpf.JumpGreaterOrEqual, c.val, -1, fail)
			}
		}
		a.ret(retAllow)
		if fail != trap {
			a.set(fail)
		}
		// A set of one test that leaves the accumulator as loaded
		// fails to the next with its argument still there: a run of
		// such tests of one argument (ioctl's requests, fcntl's
		// commands, madvise's advice) loads it once. The half is
		// part of cond.arg: a test of the other half loads it.
		held = -1
		if len(set) == 1 && set[0].op != opType {
			held = set[0].arg
		}
	}
	a.set(trap)
	if r.errno != 0 {
		a.ret(retErrno | uint32(r.errno))
		return
	}
	a.ret(retTrap)
}
