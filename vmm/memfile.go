package vmm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrMemoryFileTruncated: the snapshot file a restored machine's memory
// maps was made shorter while the VM ran. The mapping is private, but a
// truncation unmaps every page of it past the file's new end, the
// guest's private copies of the pages it wrote too: they are gone from
// the guest, and KVM fails when it meets one (an emulation failure,
// EFAULT), the VMM's own access faults (SIGBUS) or fails (EFAULT).
var ErrMemoryFileTruncated = errors.New("the snapshot file backing guest memory was truncated (or replaced in place) while the VM ran")

// MemoryFileError is how a restored machine's Run ends when KVM failed and
// the snapshot file its memory maps turned out shorter than the memory
// section: the cause is the file, not the guest. It wraps
// ErrMemoryFileTruncated, not ErrGuestCrash. Snapshot fails with it too
// (writing nothing) when it finds the file short.
type MemoryFileError struct {
	Path string // the snapshot file
	Size int64  // its size when found short
	End  int64  // the byte the memory section ends at, which Size is below
	// Cause is what KVM reported (a *CrashError, or KVM_RUN's *Error)
	// when Run ended, a virtio device's fault on guest memory (an error
	// wrapping virtio.ErrMemoryFault), or a snapshot's failure to write
	// the memory (EFAULT, a fault); nil when a snapshot found the file
	// short before reading guest memory.
	Cause error
}

// Error names the file, its size against the memory's end, and what KVM
// reported (a crash's reason, without its registers), if anything.
func (e *MemoryFileError) Error() string {
	s := fmt.Sprintf("the snapshot file %s backing guest memory was truncated (or replaced in place) while the VM ran: it is %d bytes, guest memory ends at byte %d", e.Path, e.Size, e.End)
	var ce *CrashError
	var ke *Error
	switch {
	case errors.As(e.Cause, &ce):
		s += " (KVM: " + ce.Reason + ")"
	case errors.As(e.Cause, &ke) && ke.Op == "KVM_RUN":
		s += " (KVM: " + e.Cause.Error() + ")"
	case e.Cause != nil:
		s += " (" + e.Cause.Error() + ")"
	}
	return s
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
	if !kvmFailed {
		return err
	}
	if e := m.memFileShort(err); e != nil {
		return e
	}
	return err
}

// memFileShort returns a MemoryFileError (with cause) when the machine's
// memory maps a file that now ends before the memory does, nil when the
// memory is not file-backed, the file covers it, or fstat fails.
func (m *Machine) memFileShort(cause error) *MemoryFileError {
	if m.memFile == nil || m.gmem == nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(int(m.memFile.Fd()), &st) != nil {
		return nil
	}
	end := m.memFileOff + int64(m.gmem.Size())
	if st.Size >= end {
		return nil
	}
	return &MemoryFileError{Path: m.memFile.Name(), Size: st.Size, End: end, Cause: cause}
}

// deviceFault is virtio device n's fault handler: its Process faulted on
// guest memory (a SIGBUS made a panic), which for a restored machine is a
// page cut from its memory file. The vCPU would meet the same hole, so
// Run ends with a MemoryFileError when the file is short, else with the
// device's failure; the first fault wins. On the device's goroutine.
func (m *Machine) deviceFault(n int, err error) {
	err = m.faultCause(n, err)
	if m.faultErr.CompareAndSwap(nil, &err) {
		m.stop()
	}
}

// faultCause is the error Run ends with for virtio device n's fault err.
func (m *Machine) faultCause(n int, err error) error {
	err = &Error{Op: fmt.Sprintf("virtio device %d", n), Err: err}
	if e := m.memFileShort(err); e != nil {
		return e
	}
	return err
}
