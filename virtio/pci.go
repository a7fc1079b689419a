package virtio

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/pci"
)

// Legacy register offsets in BAR0.
const (
	RegHostFeatures  = 0
	RegGuestFeatures = 4
	RegQueuePFN      = 8
	RegQueueSize     = 12
	RegQueueSelect   = 14
	RegQueueNotify   = 16
	RegStatus        = 18
	RegISR           = 19
	RegConfig        = 20 // device configuration (no MSI-X)
)

// NotifyOffset and NotifySize locate the queue notify register in BAR0,
// where the VMM registers an ioeventfd (the 16-bit value written is the
// queue index; use it as datamatch, or match any value and call Kick).
const (
	NotifyOffset = RegQueueNotify
	NotifySize   = 2
)

// VendorID is the virtio PCI vendor; DeviceIDBase + type - 1 is a legacy
// (transitional) device ID, which NetBSD 9 matches with revision 0.
const (
	VendorID     = 0x1AF4
	DeviceIDBase = 0x1000
)

// MaxType is the highest device type the legacy transport presents: its
// device ID, DeviceIDBase + type - 1, is 0x103F, the last of the legacy
// (transitional) IDs.
const MaxType = 0x40

// ErrInvalidDevice is wrapped by NewPCIDevice's refusal of a Device the
// legacy transport cannot present: a type outside 1 to MaxType, no
// queue or more than 32, a queue size that is no power of two from 1 to
// 32768, a configuration space larger than the register block holds, or
// EVENT_IDX offered.
var ErrInvalidDevice = errors.New("invalid virtio device")

// invalidDevice is a refusal of NewPCIDevice: its message is the fact
// alone, and errors.Is finds ErrInvalidDevice.
type invalidDevice struct{ err error }

func (e invalidDevice) Error() string        { return e.err.Error() }
func (e invalidDevice) Unwrap() error        { return e.err }
func (e invalidDevice) Is(target error) bool { return target == ErrInvalidDevice }

// invalid is an invalidDevice of a device of type typ, saying what is
// wrong.
func invalid(typ uint16, format string, args ...any) error {
	return invalidDevice{fmt.Errorf("virtio type %d: "+format, append([]any{typ}, args...)...)}
}

// PCI status register bit 3: an INTx interrupt is pending.
const pciStatusInterrupt = 1 << 3

// PCIDevice is a device behind the legacy virtio-pci transport: a PCI
// function (config space plus an I/O BAR0 with the legacy registers) and
// the worker goroutine that serves its queues. It implements pci.Function.
type PCIDevice struct {
	onFault atomic.Pointer[func(error)] // SetOnFault's
	mem     *guestmem.Memory            // for telling a fault on it from a device bug
	dev     Device
	cfg     *pci.Config
	irq     bus.IRQ
	log     *slog.Logger
	queues  []*Queue
	host    uint32 // features offered
	bar     uint32 // BAR0 size

	// workMu is held by the worker while it serves queues and by register
	// writes that change queue or device state (taken before mu), so a
	// reset or a PFN write never races a request in flight.
	workMu sync.Mutex
	// mu guards the registers below.
	mu       sync.Mutex
	guest    uint32
	status   uint8
	isr      uint8
	sel      uint16
	asserted bool // interrupt status: an interrupt is pending
	level    bool // INTx as driven: asserted, unless disabled (command.go)
	broken   bool
	// held: restored and not yet started (Start), or held after an exit
	// snapshot (Hold); kicks are kept in pending, served once started.
	held bool

	warnMu sync.Mutex // guards warned; taken inside mu, never around it
	warned map[string]bool

	// pfnDraft is the selected queue's PFN as a partial write left it,
	// while drafting: a value not yet wholly in memory, held (regs.go).
	pfnDraft uint32
	drafting bool

	pending atomic.Uint32 // queues kicked and not yet served
	kick    chan struct{}
	done    chan struct{}
	exited  chan struct{}
	closer  sync.Once
}

