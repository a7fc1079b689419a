package virtio

import "github.com/smolvmm/smolvmm/pci"

// The transport honours the PCI command register as a real function does
// (it is a pci.CommandWatcher):
//
//   - Interrupt Disable (bit 10): while it is set, INTx stays low. The ISR
//     and the status register's interrupt status bit still say an
//     interrupt is pending, and the line rises when the guest clears the
//     bit with one pending (PCI 2.3, 6.2.2 and 6.2.3).
//   - Bus Master (bit 2): while it is clear, the device reaches no guest
//     memory, so it serves no queue. Notifications (a restored device's
//     queues once started, a network card's received frames) are kept, and served once the guest
//     sets the bit; the device is not reset and its status is kept (QEMU
//     clears DRIVER_OK instead, losing them). Clearing the bit waits for
//     the request in flight, so that once the guest's write is done the
//     device touches nothing. A driver that writes ACKNOWLEDGE|DRIVER to
//     the status gets the bit set, as QEMU's legacy virtio does it: old
//     Linux drivers drive the device without setting it.
//   - I/O Space (bit 0): the pci.Host takes BAR0 off the port bus while it
//     is clear (reads float to all ones, writes vanish) and reports it
//     gone, so the VMM takes the notify register's ioeventfd away too.
//
// A restore brings the command register back with the pci.Host, which
// tells the device; Restore here drives the line as the restored register
// says, and Start then serves the queues as it says.

// CommandChanged follows the guest's (or a restore's) change of the
// command register from old to new: the INTx line and bus mastering.
func (d *PCIDevice) CommandChanged(old, new uint16) {
	if old&pci.CommandBusMaster != 0 && new&pci.CommandBusMaster == 0 {
		// serve checks the bit under workMu: past this, none serves.
		d.workMu.Lock()
		d.workMu.Unlock()
	}
	d.mu.Lock()
	d.setLine()
	d.mu.Unlock()
	if new&pci.CommandBusMaster != 0 && d.pending.Load() != 0 {
		d.wake()
	}
}

// busMaster reports whether the guest lets the device reach its memory.
func (d *PCIDevice) busMaster() bool { return d.cfg.Command()&pci.CommandBusMaster != 0 }

// holdKicks keeps the queues in kicked to be served once the guest sets
// Bus Master. It may have set it since serve looked: CommandChanged then
// found nothing pending, so the worker is woken here.
func (d *PCIDevice) holdKicks(kicked uint32) {
	d.pending.Or(kicked)
	if d.busMaster() {
		d.wake()
	}
}

// enableBusMasterFor sets Bus Master for a driver that writes status v
// of ACKNOWLEDGE|DRIVER (see above). Caller holds mu.
func (d *PCIDevice) enableBusMasterFor(v uint8) {
	if v == StatusAcknowledge|StatusDriver {
		d.cfg.EnableBusMaster()
	}
}

// lineWanted is the INTx level: up while an interrupt is pending and not
// disabled. Caller holds mu.
func (d *PCIDevice) lineWanted() bool {
	return d.asserted && d.cfg.Command()&pci.CommandIntxOff == 0
}

// setLine drives INTx to lineWanted when it is not there, but not while
// the device is held (restored, not started): the machine restores its
// interrupt controllers after its devices, which would drop the line, and
// a shared line passes on only changes; Start drives it. Caller holds mu.
func (d *PCIDevice) setLine() {
	if d.held {
		return
	}
	if up := d.lineWanted(); up != d.level {
		d.level = up
		d.irq.Set(up)
	}
}
