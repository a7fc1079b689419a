// Package guests holds smolvmm's own multiboot v1 test guests: small
// freestanding i386 programs (C and assembly under src/) that print what
// they received from the loader, exercise the emulated devices and end
// through the QEMU-style debug-exit port 0x501 (value v gives exit status
// (v<<1)|1).
//
// The demo guest is committed prebuilt (bin/demo.elf, rebuilt by
// `go generate ./guests`) and embedded as Demo; the others are compiled on
// demand by Build with gcc and ld, since only tests need them.
package guests

import _ "embed"

//go:generate go run ./internal/gendemo

// Demo is the prebuilt demo guest (ELF32, multiboot v1, linked at physical
// 0x100000). It prints the multiboot information, the RTC and the PCI
// devices on COM1, ends with the line "smolvmm-demo: done" and writes 0 to
// the debug-exit port (exit status 1 under QEMU).
//
//go:embed bin/demo.elf
var Demo []byte
