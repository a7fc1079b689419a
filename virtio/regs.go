package virtio

import (
	"encoding/binary"
	"fmt"
)

// legacyRegs is BAR0 of a PCIDevice: the legacy register block followed by
// the device configuration. An access is dispatched by the offset it
// starts at, as QEMU's legacy port does: one that starts on a register
// covers that register, the bytes past its width ignored (read as 0), so
// a 32-bit write at the notify register kicks a queue and leaves status
// alone, and a 32-bit read there does not clear the ISR. One that starts
// inside a register reaches only that register's bytes, merged with the
// rest of its value, so a driver that reads or writes a 32-bit register
// as two 16-bit halves gets what it expects. An access that starts in the
// device configuration reaches only the configuration.
//
// A queue PFN written in parts (16-bit halves, bytes, in any order) is
// applied at each write, as the value the write makes with the bytes
// before it, whenever that value places the rings wholly in memory (or is
// 0): a driver that writes only the low half of a PFN below 65536 is then
// served, and so is one that writes the high half first. A part that
// makes a value whose rings would not lie in memory (the low half of a
// PFN above 256 MiB alone may name the VGA hole) is held instead: the
// register reads it back, the rings stay where they were, and the next
// part applies the merged value. Only a write that covers the whole
// register is the driver's final word: an invalid one breaks the device at
// once, as it always did. A held value still invalid when the driver sets
// DRIVER_OK breaks the device then (writeStatus); a notify before
// DRIVER_OK is dropped anyway. Selecting another queue, a reset or a
// restore drops the held value; a snapshot waits until none is held
// (Settled).
type legacyRegs PCIDevice

// register is one legacy register's place in the block.
type register struct{ off, width uint64 }

// registers cover every offset below RegConfig.
var registers = []register{
	{RegHostFeatures, 4}, {RegGuestFeatures, 4}, {RegQueuePFN, 4}, {RegQueueSize, 2},
	{RegQueueSelect, 2}, {RegQueueNotify, 2}, {RegStatus, 1}, {RegISR, 1},
}

// registerAt returns the register holding offset off (off < RegConfig)
// and the end of an access of n bytes at off clipped to it.
func registerAt(off uint64, n int) (register, uint64) {
	for _, reg := range registers {
		if off >= reg.off && off < reg.off+reg.width {
			return reg, min(off+uint64(n), reg.off+reg.width)
		}
	}
	panic(fmt.Sprintf("virtio: no legacy register at offset %d", off)) // registers cover 0 to RegConfig
}