// NewPCIDevice wraps dev in the legacy transport over guest memory mem,
// driving irq (level-triggered INTx, e.g. a KVM_IRQ_LINE on 5, 9, 10 or
// 11) and logging to log (nil: slog.Default()). It starts the worker
// goroutine; Close stops it. log's handler may be called holding the
// device's locks (a device marked broken warns under them), which a
// vCPU's next access to its registers waits for: it must not block, nor
// call into the device (package vmm's hands the line to a goroutine of
// its own).
func NewPCIDevice(mem *guestmem.Memory, dev Device, irq bus.IRQ, log *slog.Logger) (*PCIDevice, error) {
	if log == nil {
		log = slog.Default()
	}
	if irq == nil {
		irq = bus.NoIRQ{}
	}
	typ := dev.Type()
	if typ == 0 || typ > MaxType {
		// Its device ID would be no legacy virtio one (type 0 and
		// 0xFFFF wrap the 16 bits): the guest would match no driver.
		return nil, invalid(typ, "must be 1 to %d (legacy PCI device IDs %#x to %#x)", MaxType, DeviceIDBase, DeviceIDBase+MaxType-1)
	}
	sizes := dev.QueueSizes()
	if len(sizes) == 0 || len(sizes) > 32 {
		return nil, invalid(typ, "%d queues: must be 1 to 32", len(sizes))
	}
	if dev.Features()&Bit(FeatureEventIdx) != 0 {
		return nil, invalid(typ, "feature EVENT_IDX offered but not implemented")
	}
	n := RegConfig + dev.ConfigSize()
	if dev.ConfigSize() < 0 || n > 256 {
		return nil, invalid(typ, "config size %d: must be 0 to %d", dev.ConfigSize(), 256-RegConfig)
	}
	d := &PCIDevice{mem: mem, dev: dev, irq: irq, log: log, host: dev.Features(), warned: map[string]bool{},
		kick: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	for i, s := range sizes {
		q, err := NewQueue(mem, s)
		if err != nil {
			return nil, invalid(typ, "queue %d: %w", i, err)
		}
		d.queues = append(d.queues, q)
	}
	d.bar = 32
	for d.bar < uint32(n) {
		d.bar *= 2
	}
	d.cfg = pci.NewConfig(pci.Header{
		VendorID: VendorID, DeviceID: DeviceIDBase + typ - 1, Revision: 0,
		Class: classOf(typ), SubsystemVendorID: VendorID, SubsystemID: typ,
	})
	if err := d.cfg.AddIOBAR(0, d.bar); err != nil {
		return nil, fmt.Errorf("virtio type %d: %w", typ, err)
	}
	if w, ok := dev.(Warner); ok {
		w.SetWarn(func(kind, msg string, args ...any) { d.warnOnce("device:"+kind, msg, args...) })
	}
	go d.work()
	return d, nil
}

func classOf(typ uint16) uint32 {
	switch typ {
	case TypeNet:
		return 0x020000 // network, Ethernet
	case TypeBlock:
		return 0x010000 // mass storage, SCSI (what QEMU reports)
	}
	return 0xFF0000 // unassigned class
}

// PCIConfig returns the function's configuration space.
func (d *PCIDevice) PCIConfig() *pci.Config { return d.cfg }

// BARDevice returns the legacy register block for BAR 0, nil otherwise.
func (d *PCIDevice) BARDevice(i int) bus.Device {
	if i == 0 {
		return (*legacyRegs)(d)
	}
	return nil
}

// BARSize is the size of the I/O BAR0 (legacy registers plus device
// configuration, rounded up to a power of two).
func (d *PCIDevice) BARSize() uint32 { return d.bar }

// Device returns the device model behind the transport.
func (d *PCIDevice) Device() Device { return d.dev }

// Status returns the device status register (for tests and diagnostics).
func (d *PCIDevice) Status() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Broken reports whether the device refused a corrupt ring and waits for a
// reset.
func (d *PCIDevice) Broken() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.broken
}

// warnOnce logs msg the first time kind happens on this device, so a guest
// cannot flood the log. Any goroutine may call it, holding mu or not.
func (d *PCIDevice) warnOnce(kind, msg string, args ...any) {
	d.warnMu.Lock()
	defer d.warnMu.Unlock()
	if d.warned[kind] {
		return
	}
	d.warned[kind] = true
	d.log.Warn(msg, append([]any{"virtio_type", d.dev.Type()}, args...)...)
}

// markBroken sets DEVICE_NEEDS_RESET and stops serving until reset.
// Caller holds mu (and, serving, workMu): its warning reaches the log
// handler under them (see NewPCIDevice).
func (d *PCIDevice) markBroken(kind string, err error) {
	if d.broken {
		return
	}
	d.broken = true
	d.status |= StatusNeedsReset
	args := []any{"reason", err}
	if p := (*PanicError)(nil); errors.As(err, &p) {
		args = append(args, "stack", string(p.Stack))
	}
	d.warnOnce("broken:"+kind, "virtio: device needs reset; refusing to serve it", args...)
	if d.status&StatusDriverOK != 0 {
		d.raise(ISRConfig)
	}
}

// raise sets ISR bits and asserts the level-triggered line (unless the
// guest disabled INTx). Caller holds mu.
func (d *PCIDevice) raise(bits uint8) {
	d.isr |= bits
	if !d.asserted {
		d.asserted = true
		d.cfg.SetStatusBit(pciStatusInterrupt, true)
	}
	d.setLine()
}

// readISR returns and clears the ISR, deasserting the line. Caller holds mu.
func (d *PCIDevice) readISR() uint8 {
	v := d.isr
	d.isr = 0
	if d.asserted {
		d.asserted = false
		d.cfg.SetStatusBit(pciStatusInterrupt, false)
	}
	d.setLine()
	return v
}

// reset is the driver writing 0 to status. Caller holds workMu and mu.
func (d *PCIDevice) reset() {
	d.dev.Reset()
	for _, q := range d.queues {
		q.Reset()
	}
	d.guest, d.status, d.sel, d.broken, d.drafting = 0, 0, 0, false, false
	d.setQueueFeatures()
	d.readISR()
}
