// Package bootplan is what every kernel loader hands the VMM: the boot
// protocol it used, the vCPU's registers at entry (flat 32-bit protected
// mode, paging and interrupts off) and the list of memory regions it wrote,
// so that a VMM, a test or a reference trampoline can start the same image.
package bootplan

import (
	"errors"
	"fmt"
)

// Protocol is a way to hand a kernel control.
type Protocol int

// The protocols smolvmm knows. Auto means "decide from the kernel file".
const (
	Auto      Protocol = iota // a multiboot header means Multiboot, else a NetBSD ELF means NetBSD (see Plan.Reason for the exceptions)
	Multiboot                 // multiboot v1: EAX magic, EBX info structure
	NetBSD                    // NetBSD's /boot handoff: six stack arguments and bootinfo records
)

// String returns the name ParseProtocol accepts.
func (p Protocol) String() string {
	switch p {
	case Auto:
		return "auto"
	case Multiboot:
		return "multiboot"
	case NetBSD:
		return "netbsd"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// ErrProtocol: a protocol name that is not auto, multiboot or netbsd.
var ErrProtocol = errors.New("unknown boot protocol")

// ParseProtocol reads "auto", "multiboot" or "netbsd".
func ParseProtocol(s string) (Protocol, error) {
	for _, p := range []Protocol{Auto, Multiboot, NetBSD} {
		if s == p.String() {
			return p, nil
		}
	}
	return Auto, fmt.Errorf("%w %q: want auto, multiboot or netbsd", ErrProtocol, s)
}

// Region is one range of guest-physical memory a loader wrote: a copy of
// Len bytes of guest memory at Addr reproduces the loaded image.
type Region struct {
	Addr, Len uint64
	What      string // e.g. "segment 0", "symbols", "module miniroot.kmod", "bootinfo"
}

// String is the region as a half-open address range and what it holds,
// as a verbose log shows the layout.
func (r Region) String() string {
	return fmt.Sprintf("[%#08x, %#08x) %s", r.Addr, r.Addr+r.Len, r.What)
}

// Plan is how a loaded kernel starts: the VMM sets EIP, ESP, EAX and EBX in
// flat 32-bit protected mode (4 GiB code and data segments, paging and
// interrupts off) and runs.
type Plan struct {
	// Protocol is the boot protocol chosen.
	Protocol Protocol
	// Reason says why Auto chose Protocol over the kernel's multiboot
	// header, for a user who expects multiboot (NetBSD's multiboot
	// entry ignores boot modules; multiboot v1 loads no ELF64 file
	// without the a.out kludge). It is empty when the header was
	// followed, when there was none and when the protocol was forced.
	Reason             string
	EIP, ESP, EAX, EBX uint32
	// KernelStart and KernelEnd bound the loaded image, BSS included.
	KernelStart, KernelEnd uint32
	// End is the first byte after everything the loader placed at or above
	// 1 MiB (image, symbols, modules).
	End uint32
	// Format is the kernel's format: "elf32", "elf64" or "aout-kludge"
	// (multiboot says "elf" for ELF32).
	Format string
	// Symbols reports that the kernel's symbol table was loaded and passed.
	Symbols bool
	// Regions lists every range the loader wrote, in address order: loader
	// data below 1 MiB, then segments, symbols and modules.
	Regions []Region
	// Warnings lists what the loader left out or could not pass, and why,
	// for verbose output.
	Warnings []string
	// Notices are the Warnings a user should see without asking for
	// verbose output: what leaves the guest unseen or without what it was
	// given.
	Notices []string
}
