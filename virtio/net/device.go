package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	stdnet "net"
	"sync"
	"sync/atomic"

	"github.com/smolvmm/smolvmm/virtio"
)

// Feature bits of virtio-net offered by the device.
const (
	FeatureMAC    = 5
	FeatureStatus = 16
)

// Device parameters.
const (
	// QueueSize is the size of both queues (QEMU's default).
	QueueSize = 256
	// HeaderSize is the legacy virtio_net_hdr without num_buffers.
	HeaderSize = 10
	// RxQueue and TxQueue are the queue indices.
	RxQueue, TxQueue = 0, 1
	// StatusLinkUp is the config status bit for a connected link.
	StatusLinkUp = 1
	// rxHandoff is how many frames wait between the backend reader and the
	// worker; beyond it the reader stops reading and the backend queues.
	rxHandoff  = 64
	configSize = 8 // mac[6], status u16
)

// Stats are the device's counters.
type Stats struct {
	// RxFrames/RxBytes were delivered to the guest (bytes without header).
	RxFrames, RxBytes uint64
	// RxTooLong were dropped: longer than the guest's receive buffer.
	RxTooLong uint64
	// RxBadChains were receive chains without room for a header, returned
	// to the guest unused.
	RxBadChains uint64
	// TxFrames/TxBytes were sent to the backend.
	TxFrames, TxBytes uint64
	// TxBadChains were transmit chains without a header and a whole
	// Ethernet header, or longer than MaxFrameSize: not sent.
	TxBadChains uint64
	// TxErrors are frames the backend failed to send.
	TxErrors uint64
	// ReadErrors are failed backend reads other than its closing.
	ReadErrors uint64
}

// Device is a virtio-net device model. It implements virtio.Device (wrap it
// with virtio.NewPCIDevice), virtio.ChainHolder, virtio.Drainer and
// io.Closer.
type Device struct {
	backend Backend
	macMu   sync.Mutex // config accesses run under the transport's lock; MAC does not
	mac     [6]byte    // the card's address: what the guest reads, MAC
	// written is mac with the driver's writes since merged in; it becomes
	// mac whenever it is a NIC's address (see WriteConfig).
	written [6]byte

	// configChanged raises the transport's configuration-change
	// interrupt (SetConfigChanged's), or nil.
	configChanged atomic.Pointer[func()]
	// linkDown is set while a LinkBackend's link is down; status says
	// LINK_UP otherwise.
	linkDown atomic.Bool
	// status is set while the driver has STATUS negotiated (Activate),
	// and so is told when linkDown changes.
	status atomic.Bool

	kick   atomic.Pointer[func(int)]
	warn   atomic.Pointer[func(kind, msg string, args ...any)] // SetWarn's, or nil
	watch  atomic.Pointer[func([]byte)]                        // SetTransmitWatch's, or nil
	frames chan []byte                                         // backend reader -> worker
	done   chan struct{}                                       // closed by Close
	exited chan struct{}                                       // closed when the reader returns
	once   sync.Once

	tx       *txPipe       // worker -> backend writer
	txExited chan struct{} // closed when the writer returns

	// Worker-only state (Process, and Reset with the worker idle).
	pending []byte       // a frame waiting for a receive chain
	held    virtio.Chain // the receive chain being filled, or kept (holding)
	holding bool         // held waits for a frame that fits
	free    chan []byte  // recycled frame buffers
	seg     [][]byte

	rxFrames, rxBytes, rxTooLong, rxBad atomic.Uint64
	txFrames, txBytes, txBad, txErrors  atomic.Uint64
	readErrors                          atomic.Uint64
}

// New makes a virtio-net device with address mac (a NIC's: six bytes,
// neither multicast nor all zero) over backend, and starts
// the goroutines that read and write the backend. The device owns backend: Close
// closes it. Call SetKick with the transport's KickQueue once it exists, so
// that frames arriving from the backend wake the worker:
//
//	dev, _ := net.New(backend, mac)
//	pd, _ := virtio.NewPCIDevice(mem, dev, irq, nil)
//	dev.SetKick(pd.KickQueue)
func New(backend Backend, mac stdnet.HardwareAddr) (*Device, error) {
	if backend == nil {
		return nil, errors.New("virtio-net: no backend (a NIC without a network still needs one that drops frames, such as netback.NewNone)")
	}
	if err := checkNICAddr(mac); err != nil {
		return nil, fmt.Errorf("virtio-net: %w", err)
	}
	d := &Device{
		backend:  backend,
		frames:   make(chan []byte, rxHandoff),
		free:     make(chan []byte, rxHandoff+1),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		tx:       newTxPipe(),
		txExited: make(chan struct{}),
	}
	copy(d.mac[:], mac)
	d.written = d.mac
	if lb, ok := backend.(LinkBackend); ok {
		lb.SetLinkNotify(d.setLink)
	}
	go d.readBackend()
	go d.writeBackend()
	return d, nil
}

