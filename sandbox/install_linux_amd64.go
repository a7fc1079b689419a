package sandbox

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// trapSlots is the size of the table of messages the SIGSYS handler picks
// from, indexed by system call number; the last slot is for numbers
// outside it. x86-64 numbers stop below 470.
const trapSlots = 512

// trapMsg is one piece of the message: the handler passes p and n to
// writev(2).
type trapMsg struct {
	p *byte
	n uintptr
}

// Read by the SIGSYS handler (trap_linux_amd64.s), which runs outside the
// Go runtime: they are written before the handler is installed and never
// again. The handler writes trapHead, then the call's trapTable entry
// ("openat (system call 257)"), then trapTail; for a call of another ABI,
// whose number names no x86-64 call, trapI386 or trapX32 then the number
// ("32-bit (int 0x80) system call 20"). A SIGSYS another process sent
// (kill -SYS) names no call: the handler writes trapKillHead, the sender's
// PID and trapKillTail, or trapKillOutside when the PID is 0 (a sender
// outside the process's PID namespace, whose PID it cannot see), and
// exits with trapKillExitCode.
var (
	trapHead, trapTail trapMsg
	trapKillHead       trapMsg
	trapKillTail       trapMsg
	trapKillOutside    trapMsg
	trapKillExitCode   int64 = ExitStatusSIGSYS
	trapI386, trapX32  trapMsg
	trapTable          [trapSlots + 1]trapMsg
	trapTTY            int64 = -1 // descriptor whose termios is restored, or -1
	trapTermios        *byte
	trapExitCode       int64 = ExitStatus
	// trapText keeps the messages' bytes reachable.
	trapText []byte
)

// Implemented in trap_linux_amd64.s.
func trapHandlerAddr() uintptr
func trapRestorerAddr() uintptr

// Prepared is a filter made ready for Install: assembled, its messages
// built, and the files the process would otherwise read lazily under it
// read. Prepare does this on a goroutine, so that it overlaps the VM's
// setup instead of delaying the guest's first run.
type Prepared struct {
	done chan struct{}
	prog []unix.SockFilter
	trap trapData
	err  error
}

// Prepare starts making f ready for Install, on a goroutine of its own.
func Prepare(f Filter) *Prepared {
	p := &Prepared{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.prog, p.err = assembleFilter(&f)
		// time.Local is read from /etc/localtime on first use (the
		// CMOS clock's first read), which the filter would refuse.
		time.Now().Zone()
		p.trap = prepareTrap(f)
	}()
	return p
}

func assembleFilter(f *Filter) ([]unix.SockFilter, error) {
	insts, err := f.Program()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble BPF: %w", err)
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("seccomp: filter of %d instructions exceeds the kernel's 4096", len(raw))
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}

// Install sets no_new_privs and installs f on every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC), with the SIGSYS handler that reports a
// refused call. It is meant to be called once, after everything the
// process will use has been opened. Before the filter it loads what the
// Go runtime and standard library would otherwise read lazily from files
// later (the local time zone).
func Install(f Filter) (Installed, error) { return Prepare(f).Install() }

// Install waits for the preparation and installs the filter, as Install
// does. A process installs one filter: call it once.
func (p *Prepared) Install() (Installed, error) {
	<-p.done
	if p.err != nil {
		return Installed{}, p.err
	}
	prog := p.prog
	trapHead, trapTail, trapTable, trapText = p.trap.head, p.trap.tail, p.trap.table, p.trap.text
	trapI386, trapX32 = p.trap.i386, p.trap.x32
	trapKillHead, trapKillTail, trapKillOutside = p.trap.killHead, p.trap.killTail, p.trap.killOutside
	trapTTY, trapTermios = p.trap.tty, p.trap.termios
	if err := installTrapHandler(); err != nil {
		return Installed{}, err
	}
	// no_new_privs is a property of the thread that sets it, and seccomp
	// checks it on the calling thread (without CAP_SYS_ADMIN it refuses,
	// and TSYNC copies it to the other threads only from the caller): both
	// calls must be made on one thread, which the scheduler could
	// otherwise change between them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return Installed{}, fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if betweenNoNewPrivsAndSeccomp != nil {
		betweenNoNewPrivsAndSeccomp()
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	switch {
	case errno == unix.ENOSYS || errno == unix.EINVAL && !seccompAvailable():
		return Installed{}, fmt.Errorf("seccomp: this kernel has no seccomp filters: %w", errors.Join(ErrUnsupported, errno))
	case errno != 0:
		return Installed{}, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", errno)
	case r != 0:
		// TSYNC returns the id of a thread that could not be
		// synchronized (it has a filter of its own).
		return Installed{}, fmt.Errorf("seccomp: thread %d has another filter and cannot take this one", r)
	}
	return Installed{Instructions: len(prog)}, nil
}

