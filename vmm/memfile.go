package vmm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrMemoryFileTruncated: the snapshot file a restored machine's memory
// maps was made shorter while the VM ran. The mapping is private, but the
// pages the guest has not written are still the file's: cut from the
// file, they are gone from the guest too, and KVM fails when it meets
// one (an emulation failure, EFAULT).
var ErrMemoryFileTruncated = errors.New("the snapshot file backing guest memory was truncated (or replaced in place) while the VM ran")

// MemoryFileError is how a restored machine's Run ends when KVM failed and
// the snapshot file its memory maps turned out shorter than the memory
// section: the cause is the file, not the guest. It wraps
// ErrMemoryFileTruncated, not ErrGuestCrash.
type MemoryFileError struct {
	Path  string // the snapshot file
	Size  int64  // its size when KVM failed
	End   int64  // the byte the memory section ends at, which Size is below
	Cause error  // what KVM reported: a *CrashError, or KVM_RUN's *Error
}

// Error names the file, its size against the memory's end, and what KVM
// reported (a crash's reason, without its registers).
func (e *MemoryFileError) Error() string {
	cause := ""
	var ce *CrashError
	switch {
	case errors.As(e.Cause, &ce):
		cause = ce.Reason
	case e.Cause != nil:
		cause = e.Cause.Error()
	}
	return fmt.Sprintf("the snapshot file %s backing guest memory was truncated (or replaced in place) while the VM ran: it is %d bytes, guest memory ends at byte %d (KVM: %s)", e.Path, e.Size, e.End, cause)
}

// Unwrap returns ErrMemoryFileTruncated.
func (e *MemoryFileError) Unwrap() error { return ErrMemoryFileTruncated }

// memFileCause turns err, KVM's failure to run a restored guest, into a
// MemoryFileError when the file its memory maps (memFile, through the
// descriptor the mapping came from) now ends before the memory does; any
// other err, and every error of a booted machine, is returned as it is.
func (m *Machine) memFileCause(err error) error {
	var ke *Error
	kvmFailed := errors.Is(err, ErrGuestCrash) || errors.As(err, &ke) && ke.Op == "KVM_RUN"
	if !kvmFailed || m.memFile == nil || m.gmem == nil {
		return err
	}
	var st unix.Stat_t
	if unix.Fstat(int(m.memFile.Fd()), &st) != nil {
		return err
	}
	end := m.memFileOff + int64(m.gmem.Size())
	if st.Size >= end {
		return err
	}
	return &MemoryFileError{Path: m.memFile.Name(), Size: st.Size, End: end, Cause: err}
}