// SetKick gives the device the function that wakes the transport's worker
// for one queue (virtio.PCIDevice.KickQueue). Until it is set, received
// frames wait for the guest's next notify.
func (d *Device) SetKick(kick func(queue int)) {
	d.kick.Store(&kick)
}

// SetConfigChanged gives the device the function that raises the
// transport's configuration-change interrupt
// (virtio.PCIDevice.ConfigChanged): a LinkBackend's link going down or up
// then tells a driver that negotiated STATUS. Until it is set, the driver
// sees the change only when it next reads the status.
func (d *Device) SetConfigChanged(changed func()) {
	d.configChanged.Store(&changed)
}

// WatchesLink reports whether the driver watches the link: it negotiated
// STATUS, and reads the status again when told of a change. A restored
// guest's driver last saw the link of the snapshot's backend, and may
// think it down (NetBSD's vioif then sends nothing) until told, whatever
// backend the restored device has (a snapshot of a shared network's guest
// may be restored onto another network, whose link never changes): a
// machine restoring such a device raises its configuration-change
// interrupt, which costs a driver that saw the link up one read.
func (d *Device) WatchesLink() bool {
	return d.status.Load()
}

// setLink is a LinkBackend's notice that its link is up or down: the
// status changes, and a driver that watches it is told.
func (d *Device) setLink(up bool) {
	if d.linkDown.Swap(!up) == !up || !d.status.Load() {
		return
	}
	if f := d.configChanged.Load(); f != nil {
		(*f)()
	}
}

// SetTransmitWatch makes the device show each frame the guest transmits
// to watch (without its virtio header), on the worker goroutine, before the
// backend gets it: how a VMM sees what the guest sends whatever the backend
// (its answer on a forwarded port, say). watch must not keep the frame and
// should be quick: it holds back the guest's transmit queue. The device
// holds one watch: a call replaces the one set before, and nil removes
// it. (A vmm.Machine given vmm.Config.ReadyGuestPort sets its own watch
// while Run runs and removes it after, replacing the caller's.) A watch
// that panics is removed, its panic logged through SetWarn's function,
// and the guest's frames go on.
func (d *Device) SetTransmitWatch(watch func(frame []byte)) {
	if watch == nil {
		d.watch.Store(nil)
		return
	}
	d.watch.Store(&watch)
}

// MAC returns the address the guest currently sees in the configuration.
func (d *Device) MAC() stdnet.HardwareAddr {
	d.macMu.Lock()
	defer d.macMu.Unlock()
	return append(stdnet.HardwareAddr(nil), d.mac[:]...)
}

// Lost is how many frames were dropped or failed to move, plus the
// backend's failed reads: every counter but those of the frames and bytes
// moved. Non-zero, the guest lost traffic without being told why.
func (s Stats) Lost() uint64 {
	return s.RxTooLong + s.RxBadChains + s.TxBadChains + s.TxErrors + s.ReadErrors
}

// String gives the frames and bytes moved each way, then each non-zero
// loss counter.
func (s Stats) String() string {
	out := fmt.Sprintf("received %d frames (%d bytes), sent %d frames (%d bytes)", s.RxFrames, s.RxBytes, s.TxFrames, s.TxBytes)
	for _, c := range []struct {
		n    uint64
		what string
	}{
		{s.RxTooLong, "received frames dropped, too long for the guest's receive buffers"},
		{s.RxBadChains, "receive buffers returned unused, too small for the headers"},
		{s.TxBadChains, "frames not sent, malformed (no whole header, or too long)"},
		{s.TxErrors, "frames the backend failed to send"},
		{s.ReadErrors, "failed backend reads"},
	} {
		if c.n != 0 {
			out += fmt.Sprintf("; %d %s", c.n, c.what)
		}
	}
	return out
}

// SetWarn gives the device the transport's warning function
// (virtio.Warner): the first frame of each kind the device drops (too long
// for the guest's receive buffer, a malformed chain) and the backend's
// first failed send and read, with its error, are logged there; later
// ones are only counted (Stats).
func (d *Device) SetWarn(warn func(kind, msg string, args ...any)) {
	d.warn.Store(&warn)
}

