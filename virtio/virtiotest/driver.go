package virtiotest

import (
	"encoding/binary"
	"fmt"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/virtio"
)

// Driver drives a legacy transport's BAR0 registers like a guest driver.
type Driver struct {
	Regs bus.Device // the transport's BAR0 registers
}

// Read8 reads a byte register.
func (d Driver) Read8(off uint64) uint8 {
	var b [1]byte
	d.Regs.Read(off, b[:])
	return b[0]
}

// Read16 reads a 16-bit register.
func (d Driver) Read16(off uint64) uint16 {
	var b [2]byte
	d.Regs.Read(off, b[:])
	return binary.LittleEndian.Uint16(b[:])
}

// Read32 reads a 32-bit register.
func (d Driver) Read32(off uint64) uint32 {
	var b [4]byte
	d.Regs.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// Write8 writes a byte register.
func (d Driver) Write8(off uint64, v uint8) { d.Regs.Write(off, []byte{v}) }

// Write16 writes a 16-bit register.
func (d Driver) Write16(off uint64, v uint16) {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	d.Regs.Write(off, b[:])
}

// Write32 writes a 32-bit register.
func (d Driver) Write32(off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	d.Regs.Write(off, b[:])
}

// Status reads the device status.
func (d Driver) Status() uint8 { return d.Read8(virtio.RegStatus) }

// SetStatus ORs bits into the status, the way NetBSD's
// virtio_set_status does (read, or, write).
func (d Driver) SetStatus(bits uint8) {
	if bits == 0 {
		d.Write8(virtio.RegStatus, 0)
		return
	}
	d.Write8(virtio.RegStatus, d.Status()|bits)
}

// ISR reads (and so clears) the ISR.
func (d Driver) ISR() uint8 { return d.Read8(virtio.RegISR) }

// Notify writes queue index q to the notify register.
func (d Driver) Notify(q uint16) { d.Write16(virtio.RegQueueNotify, q) }

// QueueSize selects queue q and reads its size.
func (d Driver) QueueSize(q uint16) uint16 {
	d.Write16(virtio.RegQueueSelect, q)
	return d.Read16(virtio.RegQueueSize)
}

// SetQueue selects queue q and writes its PFN.
func (d Driver) SetQueue(q uint16, pfn uint32) {
	d.Write16(virtio.RegQueueSelect, q)
	d.Write32(virtio.RegQueuePFN, pfn)
}

// Negotiate writes want & host features and returns them.
func (d Driver) Negotiate(want uint32) uint32 {
	f := d.Read32(virtio.RegHostFeatures) & want
	d.Write32(virtio.RegGuestFeatures, f)
	return f
}

// Attach brings the device up in NetBSD 9's attach order: reset, ACK,
// DRIVER, features, queues (select, size, PFN), DRIVER_OK. pfns gives one
// PFN per queue. It returns the negotiated features.
func (d Driver) Attach(want uint32, pfns []uint32) (uint32, error) {
	d.SetStatus(0)
	d.SetStatus(virtio.StatusAcknowledge)
	d.SetStatus(virtio.StatusDriver)
	f := d.Negotiate(want)
	if err := d.setQueues(pfns); err != nil {
		return 0, err
	}
	d.SetStatus(virtio.StatusDriverOK)
	return f, nil
}

// Reinit brings the device up in vioif's re-init order (`ifconfig up`):
// reset, ACK, DRIVER, queue PFNs, then features, then DRIVER_OK.
func (d Driver) Reinit(want uint32, pfns []uint32) (uint32, error) {
	d.SetStatus(0)
	d.SetStatus(virtio.StatusAcknowledge)
	d.SetStatus(virtio.StatusDriver)
	if err := d.setQueues(pfns); err != nil {
		return 0, err
	}
	f := d.Negotiate(want)
	d.SetStatus(virtio.StatusDriverOK)
	return f, nil
}

func (d Driver) setQueues(pfns []uint32) error {
	for i, pfn := range pfns {
		if d.QueueSize(uint16(i)) == 0 {
			return fmt.Errorf("queue %d: size 0 (no such queue)", i)
		}
		d.SetQueue(uint16(i), pfn)
	}
	return nil
}
