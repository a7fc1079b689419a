package virtio

import (
	"errors"
	"fmt"
	"time"
)

// QueueState is where a queue's rings are and how far the device got.
type QueueState struct {
	// PFN is the guest page frame number (address / 4096) of the
	// queue's rings, as the driver wrote it; 0 is a queue not set up.
	PFN       uint32
	LastAvail uint16 // next available entry the device takes
	UsedIdx   uint16 // next used entry the device produces
}

// TransportState is a device's legacy virtio-pci registers and queues, for
// snapshots. The device model's own state is not in it: a disk's is its
// image, the requests in flight are none (see Quiesce; a Drainer's work
// that outlasted its drain bound is lost), a chain a ChainHolder keeps
// is recorded as not yet taken. A queue PFN held since a partial write
// (regs.go) has no place in it: take a snapshot only once Settled says
// none is held.
type TransportState struct {
	// Type is the device's virtio type (TypeNet, TypeBlock, ...); a
	// restore refuses state of another.
	Type uint16
	// Guest is the feature bits the driver accepted.
	Guest uint32
	// Status is the device status register (DRIVER_OK and the rest).
	Status uint8
	// ISR is the interrupt status bits pending, cleared by the
	// driver's read.
	ISR uint8
	// Sel is the queue select register: the queue the queue registers
	// address.
	Sel uint16
	// Asserted is the interrupt status: an interrupt is pending. INTx
	// is up while it is, unless the PCI command register (the PCI
	// host's state) disables INTx.
	Asserted bool
	// Broken says the device refused a corrupt ring and serves nothing
	// until the driver resets it (Broken, DEVICE_NEEDS_RESET).
	Broken bool
	// Queues is each queue's state, in queue order.
	Queues []QueueState
}

// ErrPFNHeld is wrapped by Settled's error: the driver is between the
// parts of a queue PFN write, and the part written is held (not yet a
// place for the rings), which a TransportState does not record.
var ErrPFNHeld = errors.New("queue PFN written in part, the rest not yet")

// Settled returns nil unless the device holds a queue PFN the driver
// wrote only in part (regs.go); then an error wrapping ErrPFNHeld that
// names the queue and the value. A snapshot is to be taken only when
// every device is settled: the driver's next part, written after a
// restore, would merge with the rings' last place instead. The driver
// writes the rest with its next instructions, so a VMM lets the vCPU run
// on a little and asks again.
func (d *PCIDevice) Settled() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.drafting {
		return nil
	}
	return fmt.Errorf("virtio type %d: queue %d: PFN %#x: %w", d.dev.Type(), d.sel, d.pfnDraft, ErrPFNHeld)
}

// quiesceDrain bounds Quiesce's wait for a Drainer's work.
const quiesceDrain = 100 * time.Millisecond

// Quiesce waits for the request the device is serving, if any, and keeps
// it from starting another until resume is called: guest memory and the
// queues then stay as they are while a snapshot is taken. A Drainer is
// then drained, for at most 100 ms: work it still holds after that (a
// network card's frames for a network that takes none) is missing from
// the snapshot, and done by the running device after resume only.
// Requests the guest makes meanwhile stay in its available ring, and are
// served after resume (or after a restore, once started: Start).
func (d *PCIDevice) Quiesce() (resume func()) {
	d.workMu.Lock()
	if dr, ok := d.dev.(Drainer); ok {
		dr.Drain(quiesceDrain)
	}
	return d.workMu.Unlock
}

// Drainer is a Device that finishes work on a goroutine of its own after
// giving its chains back (virtio-net writes the frames it took to its
// backend so): the guest counts that work as done, so Quiesce waits for
// it before a snapshot. Drain is called only while the worker is idle.
type Drainer interface {
	// Drain waits until the work handed out before it is done, or until
	// timeout has passed; false in the latter case, the work then left
	// to go on.
	Drain(timeout time.Duration) bool
}

