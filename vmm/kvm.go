package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// The ioctls gokvm's kvm package does not wrap (or wraps incorrectly at the
// version we use) are issued here with x/sys/unix; everything else goes
// through gokvm. This file and vcpu.go are the only code that talks to KVM.

const (
	kvmIOEventFD    = 0x79 // _IOW(KVMIO, 0x79, struct kvm_ioeventfd)
	kvmCreatePIT2   = 0x77 // _IOW(KVMIO, 0x77, struct kvm_pit_config)
	pitSpeakerDummy = 1    // KVM_PIT_SPEAKER_DUMMY

	ioeventfdFlagPIO      = 1 << 1
	ioeventfdFlagDeassign = 1 << 2

	kvmExitIO            = 2
	kvmExitHLT           = 5
	kvmExitMMIO          = 6
	kvmExitShutdown      = 8
	kvmExitFailEntry     = 9
	kvmExitIntr          = 10
	kvmExitInternalError = 17
	kvmExitSystemEvent   = 24

	kvmSystemEventReset = 2
)

type ioeventfdArgs struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	_         [36]byte
}

func ioctlW(fd uintptr, nr, size uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, kvm.IIOW(nr, size), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// CheckKVM opens the KVM device at path ("" is /dev/kvm) as New does and
// closes it, returning New's error for a device that cannot be used
// (Field KVMPath, the Config field path stands for): a caller checks it
// before long work that ends in a machine.
func CheckKVM(path string) error {
	if path == "" {
		path = defaultKVMPath
	}
	f, err := openKVM(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// defaultKVMPath is the KVM device a Config without KVMPath opens: the
// only one of which a failure says something about the host.
const defaultKVMPath = "/dev/kvm"

// kvmError is a KVM device that cannot be used: what is wrong, the
// sentinel that says so for errors.Is (ErrNoKVM, ErrKVMPermission; both
// empty for a failure that says nothing of the device, such as too many
// open files) and the system's error, which errors.Is and errors.As find
// too.
type kvmError struct {
	what  string
	kind  error
	cause error
}

func (e *kvmError) Error() string {
	cause := e.cause
	var pe *fs.PathError
	if errors.As(cause, &pe) {
		cause = pe.Err // the path is the Error's Op already
	}
	if e.what == "" {
		return cause.Error()
	}
	return e.what + ": " + cause.Error()
}

func (e *kvmError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.cause}
	}
	return []error{e.kind, e.cause}
}

// hostArch is the architecture this process runs on; x86Host, whether
// its KVM runs x86 guests (a variable for the tests).
var (
	hostArch = runtime.GOARCH
	x86Host  = hostArch == "amd64" || hostArch == "386"
)

// notDevice is whether open(2) failed with err because nothing at the
// path is a device it can open: a directory, a socket or a device node
// without its driver (ENXIO, ENODEV), a path through a file or a loop of
// symbolic links.
func notDevice(err error) bool {
	for _, no := range []unix.Errno{unix.EISDIR, unix.ENXIO, unix.ENODEV, unix.ENOTDIR, unix.ELOOP} {
		if errors.Is(err, no) {
			return true
		}
	}
	return false
}

// openKVM opens the KVM device at path and checks that it is one, with
// the API version this VMM speaks. The advice about the host (firmware,
// modules, its group) is given only for /dev/kvm: another path is
// the caller's choice, and the host may have KVM elsewhere.
//
// An error that says the device cannot be used (ErrNoKVM,
// ErrKVMPermission, ErrKVMTooOld) has Field KVMPath, whether the caller
// set it or left the default /dev/kvm: path is the field's value either
// way, and a front end cannot tell the two apart when it passes its own
// default. The Hint, not the Field, says whether the host is at fault.
// A failure that says nothing of the device (too many open files) names
// no field.
func openKVM(path string) (*os.File, error) {
	if !x86Host {
		// The KVM of another architecture runs its own guests: every x86
		// register and ioctl would fail there, one obscure error after
		// another.
		return nil, &Error{Op: "open " + path,
			Err:  fmt.Errorf("%w: the guests this package runs are x86, and the KVM of this %s host runs %s guests", ErrNoKVM, hostArch, hostArch),
			Hint: "run the VM on an x86 (amd64) host"}
	}
	host := path == defaultKVMPath
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		e := &Error{Op: "open " + path, Err: err, Field: "KVMPath"}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			e.Err = &kvmError{ErrNoKVM.Error(), ErrNoKVM, err}
			e.Hint = "no KVM device at this path: check it"
			if host {
				e.Hint = "this host has no KVM: enable virtualization in the firmware and load kvm-intel or kvm-amd"
			}
		case errors.Is(err, fs.ErrPermission):
			e.Err = &kvmError{ErrKVMPermission.Error(), ErrKVMPermission, err}
			e.Hint = "give this user read and write access to it, or run as root"
			if host {
				e.Hint = kvmPermissionHint(deviceGroup(path))
			}
		case notDevice(err):
			// Op already names the path.
			e.Err = &kvmError{"not a KVM device", ErrNoKVM, err}
			e.Hint = "no KVM device at this path: check it"
		default:
			e.Err = &kvmError{cause: err}
			e.Field = ""
		}
		return nil, e
	}
	v, err := kvm.GetAPIVersion(f.Fd())
	switch {
	case err != nil:
		f.Close()
		return nil, &Error{Op: "KVM_GET_API_VERSION", Err: &kvmError{path + " is not a KVM device", ErrNoKVM, err}, Field: "KVMPath"}
	case v != kvmAPIVersion:
		f.Close()
		return nil, &Error{Op: "KVM_GET_API_VERSION", Err: fmt.Errorf("%s speaks KVM API version %d, not %d: %w", path, v, kvmAPIVersion, ErrNoKVM), Field: "KVMPath"}
	}
	if err := checkRequiredCaps(kvm.CheckExtension, f.Fd(), path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ErrKVMTooOld: the KVM device lacks a capability this VMM cannot run
// without; the error names it and the Linux release that brought it, and
// its Hint asks for that release.
var ErrKVMTooOld = errors.New("this host's KVM is too old")

// requiredCaps are the KVM capabilities a machine cannot do without, and
// the Linux release that brought each. kvm_run.immediate_exit: a kick
// (vcpu.kick) and a snapshot's completion of the instruction in progress
// (completeInstruction) set it to leave KVM_RUN without running the
// guest on; before Linux 4.11 that byte is padding KVM ignores: a kick
// between the loop's check and KVM_RUN would be lost, and a snapshot
// would run the guest on to its next exit.
var requiredCaps = []struct {
	cap   kvm.Capability
	name  string
	linux string
}{
	{kvm.CapImmediateExit, "KVM_CAP_IMMEDIATE_EXIT", "4.11"},
}

// checkRequiredCaps asks check (KVM_CHECK_EXTENSION) of the KVM device
// kvmFD, opened at path, for each of requiredCaps, refusing
// (ErrKVMTooOld, Field KVMPath, as openKVM's) one without.
func checkRequiredCaps(check func(fd uintptr, c kvm.Capability) (uintptr, error), kvmFD uintptr, path string) error {
	for _, c := range requiredCaps {
		n, err := check(kvmFD, c.cap)
		if err != nil {
			return &Error{Op: "KVM_CHECK_EXTENSION(" + c.name + ")", Err: err}
		}
		if n == 0 {
			return &Error{Op: "KVM_CHECK_EXTENSION(" + c.name + ")", Err: fmt.Errorf("%s has no %s, which KVM has had since Linux %s: %w", path, c.name, c.linux, ErrKVMTooOld),
				Hint: "use Linux " + c.linux + " or newer", Field: "KVMPath"}
		}
	}
	return nil
}

// deviceAccess is what decides the advice for a user refused a device:
// its group, what that group may do, and this user's standing in it.
type deviceAccess struct {
	// group is the name of the device's group, "" when unknown.
	group string
	// groupRW is whether the device's group may read and write it: its
	// ACL's group:: entry within the ACL's mask, or, without an ACL,
	// the mode's group bits (with one, those bits are the mask, and
	// say nothing of the group).
	groupRW bool
	// active is whether this process has the group, as its effective or
	// a supplementary group.
	active bool
	// listed is whether the group database lists this user in the group,
	// which a login gives the processes it starts.
	listed bool
}

// deviceGroup is the deviceAccess of the device at path for this
// process's user; facts that cannot be read are left false or empty,
// which gives the advice that does not rely on them.
func deviceGroup(path string) deviceAccess {
	var a deviceAccess
	fi, err := os.Stat(path)
	if err != nil {
		return a
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return a
	}
	gid := strconv.FormatUint(uint64(st.Gid), 10)
	if g, err := user.LookupGroupId(gid); err == nil {
		a.group = g.Name
	}
	if acl, err := readACL(path); err == nil {
		// An ACL that does not parse leaves groupRW false: the advice
		// of an ACL of the user's own works whatever it holds.
		if perm, err := ownerGroupPerm(fi.Mode(), acl); err == nil {
			a.groupRW = perm&aclRW == aclRW
		}
	}
	groups, _ := os.Getgroups()
	a.active = inGroup(int(st.Gid), os.Getegid(), groups)
	if u, err := user.Current(); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				a.listed = a.listed || id == gid
			}
		}
	}
	return a
}

