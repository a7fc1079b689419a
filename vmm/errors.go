package vmm

import (
	"errors"
	"fmt"
)

// Sentinel errors callers can test with errors.Is.
var (
	// ErrNoKVM: the KVM device (/dev/kvm, or Config.KVMPath) is missing,
	// is no KVM device, or speaks another API version. Its *Error, like
	// ErrKVMPermission's and ErrKVMTooOld's, has Field KVMPath, for the
	// default /dev/kvm as well (the value KVMPath stood for); whether the
	// host or the path is at fault is the Hint's to say.
	ErrNoKVM = errors.New("KVM is not available")
	// ErrKVMPermission: the KVM device exists but this user may not open
	// it read-write.
	ErrKVMPermission = errors.New("no permission to use KVM")
	// ErrConfig: a value the caller gave is wrong: in itself, whatever
	// the files it names hold (a memory size out of range, no kernel, an
	// empty KernelImage, an unknown Boot, a disk without a path or with a
	// Serial GET_ID cannot answer, a device or image given twice, more
	// devices than the bus holds, readiness or snapshot settings that
	// cannot act, a nil snapshot writer, a second Run), refused before
	// anything is opened where it can be; or for the snapshot a Restore
	// continues (an address for a network card it does not have: other
	// disks or devices than the snapshot's, their number included, are
	// ErrSnapshotDevices). An error about a file the Config names (missing,
	// unreadable, not a kernel, an image too small or locked, no KVM
	// device) is not ErrConfig: it wraps its cause (fs.ErrNotExist,
	// multiboot.ErrNotMultiboot, blk.ErrInUse, ErrNoKVM...), as does a
	// loader's refusal of what the values make with the file (a command
	// line: multiboot.ErrCmdline). Either way an *Error's Field names the
	// field.
	ErrConfig = errors.New("invalid configuration")
	// ErrGuestCrash: the guest stopped in a way no OS asks for (emulation
	// failure, failed VM entry, a triple fault before it wrote anything
	// to its console). A triple fault after console output is not one:
	// NetBSD resets that way, so it ends Run with ExitReset.
	ErrGuestCrash = errors.New("guest crashed")
)

// Error is an error from building or running a machine, with the operation
// that failed and, where one exists, what the user can do about it.
//
// Hint speaks of the Config, never of a program's flags: a command-line
// front end finds the Config field at fault in Field and replaces Hint with
// advice about its own flag. A value given by a RestoreOption rather than
// the Config is named by the option: Field "WithMAC" for a restore's
// network card address.
type Error struct {
	Op    string // what was being done: "open /dev/kvm", "load kernel netbsd"
	Err   error  // why it failed, which Unwrap returns
	Hint  string // what to do, for the CLI to print
	Field string // the Config field ("MemoryMiB", "Kernel", "KernelImage", "Modules", "Append", "Boot", "Disks", "Devices", "ReadyAddr", "KVMPath"...) or RestoreOption ("WithMAC") at fault, or ""
}

