package sandbox

import (
	"fmt"
	"os"

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
)

// cond tests argument arg. Only the low 32 bits are loaded: every argument
// tested is an int or unsigned int to the kernel (ioctl's and fcntl's
// command, socket's family, tgkill's and kill's pid, rt_sigaction's
// signal), or a word whose tested bits are in its low half (clone's flags,
// mmap's prot), so the kernel itself reads no more.
type cond struct {
	arg int
	op  op
	val uint32
}

// rule allows syscall nr, unconditionally when any is empty, else when all
// the conditions of one of any's sets hold; or, with errno set, fails it
// with that error without running it.
type rule struct {
	nr    int
	any   [][]cond
	errno unix.Errno
}

// TerminalIoctls are the terminal requests a running VMM makes on its
// console: TCGETS, TCSETS, TCSETSW, TCSETSF (raw mode and its restoring)
// and TIOCGWINSZ.
var TerminalIoctls = []uint64{unix.TCGETS, unix.TCSETS, unix.TCSETSW, unix.TCSETSF, unix.TIOCGWINSZ}

// hot are the calls allowed whatever their arguments, the busiest first
// (the kernel also caches the verdict of such calls).
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
	unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_PREADV2,
	unix.SYS_PWRITEV2, unix.SYS_LSEEK, unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_FLOCK,
	unix.SYS_FSTAT, unix.SYS_CLOSE,
	// The Go runtime: memory, threads' signal state, timers, the poller.
	unix.SYS_MUNMAP, unix.SYS_MADVISE, unix.SYS_RT_SIGPROCMASK, unix.SYS_SIGALTSTACK,
	unix.SYS_RESTART_SYSCALL, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_CLOCK_GETTIME,
	unix.SYS_GETTIMEOFDAY, unix.SYS_SCHED_GETAFFINITY, unix.SYS_EPOLL_WAIT, unix.SYS_EPOLL_PWAIT2,
	unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_CREATE1, unix.SYS_EVENTFD2, unix.SYS_PIPE2,
	unix.SYS_POLL, unix.SYS_PPOLL, // the console input pump waits in poll
	unix.SYS_GETRANDOM, unix.SYS_EXIT, unix.SYS_EXIT_GROUP,
	// A cgo build's threads (glibc): robust futex list, restartable
	// sequences.
	unix.SYS_SET_ROBUST_LIST, unix.SYS_RSEQ,
}

// socketCalls are the calls on sockets, allowed with Filter.Sockets or
// Filter.UnixSockets.
var socketCalls = []int{
	unix.SYS_CONNECT, unix.SYS_BIND, unix.SYS_LISTEN, unix.SYS_ACCEPT, unix.SYS_ACCEPT4,
	unix.SYS_GETSOCKOPT, unix.SYS_SETSOCKOPT, unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME,
	unix.SYS_SENDTO, unix.SYS_RECVFROM, unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDMMSG,
	unix.SYS_RECVMMSG, unix.SYS_SHUTDOWN, unix.SYS_SPLICE,
}

// rules is the allow-list for process pid (the only one it may signal).
func (f *Filter) rules(pid int) []rule {
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
	var fcntl [][]cond
	// fcntl: descriptor flags (the poller's O_NONBLOCK) and the pipe
	// sizes of the splice Go's net package does between two sockets; not
	// duplicates or locks.
	for _, cmd := range []uint32{unix.F_GETFD, unix.F_SETFD, unix.F_GETFL, unix.F_SETFL, unix.F_GETPIPE_SZ, unix.F_SETPIPE_SZ} {
		fcntl = append(fcntl, []cond{{1, opEq, cmd}})
	}
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
	)
	if OpenRefusedQuietly {
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
			// Emptying a temporary file before it is written again.
			rule{nr: unix.SYS_FTRUNCATE},
		)
	}
	if f.Sockets || f.UnixSockets {
		var families [][]cond
		if f.Sockets {
			families = append(families, []cond{{0, opEq, unix.AF_INET}}, []cond{{0, opEq, unix.AF_INET6}})
		}
		if f.UnixSockets {
			families = append(families, []cond{{0, opEq, unix.AF_UNIX}})
		}
		rs = append(rs, rule{nr: unix.SYS_SOCKET, any: families})
		for _, nr := range socketCalls {
			rs = append(rs, rule{nr: nr})
		}
	}
	return rs
}