// inGroup is whether gid is egid or among groups (getgroups(2)).
func inGroup(gid, egid int, groups []int) bool {
	if gid == egid {
		return true
	}
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}

// The POSIX access ACL as Linux keeps it in the aclXattr attribute: a
// little-endian 4-byte version, aclVersion, then 8-byte entries of a
// 2-byte tag, 2-byte permission (rwx as in a mode's bits) and 4-byte
// uid or gid.
const (
	aclXattr    = "system.posix_acl_access"
	aclVersion  = 2
	aclHeader   = 4
	aclEntryLen = 8

	aclGroupObj = 0x04 // the group:: entry, the file's group's
	aclMask     = 0x10 // mask::, the most any group or named user gets

	aclRW = 0o6 // read and write, in an entry's permission
)

// aclEntry is one entry of an access ACL.
type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// readACL reads the access ACL of path (aclXattr), nil when it has none
// or its file system keeps none.
func readACL(path string) ([]aclEntry, error) {
	for {
		n, err := unix.Getxattr(path, aclXattr, nil)
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + aclXattr, Path: path, Err: err}
		}
		b := make([]byte, n)
		n, err = unix.Getxattr(path, aclXattr, b)
		if errors.Is(err, unix.ERANGE) {
			// It grew between the two calls.
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + aclXattr, Path: path, Err: err}
		}
		acl, err := parseACL(b[:n])
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, aclXattr, err)
		}
		return acl, nil
	}
}