// ChainHolder is a Device that may keep chains it took from a queue
// without giving them back (virtio-net keeps a receive chain across a
// frame too long for it, for the next one). Both methods are called only
// while the worker is idle (quiesced, or under a register write).
type ChainHolder interface {
	// Held returns how many of queue i's chains the device keeps: the
	// last it took, none given back since.
	Held(queue int) uint16
	// DropHeld forgets the chains of queue i the device keeps. The
	// transport calls it whenever it places the queue anew (a PFN write,
	// or a restore), since the ring they came from, and its indices, are
	// gone; Reset drops those of every queue.
	DropHeld(queue int)
}

// State returns the transport's state; call it while quiesced. A queue
// whose chains the device holds (ChainHolder) is recorded that many
// entries back: they are still in the guest's available ring, so the
// restored device, which holds nothing, takes them again instead of
// losing them. Every queue is so recorded with as many chains taken as
// used: quiesced, a device holds no request in flight, and a broken
// device, which may have taken a chain it failed to give back, serves
// nothing until a reset, which restarts both indices at 0.
func (d *PCIDevice) State() TransportState {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := TransportState{Type: d.dev.Type(), Guest: d.guest, Status: d.status, ISR: d.isr, Sel: d.sel,
		Asserted: d.asserted, Broken: d.broken}
	holder, _ := d.dev.(ChainHolder)
	for i, q := range d.queues {
		last := q.lastAvail
		if holder != nil {
			last -= holder.Held(i)
		}
		if d.broken {
			last = q.usedIdx
		}
		s.Queues = append(s.Queues, QueueState{PFN: q.pfn, LastAvail: last, UsedIdx: q.usedIdx})
	}
	return s
}

// Restore sets the state of a device of the same type and queue count,
// before its guest runs, and drives its INTx line as the state says.
// Restore the PCI host first: the line follows the command register it
// restores. A state no guest could have brought the device to is refused
// (see CheckState), and a refused one changes nothing.
//
// The restored device serves nothing until Start: a machine's restore
// may still fail after its devices' (the interrupt controllers, a
// network card's address), and must then have written no disk and sent
// no frame; nor may a device raise its line before the machine's
// interrupt controllers are restored, which would drop it. Every queue
// of a live device is marked pending meanwhile, and so are kicks that
// come (a backend's received frame): Start serves them, the requests the
// guest queued before the snapshot included; a configuration change
// (ConfigChanged) sets its ISR bit, and Start raises the line for it.
func (d *PCIDevice) Restore(s TransportState) error {
	if err := d.CheckState(s); err != nil {
		return err
	}
	d.workMu.Lock()
	defer d.workMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, qs := range s.Queues {
		q := d.queues[i]
		if err := d.place(i, qs.PFN); err != nil {
			// CheckState placed the rings already: not reached.
			return fmt.Errorf("virtio type %d: queue %d: %w", s.Type, i, err)
		}
		q.lastAvail, q.usedIdx = qs.LastAvail, qs.UsedIdx
	}
	d.guest, d.status, d.isr, d.sel, d.broken, d.drafting = s.Guest, s.Status, s.ISR, s.Sel, s.Broken, false
	d.held = true
	d.setQueueFeatures()
	d.asserted = s.Asserted
	d.cfg.SetStatusBit(pciStatusInterrupt, s.Asserted)
	// As the command register restored before says (command.go).
	d.level = d.lineWanted()
	d.irq.Set(d.level)
	if d.status&StatusDriverOK != 0 {
		d.dev.Activate(d.guest)
		if !d.broken {
			d.pending.Or(d.allQueues())
		}
	}
	return nil
}

// Start lets a restored device serve its queues: those Restore marked
// pending, and every kick since, are served at once (once bus mastering
// is on), and its line is raised for an interrupt that came meanwhile
// (ConfigChanged). A machine calls it when the restore has wholly
// succeeded and its interrupt controllers are restored, just before its
// guest runs. A device not restored serves from NewPCIDevice
// on, and Start does nothing to it; nor does a second call.
func (d *PCIDevice) Start() {
	d.mu.Lock()
	d.held = false
	d.setLine() // for a configuration change while held (ConfigChanged)
	d.mu.Unlock()
	// serve keeps kicks in pending under mu while held: past the unlock,
	// every one of them is there to be seen.
	if d.pending.Load() != 0 {
		d.wake()
	}
}

