package devices

import (
	"sync"

	"github.com/smolvmm/smolvmm/bus"
)

// ExitKind says why a system control port ended the VM.
type ExitKind int

// The ways a guest asks to leave.
const (
	ExitReset     ExitKind = iota + 1 // a reset request (keyboard controller, 0xCF9, port 0x92)
	ExitDebugPort                     // a write to the debug-exit port
)

// ExitFunc receives a guest's request to end the VM. code is the debug-exit
// value for ExitDebugPort.
type ExitFunc func(kind ExitKind, code uint32)

// KeyboardController is the reset half of the 8042 at ports 0x60-0x64:
// command 0xFE (pulse the reset line) written to 0x64 resets the machine.
// There is no keyboard, so reads return all ones, as from an absent
// controller, which makes NetBSD's pckbc probe give up. Exit, if set, is
// told of the reset.
type KeyboardController struct{ Exit ExitFunc }

// Read returns all ones.
func (k *KeyboardController) Read(_ uint64, data []byte) { bus.Float(data) }

// Write resets on command 0xFE at port 0x64 (offset 4).
func (k *KeyboardController) Write(off uint64, data []byte) {
	if off == 4 && len(data) > 0 && data[0] == 0xFE && k.Exit != nil {
		k.Exit(ExitReset, 0)
	}
}

// ResetControl is the PIIX reset control register at 0xCF9: setting the
// reset bit (0x04) resets the machine.
type ResetControl struct {
	mu   sync.Mutex
	v    uint8
	Exit ExitFunc // told of the reset, if set
}

// Read returns the last value written.
func (r *ResetControl) Read(_ uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		data[i] = r.v
	}
}

// Write latches the value and resets when bit 2 is set.
func (r *ResetControl) Write(_ uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	r.mu.Lock()
	r.v = data[0] & 0x0E
	reset := data[0]&0x04 != 0
	r.mu.Unlock()
	if reset && r.Exit != nil {
		r.Exit(ExitReset, 0)
	}
}

// FastA20 is system control port A at 0x92: bit 1 is A20 (always on under
// KVM), bit 0 is a fast reset. Exit, if set, is told of the reset.
type FastA20 struct{ Exit ExitFunc }

// Read reports A20 enabled.
func (f *FastA20) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0x02
	}
}

// Write resets when bit 0 is set.
func (f *FastA20) Write(_ uint64, data []byte) {
	if len(data) > 0 && data[0]&0x01 != 0 && f.Exit != nil {
		f.Exit(ExitReset, 0)
	}
}

// DebugExit is QEMU's isa-debug-exit device (0x501 on smolvmm): writing v
// ends the VM with exit status (v<<1)|1, so a test guest runs unchanged under
// QEMU with `-device isa-debug-exit,iobase=0x501,iosize=2`. Any write ends
// it, whatever its offset: the machine registers it clipped, so that a
// write starting in its ports and running past them reaches it too, as
// in QEMU. Exit, if set, is told of the end and the value.
type DebugExit struct{ Exit ExitFunc }

// Read returns all ones.
func (d *DebugExit) Read(_ uint64, data []byte) { bus.Float(data) }

// Write ends the VM with the value written.
func (d *DebugExit) Write(_ uint64, data []byte) {
	var v uint32
	for i, b := range data {
		v |= uint32(b) << (8 * i)
	}
	if d.Exit != nil {
		d.Exit(ExitDebugPort, v)
	}
}

// BootTimer is a port a guest writes to say "my service is ready", so boot
// time can be measured without parsing the console (Firecracker has the
// same idea as an MMIO address). Any write calls Ready; reads return 0.
type BootTimer struct{ Ready func() }

// Read returns zero.
func (b *BootTimer) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
}

// Write reports readiness.
func (b *BootTimer) Write(uint64, []byte) {
	if b.Ready != nil {
		b.Ready()
	}
}
