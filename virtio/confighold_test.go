package virtio_test

import (
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// A configuration change (a network backend's link notice, on its own
// goroutine) that comes to a restored device before Start sets its ISR
// bit but leaves the line alone: the machine's interrupt controllers are
// restored after its devices and would drop it (KVM_SET_IRQCHIP), and a
// shared line forwards only changes, so a later raise would not drive it
// again. Start drives it. Before, ConfigChanged drove the line at once:
// after the controllers' restore the guest was never interrupted, never
// read the ISR, and the shared line stayed stuck.
func TestConfigChangedWhileHeld(t *testing.T) {
	tests := []struct {
		name string
		isr  uint8 // the snapshot's ISR: the line up at the snapshot unless 0
	}{
		{"line down at the snapshot", 0},
		{"line up at the snapshot", virtio.ISRQueue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, memSize))
			dev := newFakeDev()
			dev.sizes = []uint16{16}
			pd, drv := stateRig(t, mem, dev)
			if _, err := drv.Attach(0, []uint32{1}); err != nil {
				t.Fatal(err)
			}
			drv.ISR()
			s := pd.State()
			s.ISR, s.Asserted = tt.isr, tt.isr != 0

			irq := virtiotest.NewIRQ()
			dev2 := newFakeDev()
			dev2.sizes = []uint16{16}
			pd2, err := virtio.NewPCIDevice(mem, dev2, irq, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pd2.Close()
			pd2.PCIConfig().EnableBusMaster()
			if err := pd2.Restore(s); err != nil {
				t.Fatal(err)
			}
			restored := irq.Levels()
			pd2.ConfigChanged()
			pd2.ConfigChanged() // a second notice changes nothing more
			if got := irq.Levels(); !slices.Equal(got, restored) {
				t.Fatalf("line driven %v after Restore, %v once held and told of a change; want no change before Start", restored, got)
			}
			// The machine restores its interrupt controllers here, to
			// the line the snapshot had, and then starts its devices.
			pd2.Start()
			if !irq.Level() {
				t.Fatalf("line low after Start with a configuration change pending (levels %v)", irq.Levels())
			}
			if got, want := drv2(pd2).ISR(), tt.isr|virtio.ISRConfig; got != want {
				t.Errorf("ISR %#x, want %#x", got, want)
			}
			if irq.Level() {
				t.Errorf("line up after the ISR was read (levels %v)", irq.Levels())
			}
		})
	}
}

// drv2 is a driver of pd's registers.
func drv2(pd *virtio.PCIDevice) virtiotest.Driver { return virtiotest.Driver{Regs: pd.BARDevice(0)} }