// parseACL parses an access ACL's attribute (see aclXattr).
func parseACL(b []byte) ([]aclEntry, error) {
	if len(b) < aclHeader {
		return nil, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(b), aclHeader)
	}
	if v := binary.LittleEndian.Uint32(b); v != aclVersion {
		return nil, fmt.Errorf("version %d at offset 0, not %d", v, aclVersion)
	}
	if r := (len(b) - aclHeader) % aclEntryLen; r != 0 {
		return nil, fmt.Errorf("%d bytes: the last %d, at offset %d, are not a whole %d-byte entry", len(b), r, len(b)-r, aclEntryLen)
	}
	acl := make([]aclEntry, 0, (len(b)-aclHeader)/aclEntryLen)
	for off := aclHeader; off < len(b); off += aclEntryLen {
		acl = append(acl, aclEntry{
			tag:  binary.LittleEndian.Uint16(b[off:]),
			perm: binary.LittleEndian.Uint16(b[off+2:]),
			id:   binary.LittleEndian.Uint32(b[off+4:]),
		})
	}
	return acl, nil
}

// ownerGroupPerm is the permission (rwx bits) the file's group has, of a
// file with mode and access ACL acl (nil: none): the ACL's group:: entry
// within its mask, else the mode's group bits.
func ownerGroupPerm(mode fs.FileMode, acl []aclEntry) (uint16, error) {
	if acl == nil {
		return uint16(mode.Perm()>>3) & 0o7, nil
	}
	group, mask, found := uint16(0), uint16(0o7), false
	for _, e := range acl {
		switch e.tag {
		case aclGroupObj:
			group, found = e.perm, true
		case aclMask:
			mask = e.perm
		}
	}
	if !found {
		return 0, errors.New("the ACL has no group:: entry")
	}
	return group & mask & 0o7, nil
}

// kvmPermissionHint is the advice for a user refused /dev/kvm, whose
// group and this user's standing in it are a. Joining the group helps
// only when it may read and write the device and is not root's (which
// no user should join for this); a user listed in it whose process does
// not have it yet needs a new login; otherwise the user needs access of
// their own: an ACL now, a udev rule to keep it across reboots.
func kvmPermissionHint(a deviceAccess) string {
	const access = "give your user read and write access to /dev/kvm (sudo setfacl --modify u:$USER:rw /dev/kvm, and a udev rule to keep it after a reboot) or run as root"
	usable := a.groupRW && a.group != "" && a.group != "root"
	switch {
	case usable && a.active:
		// The group's access did not let this process in: an ACL entry
		// of its user's, or a security module, stands before it.
		return fmt.Sprintf("this process has the %s group, which may read and write /dev/kvm, and was refused all the same: %s", a.group, access)
	case usable && a.listed:
		return fmt.Sprintf("your user is in the %s group, but this login started before it joined: log in again (or run newgrp %s) or run as root", a.group, a.group)
	case usable:
		return fmt.Sprintf("add your user to the %s group (sudo usermod -aG %s $USER, then log in again) or run as root", a.group, a.group)
	case (a.active || a.listed) && a.group != "" && a.group != "root":
		return fmt.Sprintf("the %s group, which your user is in, may not read and write /dev/kvm: %s", a.group, access)
	}
	return access
}

