package vmm

import (
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
)

// Low-memory layout, as a PC BIOS leaves it for a multiboot kernel.
const (
	ivtBase    = 0x0000  // real-mode interrupt vector table, 256 far pointers
	bdaEBDA    = 0x040E  // BIOS data area: EBDA segment (0: none)
	bdaBaseMem = 0x0413  // BIOS data area: base memory in KiB
	gdtBase    = 0x0500  // our flat GDT (null, code 0x08, data 0x10)
	stubSeg    = 0xF000  // firmware segment
	stubOff    = 0xFF53  // where real BIOSes keep their dummy IRET
	gdtCode    = 0x08    // selectors in our GDT
	gdtData    = 0x10    //
	baseMemKiB = 640     // conventional memory reported in the BDA
	stubIRET   = 0xCF    // IRET opcode
	vgaStart   = 0xA0000 // the VGA window: no memory behind it
	vgaEnd     = 0xC0000 //
)

// writeFirmware lays out what NetBSD expects to find below 1 MiB with no BIOS
// at all. Every real-mode interrupt vector points at an IRET stub: NetBSD
// GENERIC calls INT 15h from real mode early in init386 (its MCA probe) and
// would jump to 0000:0000 through a zeroed table; with the stub, AH keeps
// 0xC0 and the kernel takes its "not supported" path. The BIOS data area
// reports no EBDA and 640 KiB of base memory, so MP-table scans find nothing
// quickly. 0xA0000-0xBFFFF is the VGA window of a machine without a display:
// no memory (see setupMemory). 0xC0000-0xFFFFF is plain zeroed RAM, so probes
// of the BIOS area read zeros without leaving the guest.
func writeFirmware(mem *guestmem.Memory) error {
	if mem.Size() < 1<<20 {
		return fmt.Errorf("guest memory %#x is smaller than 1 MiB", mem.Size())
	}
	vector := uint32(stubSeg)<<16 | stubOff
	for i := 0; i < 256; i++ {
		if err := mem.Write32(ivtBase+uint64(4*i), vector); err != nil {
			return err
		}
	}
	if err := mem.Write8(uint64(stubSeg)<<4+stubOff, stubIRET); err != nil {
		return err
	}
	if err := mem.Write16(bdaEBDA, 0); err != nil {
		return err
	}
	if err := mem.Write16(bdaBaseMem, baseMemKiB); err != nil {
		return err
	}
	// Flat 4 GiB segments matching the state the vCPU starts in, for guests
	// that reload segment registers before installing their own GDT.
	gdt := []uint64{
		0,
		0x00CF9B000000FFFF, // code: base 0, limit 4 GiB, execute/read, accessed
		0x00CF93000000FFFF, // data: base 0, limit 4 GiB, read/write, accessed
	}
	for i, d := range gdt {
		if err := mem.Write64(gdtBase+uint64(8*i), d); err != nil {
			return err
		}
	}
	return nil
}
