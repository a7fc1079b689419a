package pci_test

import (
	"encoding/binary"
	"fmt"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/pci"
)

// nic is a PCI function with one 32-byte I/O BAR.
type nic struct {
	cfg  *pci.Config
	regs regs
}

func (n *nic) PCIConfig() *pci.Config   { return n.cfg }
func (n *nic) BARDevice(int) bus.Device { return &n.regs }

// regs answers every read of the BAR with its offset.
type regs struct{}

func (regs) Read(off uint64, data []byte) { data[0] = byte(off) }
func (regs) Write(uint64, []byte)         {}

// cfgAddr is configuration mechanism #1's address for register reg of
// device dev on bus 0, function 0.
func cfgAddr(dev int, reg int) []byte {
	return binary.LittleEndian.AppendUint32(nil, 1<<31|uint32(dev)<<11|uint32(reg))
}

// The VMM adds its functions before the guest runs; the guest then finds
// them through ports 0xCF8-0xCFF, sizes their BARs as the PCI spec has it
// (write all ones, read back the mask) and reaches the device at the BAR's
// address on the port bus.
func ExampleHost() {
	pio := bus.New("pio")
	host := pci.NewHost(pio)
	_ = pio.Register("pci", 0xCF8, 8, host)

	fn := &nic{cfg: pci.NewConfig(pci.Header{VendorID: 0x1AF4, DeviceID: 0x1000, Class: 0x020000})}
	_ = fn.cfg.AddIOBAR(0, 32)
	slot, err := host.Add(fn, 11)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("device %d, BAR0 at %#x, IRQ %d\n", slot.Device, slot.BARs[0], slot.IRQLine)

	// The guest's side, as its port accesses reach the bus.
	read32 := func(reg int) uint32 {
		pio.Write(0xCF8, cfgAddr(slot.Device, reg))
		b := make([]byte, 4)
		pio.Read(0xCFC, b)
		return binary.LittleEndian.Uint32(b)
	}
	write32 := func(reg int, v uint32) {
		pio.Write(0xCF8, cfgAddr(slot.Device, reg))
		pio.Write(0xCFC, binary.LittleEndian.AppendUint32(nil, v))
	}
	id := read32(pci.RegVendorID)
	fmt.Printf("vendor %#04x device %#04x\n", id&0xFFFF, id>>16)
	line := read32(pci.RegInterruptLine)
	fmt.Printf("interrupt line %d, pin %d (INTA)\n", line&0xFF, line>>8&0xFF)

	bar := read32(pci.RegBAR0)
	write32(pci.RegBAR0, 0xFFFFFFFF)
	mask := read32(pci.RegBAR0)
	write32(pci.RegBAR0, bar)
	fmt.Printf("BAR0 %#x, sizing reads %#x: I/O %v, %d bytes\n", bar, mask, mask&1 == 1, ^(mask&^3)+1)

	b := make([]byte, 1)
	pio.Read(uint64(bar&^3)+5, b)
	fmt.Println("register 5 reads", b[0])
	// Output:
	// device 1, BAR0 at 0xc000, IRQ 11
	// vendor 0x1af4 device 0x1000
	// interrupt line 11, pin 1 (INTA)
	// BAR0 0xc001, sizing reads 0xffffffe1: I/O true, 32 bytes
	// register 5 reads 5
}

// A guest may move a BAR; the host moves the device on the port bus and
// tells the VMM, which moves what it attached to the old address (an
// ioeventfd).
func ExampleHost_OnBARMove() {
	pio := bus.New("pio")
	host := pci.NewHost(pio)
	host.OnBARMove = func(fn pci.Function, bar int, old, new uint64) {
		fmt.Printf("BAR%d moved from %#x to %#x\n", bar, old, new)
	}
	fn := &nic{cfg: pci.NewConfig(pci.Header{VendorID: 0x1AF4, DeviceID: 0x1000})}
	_ = fn.cfg.AddIOBAR(0, 32)
	slot, _ := host.Add(fn, 11)

	// The guest writes 0xD000 to BAR0 through 0xCF8 and 0xCFC.
	host.Write(0, cfgAddr(slot.Device, pci.RegBAR0))
	host.Write(4, binary.LittleEndian.AppendUint32(nil, 0xD000))

	b := make([]byte, 1)
	fmt.Println("claimed at 0xd005:", pio.Read(0xD005, b), b[0])
	fmt.Println("claimed at 0xc005:", pio.Read(0xC005, b))
	// Output:
	// BAR0 moved from 0xc000 to 0xd000
	// claimed at 0xd005: true 5
	// claimed at 0xc005: false
}