// warnf reports kind through SetWarn's function, if any.
func (d *Device) warnf(kind, msg string, args ...any) {
	if w := d.warn.Load(); w != nil {
		(*w)(kind, msg, args...)
	}
}

// Backend is the backend the device was made over (New's).
func (d *Device) Backend() Backend { return d.backend }

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats {
	return Stats{
		RxFrames: d.rxFrames.Load(), RxBytes: d.rxBytes.Load(), RxTooLong: d.rxTooLong.Load(),
		RxBadChains: d.rxBad.Load(), TxFrames: d.txFrames.Load(), TxBytes: d.txBytes.Load(),
		TxBadChains: d.txBad.Load(), TxErrors: d.txErrors.Load(), ReadErrors: d.readErrors.Load(),
	}
}

// Type is virtio.TypeNet.
func (d *Device) Type() uint16 { return virtio.TypeNet }

// Features offers MAC, STATUS and INDIRECT_DESC.
func (d *Device) Features() uint32 {
	return virtio.Bit(FeatureMAC) | virtio.Bit(FeatureStatus) | virtio.Bit(virtio.FeatureIndirectDesc)
}

// QueueSizes is a receive and a transmit queue.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ConfigSize covers mac and status.
func (d *Device) ConfigSize() int { return configSize }

// ReadConfig serves mac[6] then status (LINK_UP, unless a LinkBackend's
// link is down).
func (d *Device) ReadConfig(off int, data []byte) {
	var c [configSize]byte
	d.macMu.Lock()
	copy(c[:6], d.mac[:])
	d.macMu.Unlock()
	if !d.linkDown.Load() {
		binary.LittleEndian.PutUint16(c[6:], StatusLinkUp)
	}
	copy(data, c[off:]) // the transport keeps the access inside configSize
}

// WriteConfig lets a legacy driver set the MAC (QEMU accepts it too);
// status is read-only. Like a card's station address register, the MAC
// holds a NIC's address only: the bytes written are merged into those the
// driver wrote before, and they become the card's address once they form
// one that is neither all zero nor multicast. Until then (for good, if the
// driver wants such an address) the card keeps its last one, which the
// driver reads back. A driver writing byte by byte (vioif) so reaches any
// NIC address, whatever it passes through. The card's address is what a
// snapshot records, and what the restored card must have: a zero address
// would read back from a snapshot as none recorded.
func (d *Device) WriteConfig(off int, data []byte) {
	d.macMu.Lock()
	defer d.macMu.Unlock()
	for i, b := range data {
		if o := off + i; o >= 0 && o < 6 {
			d.written[o] = b
		}
	}
	if checkNICAddr(d.written[:]) == nil {
		d.mac = d.written
	}
}

// Activate notes whether the driver negotiated STATUS, which decides
// whether a link's change is told to it (setLink); no negotiated feature
// changes how frames move.
func (d *Device) Activate(features uint32) {
	d.status.Store(features&virtio.Bit(FeatureStatus) != 0)
}

// Held reports the receive chain the device keeps for a frame that fits
// (virtio.ChainHolder): a snapshot offers it to the restored device
// again. The transport calls it while the worker is idle.
func (d *Device) Held(queue int) uint16 {
	if queue == RxQueue && d.holding {
		return 1
	}
	return 0
}

// DropHeld forgets the receive chain the device keeps, if queue is the
// receive queue (virtio.ChainHolder): the driver placed the queue anew, so
// the chain belongs to a ring that is gone. A frame waiting for a buffer
// is kept for the new ring.
func (d *Device) DropHeld(queue int) {
	if queue == RxQueue {
		d.holding, d.held = false, virtio.Chain{}
	}
}

// Reset forgets the receive chain the device was holding (it belongs to
// the old ring), and the features negotiated. A frame waiting for a
// buffer is kept for the new ring.
func (d *Device) Reset() {
	d.status.Store(false)
	d.DropHeld(RxQueue)
}

// Process serves queue 0 (deliver waiting frames) or 1 (send frames).
func (d *Device) Process(i int, q *virtio.Queue) error {
	switch i {
	case RxQueue:
		return d.processRx(q)
	case TxQueue:
		return d.processTx(q)
	}
	return nil
}

// Close stops the backend reader and writer and closes the backend (the
// frames still waiting for it are dropped: drain them first with Drain,
// as the transport's Quiesce does). Close the transport
// (virtio.PCIDevice.Close) instead: it stops the worker first and then
// calls this.
func (d *Device) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = d.backend.Close()
		<-d.exited
		<-d.txExited
	})
	return err
}
