package vmm

import (
	"fmt"
	"sync/atomic"
)

// unclaimedMMIO logs an MMIO access no RAM or device took (bus.Unclaimed;
// first: the first at its address and direction), as setupDevices says.
func (m *Machine) unclaimedMMIO(addr uint64, data []byte, write, first bool) {
	what := "no RAM or device there"
	if addr >= vgaStart && addr < vgaEnd {
		what = "the VGA window, with no display behind it"
		if m.vga.probe(addr, data, write) {
			what += " (a display probe)"
		} else if m.vga.warned.CompareAndSwap(false, true) {
			m.logf("%s", vgaNote(addr, data, write))
		}
		if !m.cfg.Verbose {
			return
		}
	}
	switch {
	case !first:
	case write:
		m.logf("unhandled MMIO write at %#x (%d bytes): %s, ignored", addr, len(data), what)
	default:
		m.logf("unhandled MMIO read at %#x (%d bytes): %s, read as all ones", addr, len(data), what)
	}
}

// vgaProbe tells NetBSD's display probe from other accesses to the VGA
// window. NetBSD 9's pcdisplay_probe_col and _mono
// (sys/dev/isa/pcdisplay.c) read the word at 0xb8000 or 0xb0000, write
// 0xa55a there, read it back and write back what they read first (all
// ones here); vga_common_probe (sys/dev/ic/vga_common.c) reads and writes
// 0xa55a at 0xb8000, and gives up at the read back. Each runs once or
// twice a boot (a match, a console probe).
type vgaProbe struct {
	accesses atomic.Int32 // the probe's accesses so far
	warned   atomic.Bool  // vgaNote was logged
}

// vgaProbeMax bounds the accesses taken for NetBSD's probe: some 20 at
// a boot; more is a guest writing the display.
const vgaProbeMax = 32

// probe reports whether the access is one of the display probe's: a word
// at 0xb8000 or 0xb0000, a write of 0xa55a or all ones, within
// vgaProbeMax such accesses.
func (p *vgaProbe) probe(addr uint64, data []byte, write bool) bool {
	if len(data) != 2 || addr != 0xb8000 && addr != 0xb0000 {
		return false
	}
	if v := uint16(data[0]) | uint16(data[1])<<8; write && v != 0xa55a && v != 0xffff {
		return false
	}
	return p.accesses.Add(1) <= vgaProbeMax
}

// vgaNote says that the guest writes (or reads) the display smolvmm does
// not have: its output there is lost.
func vgaNote(addr uint64, data []byte, write bool) string {
	verb, what := "reads", "VGA memory"
	if write {
		verb = "writes"
	}
	if addr >= 0xb0000 {
		what = "VGA text memory"
	}
	return fmt.Sprintf("the guest %s %s at %#x (%d bytes): the machine has no display, so nothing shows it; a serial console would (NetBSD: console=com)", verb, what, addr, len(data))
}