// Read serves a guest read of BAR0. Reading the ISR byte clears it and
// deasserts the interrupt line.
func (r *legacyRegs) Read(off uint64, data []byte) {
	d := (*PCIDevice)(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(data)
	if off >= RegConfig {
		if at, part := d.configPart(off, data); len(part) > 0 {
			d.dev.ReadConfig(at, part)
		}
		return
	}
	reg, end := registerAt(off, len(data))
	img := d.image()
	if reg.off == RegISR {
		img[RegISR] = d.readISR()
	}
	copy(data, img[off:end])
}

// Write serves a guest write of BAR0. A write at the notify register
// only kicks the worker (no lock, no I/O on the vCPU thread); other writes
// take the worker lock so they never race a request in flight.
func (r *legacyRegs) Write(off uint64, data []byte) {
	d := (*PCIDevice)(r)
	if off == RegQueueNotify && len(data) >= NotifySize {
		d.KickQueue(int(binary.LittleEndian.Uint16(data)))
		return
	}
	d.workMu.Lock()
	defer d.workMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if off >= RegConfig {
		if at, part := d.configPart(off, data); len(part) > 0 {
			d.dev.WriteConfig(at, part)
		}
		return
	}
	reg, end := registerAt(off, len(data))
	// Merge the written bytes into the register's current value, so
	// partial writes change only the bytes they cover.
	var cur [4]byte
	img := d.image()
	copy(cur[:reg.width], img[reg.off:])
	copy(cur[off-reg.off:], data[:end-off])
	v := binary.LittleEndian.Uint32(cur[:])
	if reg.off == RegQueuePFN {
		whole := off == reg.off && end == reg.off+reg.width
		if !whole && d.holdPFN(v) {
			return
		}
		d.drafting = false
	}
	d.apply(reg.off, v)
}

// holdPFN holds v, the selected queue's PFN as a partial write made it,
// and reports true, when v is not yet a place for the rings: not 0 and
// not wholly in memory. A live device's PFN is never held: any change
// to it breaks the device (apply). Caller holds workMu and mu.
func (d *PCIDevice) holdPFN(v uint32) bool {
	q := d.selected()
	if q == nil || d.status&StatusDriverOK != 0 || v == 0 || q.checkPFN(v) == nil {
		return false
	}
	d.pfnDraft, d.drafting = v, true
	return true
}

// applyHeldPFN places the selected queue at the PFN held since a partial
// write, which the driver left not wholly in memory: the device is
// broken, as by a whole write of it. Caller holds workMu and mu.
func (d *PCIDevice) applyHeldPFN() {
	if !d.drafting {
		return
	}
	d.drafting = false
	if err := d.place(int(d.sel), d.pfnDraft); err != nil {
		d.markBroken("pfn", fmt.Errorf("queue %d PFN left half written at DRIVER_OK: %w", d.sel, err))
	}
}

// configPart returns the part of an access of data at off that falls in
// the device configuration, and its offset there (empty: none of it).
func (d *PCIDevice) configPart(off uint64, data []byte) (int, []byte) {
	start := max(off, RegConfig)
	end := min(off+uint64(len(data)), RegConfig+uint64(d.dev.ConfigSize()))
	if end <= start {
		return 0, nil
	}
	return int(start - RegConfig), data[start-off : end-off]
}

// image is the register block as the driver reads it, but for the ISR,
// which a read clears. Caller holds mu.
func (d *PCIDevice) image() (img [RegConfig]byte) {
	le := binary.LittleEndian
	le.PutUint32(img[RegHostFeatures:], d.host)
	le.PutUint32(img[RegGuestFeatures:], d.guest)
	if q := d.selected(); q != nil {
		le.PutUint32(img[RegQueuePFN:], q.PFN())
		if d.drafting {
			le.PutUint32(img[RegQueuePFN:], d.pfnDraft)
		}
		le.PutUint16(img[RegQueueSize:], q.Size())
	}
	le.PutUint16(img[RegQueueSelect:], d.sel)
	img[RegStatus] = d.status
	return img
}

// selected returns the queue the select register names, or nil.
// Caller holds mu.
func (d *PCIDevice) selected() *Queue {
	if int(d.sel) < len(d.queues) {
		return d.queues[d.sel]
	}
	return nil
}

// apply performs a register write. Caller holds workMu and mu.
func (d *PCIDevice) apply(reg uint64, v uint32) {
	live := d.status&StatusDriverOK != 0
	switch reg {
	case RegGuestFeatures:
		if live {
			d.warnOnce("features-live", "virtio: guest features written after DRIVER_OK; ignored")
			return
		}
		d.guest = v & d.host
		d.setQueueFeatures()
	case RegQueuePFN:
		q := d.selected()
		if q == nil {
			d.warnOnce("pfn-noqueue", "virtio: queue PFN written for a queue that does not exist; ignored", "queue", d.sel)
			return
		}
		if live {
			if v != q.PFN() {
				d.markBroken("pfn-live", fmt.Errorf("%w: queue %d: PFN %#x rewritten to %#x while DRIVER_OK", ErrRing, d.sel, q.PFN(), v))
			}
			return
		}
		if err := d.place(int(d.sel), v); err != nil {
			d.markBroken("pfn", err)
		}
	case RegQueueSelect:
		if uint16(v) != d.sel {
			d.drafting = false // the part written was the other queue's
		}
		d.sel = uint16(v)
	case RegQueueNotify:
		d.KickQueue(int(uint16(v)))
	case RegStatus:
		d.writeStatus(uint8(v))
	}
}

// setQueueFeatures gives every queue the features now agreed (d.guest,
// always a subset of those offered). Caller holds workMu and mu.
func (d *PCIDevice) setQueueFeatures() {
	for _, q := range d.queues {
		q.SetFeatures(d.guest)
	}
}

// place places queue i's rings at pfn (see Queue.SetPFN), first making
// the device drop the chains it holds from the queue's old rings: kept,
// they would be filled and pushed into the new ring by indices it never
// gave out. Caller holds workMu and mu.
func (d *PCIDevice) place(i int, pfn uint32) error {
	if h, ok := d.dev.(ChainHolder); ok {
		h.DropHeld(i)
	}
	return d.queues[i].SetPFN(pfn)
}

// writeStatus stores the status the driver wrote (it reads back), resets
// on 0 and activates the device on DRIVER_OK. Caller holds workMu and mu.
func (d *PCIDevice) writeStatus(v uint8) {
	if v == 0 {
		d.reset()
		return
	}
	if v&StatusDriverOK != 0 {
		d.applyHeldPFN()
	}
	if d.broken {
		v |= StatusNeedsReset
	}
	wasLive := d.status&StatusDriverOK != 0
	d.status = v
	d.enableBusMasterFor(v) // command.go
	if !wasLive && v&StatusDriverOK != 0 && !d.broken {
		d.dev.Activate(d.guest)
		// The driver may have made buffers available before DRIVER_OK.
		d.Kick()
	}
}
