package vmm

import (
	"errors"
	"fmt"
)

// Sentinel errors callers can test with errors.Is.
var (
	// ErrNoKVM: the host has no usable /dev/kvm.
	ErrNoKVM = errors.New("KVM is not available")
	// ErrKVMPermission: /dev/kvm exists but this user may not open it.
	ErrKVMPermission = errors.New("no permission to use KVM")
	// ErrConfig: the Config is invalid (memory size, missing kernel...).
	ErrConfig = errors.New("invalid configuration")
	// ErrGuestCrash: the guest stopped in a way no OS asks for (emulation
	// failure, failed VM entry). A triple fault is not one: NetBSD resets
	// that way, so it ends Run with ExitReset.
	ErrGuestCrash = errors.New("guest crashed")
)

// Error is an error from building or running a machine, with the operation
// that failed and, where one exists, what the user can do about it.
//
// Hint speaks of the Config, never of a program's flags: a command-line
// front end finds the Config field at fault in Field and replaces Hint with
// advice about its own flag.
type Error struct {
	Op    string // what was being done: "open /dev/kvm", "load kernel netbsd"
	Err   error
	Hint  string // what to do, for the CLI to print
	Field string // the Config field at fault ("MemoryMiB", "Kernel", "Modules", "Append", "Boot"), or ""
}

func (e *Error) Error() string {
	s := e.Op + ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// CrashError describes a guest that stopped unexpectedly, with the vCPU
// state at that moment.
type CrashError struct {
	Reason string // "KVM internal error 1 (emulation failure)", ...
	Regs   string // formatted general and segment registers
}

func (e *CrashError) Error() string {
	return fmt.Sprintf("guest crashed: %s\n%s", e.Reason, e.Regs)
}

func (e *CrashError) Unwrap() error { return ErrGuestCrash }