// betweenNoNewPrivsAndSeccomp, when set (by tests), runs between the two
// calls of Install: a place where the goroutine may be rescheduled.
var betweenNoNewPrivsAndSeccomp func()

// seccompAvailable reports whether the kernel knows seccomp filters: with
// CONFIG_SECCOMP_FILTER off, prctl(PR_GET_SECCOMP) still works but
// SECCOMP_SET_MODE_FILTER is EINVAL.
func seccompAvailable() bool {
	_, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	return err == nil
}

// trapData is what the SIGSYS handler reads, before it is published.
type trapData struct {
	head, tail trapMsg
	i386, x32  trapMsg
	killHead   trapMsg
	killTail   trapMsg
	// killOutside is the whole line for a sender the process's PID
	// namespace does not show (si_pid 0).
	killOutside trapMsg
	table       [trapSlots + 1]trapMsg
	text        []byte
	tty         int64
	termios     *byte
}

// prepareTrap builds the handler's table: the name and number of every
// call (built with appends: Sprintf made this 0.36 ms of every start).
func prepareTrap(f Filter) trapData {
	who := f.Process
	if who == "" {
		who = "the VMM"
	}
	head := f.Prefix + "seccomp: " + who + " attempted the forbidden "
	tail := " and was stopped" + f.Advice + "\n"
	const i386, x32 = "32-bit (int 0x80) system call ", "x32 system call "
	killHead := f.Prefix + who + " received SIGSYS from another process (PID "
	const killTail = "), not from its seccomp filter, and exits\n"
	killOutside := f.Prefix + who + " received SIGSYS from a process outside its PID namespace, not from its seccomp filter, and exits\n"
	text := make([]byte, 0, len(head)+len(tail)+len(i386)+len(x32)+len(killHead)+len(killTail)+len(killOutside)+(trapSlots+1)*40)
	text = append(text, head...)
	text = append(text, tail...)
	text = append(text, i386...)
	text = append(text, x32...)
	text = append(text, killHead...)
	text = append(text, killTail...)
	text = append(text, killOutside...)
	ends := make([]int, trapSlots+1)
	for nr := 0; nr < trapSlots; nr++ {
		name := ""
		if nr < len(syscallNames) {
			name = syscallNames[nr] // sysnames_linux_amd64.go
		}
		named := name != ""
		if named {
			text = append(text, name...)
			text = append(text, " ("...)
		}
		text = append(text, "system call "...)
		text = strconv.AppendInt(text, int64(nr), 10)
		if named {
			text = append(text, ')')
		}
		ends[nr] = len(text)
	}
	text = append(text, "system call numbered "+strconv.Itoa(trapSlots)+" or more"...)
	ends[trapSlots] = len(text)
	d := trapData{text: text, tty: -1}
	d.head = trapMsg{&text[0], uintptr(len(head))}
	d.tail = trapMsg{&text[len(head)], uintptr(len(tail))}
	off := len(head) + len(tail)
	d.i386 = trapMsg{&text[off], uintptr(len(i386))}
	off += len(i386)
	d.x32 = trapMsg{&text[off], uintptr(len(x32))}
	off += len(x32)
	d.killHead = trapMsg{&text[off], uintptr(len(killHead))}
	off += len(killHead)
	d.killTail = trapMsg{&text[off], uintptr(len(killTail))}
	off += len(killTail)
	d.killOutside = trapMsg{&text[off], uintptr(len(killOutside))}
	off += len(killOutside)
	for nr, end := range ends {
		d.table[nr] = trapMsg{&text[off], uintptr(end - off)}
		off = end
	}
	if f.Terminal != nil && len(f.Terminal.Termios) > 0 {
		b := append([]byte(nil), f.Terminal.Termios...)
		d.termios = &b[0]
		d.tty = int64(f.Terminal.FD)
	}
	return d
}

// kernelSigaction is the kernel's struct sigaction on x86-64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// installTrapHandler makes the assembly handler SIGSYS's, bypassing the Go
// runtime (whose own handler would print a goroutine dump without the
// call's name). It runs on the thread's signal stack with every signal
// blocked, and never returns.
func installTrapHandler() error {
	const (
		saSigInfo  = 0x4
		saOnStack  = 0x08000000
		saRestorer = 0x04000000
	)
	sa := kernelSigaction{
		handler:  trapHandlerAddr(),
		flags:    saSigInfo | saOnStack | saRestorer,
		restorer: trapRestorerAddr(),
		mask:     ^uint64(0),
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSYS), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
	if errno != 0 {
		return fmt.Errorf("seccomp: rt_sigaction(SIGSYS): %w", errno)
	}
	return nil
}

// Check that the table's layout is what the handler indexes (16 bytes an
// entry).
var _ [16 - unsafe.Sizeof(trapMsg{})]struct{}
var _ [unsafe.Sizeof(trapMsg{}) - 16]struct{}