// Error is the operation and the cause, with the hint in parentheses.
func (e *Error) Error() string {
	s := e.Op + ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// CrashError describes a guest that stopped unexpectedly, with the vCPU
// state at that moment.
type CrashError struct {
	Reason string // "KVM internal error 1 (emulation failure)", ...
	Regs   string // formatted general and segment registers
}

// Error is one line, the reason; Detail has the registers.
func (e *CrashError) Error() string {
	return "guest crashed: " + e.Reason
}

// Detail is the registers, on lines of their own, to print after Error.
func (e *CrashError) Detail() string { return e.Regs }

// Unwrap returns ErrGuestCrash, so that errors.Is finds any crash.
func (e *CrashError) Unwrap() error { return ErrGuestCrash }

// TripleFaultError is a triple fault (KVM_EXIT_SHUTDOWN) before the guest
// wrote anything to its console: it died booting, where a NetBSD that
// reboots by triple fault has printed first. It carries the registers that
// tell where and in which mode; it wraps ErrGuestCrash.
type TripleFaultError struct {
	// EIP, CR0, CR3, CR4 and EFER are the vCPU's at the fault.
	EIP, CR0, CR3, CR4, EFER uint64
	// SettingPaging: the instruction at EIP moves to CR0 a value with
	// PG set, paging being off: the guest died turning paging on (where
	// a KVM that cannot run paged 32-bit code stops NetBSD's locore).
	SettingPaging bool
	Regs          string // every register, as CrashError's
}

// CR0.PG, EFER.LME and EFER.LMA.
const (
	cr0PG   = 1 << 31
	eferLME = 1 << 8
	eferLMA = 1 << 10
)

// Paging reports whether paging was on (CR0.PG).
func (e *TripleFaultError) Paging() bool { return e.CR0&cr0PG != 0 }

// LongModeEnabled reports whether long mode was enabled (EFER.LME): with
// SettingPaging, the guest was switching to long mode.
func (e *TripleFaultError) LongModeEnabled() bool { return e.EFER&eferLME != 0 }

// LongMode reports whether the CPU was in long mode (EFER.LMA).
func (e *TripleFaultError) LongMode() bool { return e.EFER&eferLMA != 0 }

// Error is one line: what happened and the registers that place it.
func (e *TripleFaultError) Error() string {
	return fmt.Sprintf("guest crashed: triple fault before any console output, EIP=%#x CR0=%#x CR3=%#x CR4=%#x EFER=%#x",
		e.EIP, e.CR0, e.CR3, e.CR4, e.EFER)
}

// Unwrap makes a triple fault before any output one of the guest crashes
// (ErrGuestCrash) for errors.Is.
func (e *TripleFaultError) Unwrap() error { return ErrGuestCrash }

// movToCR0 decodes code as MOV CR0, r32 (0F 22 /r with ModRM mod 3 and reg
// 0) and returns the source register's index in the ModRM order (EAX, ECX,
// EDX, EBX, ESP, EBP, ESI, EDI).
func movToCR0(code []byte) (src int, ok bool) {
	if len(code) < 3 || code[0] != 0x0F || code[1] != 0x22 {
		return 0, false
	}
	modrm := code[2]
	if modrm>>6 != 3 || (modrm>>3)&7 != 0 {
		return 0, false
	}
	return int(modrm & 7), true
}

// WriterPanicError is a snapshot's writer panicking in a call the snapshot
// makes into it (Write, Seek, Stat, SyscallConn). Snapshot
// panics with it on its caller's goroutine once the machine is free of
// the snapshot; Config.OnSnapshot gets it, wrapped, for
// Config.SnapshotOnReady's writer.
type WriterPanicError struct {
	Value any    // what the writer panicked with
	Stack []byte // the stack of the goroutine that wrote, at the panic
}

// Error is the panic's value; Stack says where it came from.
func (e *WriterPanicError) Error() string {
	return fmt.Sprintf("snapshot writer panicked: %v", e.Value)
}

// PanicError is Config.Console's Write, Config.Input's Read or
// Config.Log's Write panicking on the goroutine that moves the guest's
// console output, its input or the machine's messages, or
// Config.OnEvent, Config.OnSnapshot or a device on Machine.PortBus or
// MMIOBus panicking. The machine stops, calls it no more, and Run
// returns the panic as an *Error (Field "Console", "Input", "Log",
// "OnEvent" or "OnSnapshot"; none, and an Op naming it, for a device)
// wrapping a *PanicError (see Config.OnEvent and Config.Log for
// panics outside Run). Config.SnapshotNetwork panicking fails only the
// snapshot that asked it (an *Error with Field "SnapshotNetwork" wrapping
// a *PanicError), and the machine runs on. A snapshot's writer panicking
// is a *WriterPanicError instead.
type PanicError struct {
	Call  string // what panicked: "Config.Console's Write", "Config.Input's Read", "Config.Log's Write", "Config.OnEvent", "Config.OnSnapshot", "MMIO device NAME's Read"
	Value any    // what it panicked with
	Stack []byte // the stack of the goroutine that called it, at the panic
}

// Error is the call and the panic's value; Stack says where it came from.
func (e *PanicError) Error() string {
	return fmt.Sprintf("%s panicked: %v", e.Call, e.Value)
}