// Program assembles the filter for this process, as the BPF instructions
// Install loads: another architecture or the x32 ABI, and every call not
// allowed, are trapped.
func (f *Filter) Program() ([]bpf.Instruction, error) {
	return assemble(f.rules(os.Getpid()))
}

// asm is a BPF program with forward jumps to labels.
type asm struct {
	insts  []bpf.Instruction
	fixups []fixup
	labels map[int]int // label -> instruction index
	next   int
}

// fixup is a jump whose true (jt) or false (jf) target is a label.
type fixup struct {
	at     int
	jt, jf int // labels, or -1 to fall through
}

func (a *asm) label() int             { a.next++; return a.next }
func (a *asm) set(l int)              { a.labels[l] = len(a.insts) }
func (a *asm) emit(i bpf.Instruction) { a.insts = append(a.insts, i) }
func (a *asm) ret(v uint32)           { a.emit(bpf.RetConstant{Val: v}) }
func (a *asm) load(off uint32)        { a.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }

// jump emits "if A cc val" going to label jt when true and jf when false
// (-1: the next instruction).
func (a *asm) jump(cc bpf.JumpTest, val uint32, jt, jf int) {
	a.fixups = append(a.fixups, fixup{len(a.insts), jt, jf})
	a.emit(bpf.JumpIf{Cond: cc, Val: val})
}

func assemble(rules []rule) ([]bpf.Instruction, error) {
	a := &asm{labels: map[int]int{}}
	trap := a.label()
	a.load(offArch)
	a.jump(bpf.JumpEqual, auditArchX86_64, -1, trap)
	a.load(offNR)
	a.jump(bpf.JumpGreaterOrEqual, x32SyscallBit, trap, -1)
	// Runs of unconditional rules share one "return allow" right after
	// them; a conditional rule is a block that returns on every path once
	// it has loaded an argument.
	for i := 0; i < len(rules); {
		if r := rules[i]; r.errno != 0 {
			i++
			past := a.label()
			a.jump(bpf.JumpEqual, uint32(r.nr), -1, past)
			a.ret(retErrno | uint32(r.errno))
			a.set(past)
			continue
		}
		if len(rules[i].any) == 0 {
			allow, past := a.label(), a.label()
			for ; i < len(rules) && len(rules[i].any) == 0 && rules[i].errno == 0; i++ {
				a.jump(bpf.JumpEqual, uint32(rules[i].nr), allow, -1)
			}
			a.emit(bpf.Jump{Skip: 1})
			a.set(allow)
			a.ret(retAllow)
			a.set(past)
			continue
		}
		r := rules[i]
		i++
		past := a.label()
		a.jump(bpf.JumpEqual, uint32(r.nr), -1, past)
		for s, set := range r.any {
			fail := trap
			if s < len(r.any)-1 {
				fail = a.label()
			}
			for _, c := range set {
				a.load(offArgs + 8*uint32(c.arg)) // the low half on little-endian x86-64
				switch c.op {
				case opEq:
					a.jump(bpf.JumpEqual, c.val, -1, fail)
				case opNe:
					a.jump(bpf.JumpEqual, c.val, fail, -1)
				case opSet:
					a.jump(bpf.JumpBitsSet, c.val, -1, fail)
				case opClear:
					a.jump(bpf.JumpBitsSet, c.val, fail, -1)
				}
			}
			a.ret(retAllow)
			if fail != trap {
				a.set(fail)
			}
		}
		a.ret(retTrap)
		a.set(past)
	}
	a.set(trap)
	a.ret(retTrap)
	for _, fx := range a.fixups {
		j := a.insts[fx.at].(bpf.JumpIf)
		for _, t := range []struct {
			label int
			skip  *uint8
		}{{fx.jt, &j.SkipTrue}, {fx.jf, &j.SkipFalse}} {
			if t.label < 0 {
				continue
			}
			to, ok := a.labels[t.label]
			if !ok {
				return nil, fmt.Errorf("seccomp filter: jump at %d to an unplaced label", fx.at)
			}
			d := to - fx.at - 1
			if d < 0 || d > 255 {
				return nil, fmt.Errorf("seccomp filter: jump at %d spans %d instructions (BPF allows 255)", fx.at, d)
			}
			*t.skip = uint8(d)
		}
		a.insts[fx.at] = j
	}
	return a.insts, nil
}
