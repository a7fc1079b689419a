// Package multiboot loads multiboot v1 kernels into guest memory.
//
// It is pure: it reads a kernel image through an io.ReaderAt, writes the
// kernel, its symbols, boot modules and the multiboot information structure
// into a *guestmem.Memory, and returns a Plan (entry point, EAX, EBX) for the
// VMM to apply to a vCPU in flat 32-bit protected mode. It opens no files and
// issues no ioctls, so tests can check every byte it writes.
//
// Memory layout it produces:
//
//	0x00000-0x05FFF  untouched (the VMM's IVT and BIOS data; NetBSD's reserved pages)
//	0x06000-0x9EFFF  loader data: info structure, memory map, command line,
//	                 loader name, ELF section headers, module list and strings
//	0xA0000-0xFFFFF  untouched (reported reserved; the VMM's firmware stubs)
//	0x100000-...     kernel segments (by p_paddr) and BSS, then the symbol
//	                 table and string table, then page-aligned modules
//
// The layout follows what NetBSD's i386 multiboot entry expects; see
// docs/NETBSD-BOOT-NOTES.md, "Entering the kernel" (the entry's state and
// the information it reads) and "The machine without firmware" (the low
// pages and the BIOS area left to the VMM).
package multiboot
