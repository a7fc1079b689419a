package vmm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// nopDevice is a bus device that claims nothing of note.
type nopDevice struct{}

func (nopDevice) Read(uint64, []byte)  {}
func (nopDevice) Write(uint64, []byte) {}

// TestBusRefusesUnreachable: PortBus and MMIOBus refuse a range the
// guest can never reach there (ErrConfig, saying what is in the way):
// past the 16-bit port space, ports and MMIO KVM serves itself (PIC, PIT,
// I/O APIC, local APIC, its TSS pages), guest RAM, past 52-bit physical
// addresses. They used to accept them, the device then never called.
// The VGA window and addresses above RAM are the guest's to reach.
func TestBusRefusesUnreachable(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, tt := range []struct {
		name       string
		mmio       bool
		base, size uint64
		want       string // in the error; "" when accepted
	}{
		{"port past 0xFFFF", false, 0x10000, 1, "past the 16-bit port space"},
		{"port running past 0xFFFF", false, 0xFFFF, 2, "past the 16-bit port space"},
		{"port 0xFFFF", false, 0xFFFF, 1, ""},
		{"PIT", false, 0x40, 4, "KVM's PIT"},
		{"PIC master", false, 0x20, 1, "KVM's PIC"},
		{"PIC slave", false, 0x9F, 2, "KVM's PIC"},
		{"ELCR", false, 0x4D0, 2, "KVM's PIC"},
		{"speaker", false, 0x61, 1, "KVM's PIT"},
		{"free port", false, 0x300, 8, ""},
		{"low RAM", true, 0x1000, 0x1000, "guest RAM"},
		{"into RAM from the VGA window", true, 0xBF000, 0x2000, "guest RAM"},
		{"high RAM", true, 0x100000, 0x1000, "guest RAM"},
		{"VGA window", true, 0xB8000, 0x1000, ""},
		{"above RAM", true, 0x10000000, 0x1000, ""},
		{"I/O APIC", true, 0xFEC00000, 0x1000, "KVM's I/O APIC"},
		{"local APIC", true, 0xFEE00000, 0x10, "KVM's local APIC"},
		{"KVM's TSS", true, 0xFFFBD000, 0x1000, "KVM's"},
		{"past 52 bits", true, 1 << 52, 0x1000, "past the 52-bit physical address space"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.mmio {
				err = m.MMIOBus().Register(tt.name, tt.base, tt.size, nopDevice{})
			} else {
				err = m.PortBus().Register(tt.name, tt.base, tt.size, nopDevice{})
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Register [%#x, %#x): %v; want it accepted", tt.base, tt.base+tt.size, err)
			case tt.want != "" && (!errors.Is(err, vmm.ErrConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Register [%#x, %#x): %v; want ErrConfig, with %q", tt.base, tt.base+tt.size, err, tt.want)
			}
		})
	}
	// A caller takes off only what it put on: the machine's COM1 stays.
	if m.PortBus().Unregister(vmm.PortCOM1) {
		t.Error("Unregister took the machine's COM1 off the bus")
	}
	if !m.PortBus().Unregister(0x300) {
		t.Error("Unregister did not take the caller's device at 0x300 off the bus")
	}
}
