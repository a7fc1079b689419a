// Package netbsdboot loads NetBSD kernels the way NetBSD's own boot loader,
// /boot, hands them control: no multiboot header needed. It takes i386
// (ELF32) and amd64 (ELF64) kernels that carry NetBSD's ident note, and
// returns a bootplan.Plan for the VMM.
//
// It is pure, as the multiboot package is: it reads the kernel through an
// io.ReaderAt, writes into a *guestmem.Memory and opens no files.
//
// What it does, from NetBSD 9.1's sources (file:line in the comments):
//
//	0x00000-0x05FFF  untouched (the VMM's IVT and BIOS data)
//	0x06000-0x06FFF  the stack: return address 0, then boothowto, bootdev,
//	                 bootinfo, esym, biosextmem, biosbasemem (ESP=0x6FE4);
//	                 esym is the end of everything below: the last
//	                 module's, else the symbol area's (/boot passes the
//	                 symbol area's end, and endpa for the modules)
//	0x07000-...      the bootinfo table {nentries, entry[]} and its records
//	0xA0000-0xFFFFF  untouched (the VMM's firmware)
//	p_vaddr&0x7ffffff PT_LOAD segments, BSS zeroed (p_paddr is not read)
//	then             the symbol area, from the kernel's end rounded to 4
//	                 (ELF32) or 8 (ELF64), each piece rounded as much: ELF
//	                 header copy, section headers, section names, then the
//	                 symbol tables, the string tables they link to and CTF
//	                 (BTINFO_SYMTAB; its esym is the end rounded to 4)
//	then             modules, each page aligned (BTINFO_MODULELIST, endpa)
package netbsdboot