// kvmAPIVersion is the only KVM API version there has been since Linux
// 2.6.22, which KVM_GET_API_VERSION returns.
const kvmAPIVersion = 12

// createPIT2 creates the in-kernel 8254 with KVM_PIT_SPEAKER_DUMMY, so that
// port 0x61 (speaker and PIT channel 2 gate) is answered in the kernel as
// QEMU and Firecracker do, instead of reading as all ones from our bus.
// gokvm's CreatePIT2 passes no flags.
func createPIT2(vmFD uintptr) error {
	cfg := struct {
		Flags uint32
		_     [15]uint32
	}{Flags: pitSpeakerDummy}
	return ioctlW(vmFD, kvmCreatePIT2, unsafe.Sizeof(cfg), unsafe.Pointer(&cfg))
}

// setIOEventFD makes KVM signal efd, instead of exiting to user space, when
// the guest writes len bytes to port addr.
func setIOEventFD(vmFD uintptr, addr uint64, length uint32, efd int, deassign bool) error {
	a := ioeventfdArgs{Addr: addr, Len: length, FD: int32(efd), Flags: ioeventfdFlagPIO}
	if deassign {
		a.Flags |= ioeventfdFlagDeassign
	}
	if err := ioctlW(vmFD, kvmIOEventFD, unsafe.Sizeof(a), unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD port %#x: %w", addr, err)
	}
	return nil
}

// kvmIRQ drives one interrupt line of the in-kernel PIC/IOAPIC through
// KVM_IRQ_LINE_STATUS.
type kvmIRQ struct {
	vmFD uintptr
	line uint32
}

// Set drives the line to level.
func (q kvmIRQ) Set(level bool) {
	l := uint32(0)
	if level {
		l = 1
	}
	// The only failure is a VM being torn down; the interrupt is moot then.
	_ = kvm.IRQLineStatus(q.vmFD, q.line, l)
}

// setLevelTriggered sets the ELCR bits of the in-kernel 8259 pair for lines,
// as a PCI BIOS would: NetBSD never programs the ELCR itself, and its PCI
// handlers expect level-triggered lines.
func setLevelTriggered(vmFD uintptr, lines []uint8) error {
	for chip := uint32(0); chip < 2; chip++ {
		var c kvm.IRQChip
		c.ChipID = chip
		if err := kvm.GetIRQChip(vmFD, &c); err != nil {
			return fmt.Errorf("KVM_GET_IRQCHIP %d: %w", chip, err)
		}
		const elcrOff, elcrMaskOff = 14, 15 // in struct kvm_pic_state
		changed := false
		for _, l := range lines {
			if uint32(l/8) != chip {
				continue
			}
			c.Chip[elcrOff] |= 1 << (l % 8)
			c.Chip[elcrMaskOff] |= 1 << (l % 8)
			changed = true
		}
		if !changed {
			continue
		}
		if err := kvm.SetIRQChip(vmFD, &c); err != nil {
			return fmt.Errorf("KVM_SET_IRQCHIP %d: %w", chip, err)
		}
	}
	return nil
}

// createVM is KVM_CREATE_VM, made again when a signal interrupted it: the
// kernel gives up with EINTR when a signal is pending while it registers
// the VM with the process's memory (mm_take_all_locks), and the Go
// runtime signals its threads at any time (preemption, SIGURG). Its
// error is an *Error saying what a failure means (createVMError).
func createVM(kvmFD uintptr) (uintptr, error) {
	return createVMBy(func() (uintptr, error) { return kvm.CreateVM(kvmFD) })
}

// createVMBy is createVM with create as KVM_CREATE_VM.
func createVMBy(create func() (uintptr, error)) (uintptr, error) {
	fd, err := retryEINTR(create)
	if err != nil {
		return 0, createVMError(err)
	}
	return fd, nil
}

// ErrVirtualizationInUse: KVM could not turn on the CPU's virtualization
// extensions to create a VM (KVM_CREATE_VM failed with EBUSY): another
// hypervisor, such as VirtualBox or VMware, holds them. KVM turns them on
// at its first VM before Linux 6.12 (since, when it loads, unless
// kvm.enable_virt_at_load=0). Its Hint says to stop the other one.
var ErrVirtualizationInUse = errors.New("another hypervisor holds this CPU's virtualization extensions (VT-x, AMD-V)")

