package bootelf

import "fmt"

// machines names the e_machine values of NetBSD's ports (and a few more),
// with the port names NetBSD uses where they differ from the CPU's.
var machines = map[uint16]string{
	2:      "SPARC (sparc)",
	3:      "Intel 80386 (i386)",
	4:      "Motorola 68000 (m68k)",
	5:      "Motorola 88000 (m88k)",
	8:      "MIPS (mips)",
	10:     "MIPS RS3000 little-endian (mips)",
	15:     "HP PA-RISC (hppa)",
	18:     "SPARC v8+ (sparc)",
	20:     "PowerPC (powerpc)",
	21:     "PowerPC 64-bit (powerpc64)",
	22:     "IBM S/390",
	40:     "ARM (arm)",
	41:     "DEC Alpha (alpha)",
	42:     "SuperH (sh3)",
	43:     "SPARC v9 (sparc64)",
	50:     "Intel Itanium (ia64)",
	62:     "AMD x86-64 (amd64)",
	75:     "DEC VAX (vax)",
	92:     "OpenRISC (or1k)",
	183:    "ARM 64-bit (aarch64)",
	243:    "RISC-V (riscv)",
	0x9026: "DEC Alpha (alpha)",
}

// MachineName names an e_machine value, e.g. "SuperH (sh3)" for 42.
func MachineName(m uint16) string {
	if s, ok := machines[m]; ok {
		return fmt.Sprintf("%s, e_machine %d", s, m)
	}
	return fmt.Sprintf("e_machine %d", m)
}