// Hold keeps the device from serving its queues from now on, as a
// restored device is until Start: kicks are kept, and the requests in the
// guest's rings stay there. A machine that stops with a snapshot calls it
// while quiesced, before resume: what the guest queued that the device
// had not taken is then served only by the devices restored from the
// snapshot, once, not also by the one stopping (a disk would write its
// image under the snapshot, a network card send frames the restored
// guests send again). Work a Drainer still holds goes on: the guest was
// given it back as done, and the snapshot records it so.
func (d *PCIDevice) Hold() {
	d.mu.Lock()
	d.held = true
	d.mu.Unlock()
}

// CheckState refuses s, changing nothing, unless this
// device's guest could have brought it there through its registers and
// queues: the same device and queues, offered features, rings wholly in
// memory (as a PFN write checks them), ISR bits the transport raises with
// the line up exactly while one is set, a broken device that says so, and
// queue indices that restart at 0 with the rings and are equal, as State
// records them. Restore calls it first; a machine calls it for every
// device before it restores any.
func (d *PCIDevice) CheckState(s TransportState) error {
	if s.Type != d.dev.Type() {
		return fmt.Errorf("virtio: snapshot device type %d, this one is type %d", s.Type, d.dev.Type())
	}
	if len(s.Queues) != len(d.queues) {
		return fmt.Errorf("virtio type %d: snapshot has %d queues, the device %d", s.Type, len(s.Queues), len(d.queues))
	}
	if s.Guest&^d.host != 0 {
		return fmt.Errorf("virtio type %d: snapshot's driver features %#x are not all offered (%#x)", s.Type, s.Guest, d.host)
	}
	if s.ISR&^(ISRQueue|ISRConfig) != 0 {
		return fmt.Errorf("virtio type %d: ISR %#x: only bits %#x exist", s.Type, s.ISR, ISRQueue|ISRConfig)
	}
	if s.Asserted != (s.ISR != 0) {
		what := "asserted"
		if !s.Asserted {
			what = "not asserted"
		}
		return fmt.Errorf("virtio type %d: interrupt %s with ISR %#x: the line is up exactly while ISR is not 0", s.Type, what, s.ISR)
	}
	if s.Broken && s.Status&StatusNeedsReset == 0 {
		return fmt.Errorf("virtio type %d: broken with status %#x, which lacks DEVICE_NEEDS_RESET (%#x)", s.Type, s.Status, StatusNeedsReset)
	}
	for i, qs := range s.Queues {
		q := d.queues[i]
		if qs.PFN == 0 {
			if qs.LastAvail != 0 || qs.UsedIdx != 0 {
				return fmt.Errorf("virtio type %d: queue %d: last_avail %d, used idx %d without rings (PFN 0): both restart at 0 when the rings are placed",
					s.Type, i, qs.LastAvail, qs.UsedIdx)
			}
			continue
		}
		if err := q.checkPFN(qs.PFN); err != nil {
			return fmt.Errorf("virtio type %d: queue %d: %w", s.Type, i, err)
		}
		// State records no chain taken and not used: a restored device
		// would never complete one, since its request is not in the
		// snapshot.
		if qs.LastAvail != qs.UsedIdx {
			return fmt.Errorf("virtio type %d: queue %d: last_avail %d is %d entries past used idx %d; a snapshot records every chain taken as used or not yet taken",
				s.Type, i, qs.LastAvail, qs.LastAvail-qs.UsedIdx, qs.UsedIdx)
		}
	}
	return nil
}

// ConfigChanged raises the configuration-change interrupt (ISR bit 1), as
// a device does when its configuration space changed under a live driver,
// which then reads again what it watches there. It does nothing before the
// driver is ready (DRIVER_OK) or while the device is broken. A restored
// device not yet started sets the bit but raises its line only at Start,
// after the machine's interrupt controllers are restored.
func (d *PCIDevice) ConfigChanged() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.status&StatusDriverOK != 0 && !d.broken {
		d.raise(ISRConfig)
	}
}