// createVMError is KVM_CREATE_VM's error err as an *Error, with what it
// means where the errno says: EBUSY, the CPU's virtualization taken
// (ErrVirtualizationInUse); ENOMEM, the kernel's allocations for the VM
// refused, which a memory cgroup's limit does too. The errno stays for
// errors.Is. EINVAL would be a VM type x86 lacks, and this VMM asks for
// the default one every x86 KVM has.
func createVMError(err error) error {
	e := &Error{Op: "KVM_CREATE_VM", Err: err}
	switch {
	case errors.Is(err, unix.EBUSY):
		e.Err = &kvmError{ErrVirtualizationInUse.Error(), ErrVirtualizationInUse, err}
		e.Hint = "stop the other hypervisor using this CPU, such as VirtualBox or VMware, then try again"
	case errors.Is(err, unix.ENOMEM):
		e.Err = &kvmError{what: "the kernel has no memory for a new VM (the host's, or this process's memory cgroup's, is used up)", cause: err}
	}
	return e
}

// retryEINTR calls f until it returns anything but EINTR.
func retryEINTR(f func() (uintptr, error)) (uintptr, error) {
	for {
		r, err := f()
		if !errors.Is(err, unix.EINTR) {
			return r, err
		}
	}
}

// The guest gets no performance monitoring unit: KVM_CAP_PMU_CAPABILITY
// (Linux 5.18) with KVM_PMU_CAP_DISABLE, enabled on the VM before its
// vCPU exists. Hiding the PMU's CPUID leaves alone does not: KVM gives an
// AMD guest its four legacy counters whatever CPUID says.
const (
	kvmEnableCap  = 0xa3 // _IOW(KVMIO, 0xa3, struct kvm_enable_cap)
	pmuCapDisable = 1    // KVM_PMU_CAP_DISABLE
)

// enableCapArgs is struct kvm_enable_cap.
type enableCapArgs struct {
	Cap   uint32
	Flags uint32
	Args  [4]uint64
	_     [64]byte
}

// enableVMCap is KVM_ENABLE_CAP on the VM vmFD.
func enableVMCap(vmFD uintptr, a *enableCapArgs) error {
	return ioctlW(vmFD, kvmEnableCap, unsafe.Sizeof(*a), unsafe.Pointer(a))
}

// disablePMU takes the PMU from the VM vmFD, before its vCPU is created,
// where the KVM of kvmFD (/dev/kvm) can (Linux 5.18, and a KVM whose
// enable_pmu is on: with it off no VM has one); elsewhere the VM keeps
// what KVM gives it.
func disablePMU(kvmFD, vmFD uintptr) error {
	// An error, as 0, says a KVM that cannot.
	if n, err := pmuCheck(kvmFD, kvm.CapPMUCapability); err != nil || n&pmuCapDisable == 0 {
		return nil
	}
	a := enableCapArgs{Cap: uint32(kvm.CapPMUCapability), Args: [4]uint64{pmuCapDisable}}
	if err := pmuEnable(vmFD, &a); err != nil {
		return &Error{Op: "KVM_ENABLE_CAP", Err: fmt.Errorf("KVM_CAP_PMU_CAPABILITY with KVM_PMU_CAP_DISABLE: %w", err)}
	}
	return nil
}

// pmuCheck and pmuEnable are the KVM_CHECK_EXTENSION and KVM_ENABLE_CAP
// disablePMU makes; tests fake them.
var (
	pmuCheck  = kvm.CheckExtension
	pmuEnable = enableVMCap
)

// restoredPMU gives the restored VM vmFD the PMU its snapshot's vCPU had,
// before its vCPU is created: none (disablePMU) unless the snapshot's
// CPUID entries advertise one (cpuidHasPMU), as a snapshot taken by a
// build that left the VM its PMU does. Such a snapshot's MSRs hold the
// counters' state, which KVM refuses to set on a vCPU without a PMU.
func restoredPMU(kvmFD, vmFD uintptr, entries []cpuidEntry) error {
	if cpuidHasPMU(entries) {
		return nil
	}
	return disablePMU(kvmFD, vmFD)
}

// cpuidHasPMU reports whether CPUID entries advertise a PMU: any of
// pmuSigns, which tuneCPUID clears.
func cpuidHasPMU(entries []cpuidEntry) bool {
	for _, e := range entries {
		for _, p := range pmuSigns {
			if e.Function == p.leaf && e.reg(p.reg)&p.mask != 0 {
				return true
			}
		}
	}
	return false
}
