package vmm

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/internal/termsafe"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/virtio"
)

// pciIRQs are the lines PCI devices get, in order, as a PC BIOS would
// route them: none is used by an ISA device (NetBSD refuses to share an
// edge-triggered ISA line with a level-triggered PCI handler).
var pciIRQs = []uint8{10, 11, 5, 9}

// virtioSlot is a virtio device on the PCI bus with the eventfd KVM signals
// when the guest writes its queue-notify register.
type virtioSlot struct {
	dev    *virtio.PCIDevice
	efd    int      // for the ioctls: file.Fd() would make the fd blocking
	file   *os.File // efd in Go's poller, so Close wakes the reader
	notify uint64   // port of the notify register the ioeventfd watches
	done   chan struct{}
	line   uint8
	irq    *bus.SharedIRQ // the line, wired-OR with the other slots on it
	// listening: the ioeventfd is assigned at notify (not while BAR0 is
	// undecoded). moveFailed: a move of it failed and was logged.
	listening, moveFailed bool
}

// addVirtio places dev on the PCI bus with the next interrupt line, sets
// that line level-triggered, and serves its queue notifications from an
// ioeventfd so that guest kicks never run device code on the vCPU thread.
// Its warnings name it as what (a disk's "ld1"), at its PCI slot, with
// detail after (" (disk image x.img)", or ""). Once it returns a non-nil
// transport, the machine owns it (and dev) even when it also returns an
// error; with a nil transport dev is still the caller's.
func (m *Machine) addVirtio(dev virtio.Device, what, detail string) (*virtio.PCIDevice, error) {
	line := pciIRQs[len(m.virtio)%len(pciIRQs)]
	irq := m.sharedLine(line)
	log := &deviceLog{m: m, name: new(atomic.Pointer[string])}
	log.setName(what + detail)
	pd, err := virtio.NewPCIDevice(m.gmem, dev, irq.Input(), slog.New(log))
	if err != nil {
		return nil, err
	}
	s := &virtioSlot{dev: pd, efd: -1, done: make(chan struct{}), line: line, irq: irq}
	n := len(m.virtio)
	pd.SetOnFault(func(err error) { m.deviceFault(n, err) }) // memfile.go
	m.virtio = append(m.virtio, s)
	slot, err := m.pci.Add(pd, line)
	if err != nil {
		return pd, err
	}
	log.setName(fmt.Sprintf("%s at PCI 00:%02x.0%s", what, slot.Device, detail))
	if err := setLevelTriggered(m.vmFD, []uint8{line}); err != nil {
		return pd, &Error{Op: "set ELCR", Err: err}
	}
	if err := s.listen(m.vmFD, slot.BARs[0]+virtio.NotifyOffset); err != nil {
		return pd, &Error{Op: fmt.Sprintf("ioeventfd for PCI device %d", slot.Device), Err: err}
	}
	return pd, nil
}

// startDevices lets restored virtio devices serve the requests their
// guest queued before the snapshot (virtio.PCIDevice.Start; a booted
// machine's serve from the start). It runs as the vCPU first runs, not
// at the end of Restore: by then every step of the restore that can fail
// has succeeded (a failed one must have written no disk and sent no
// frame), and KVM_SET_IRQCHIP has set the interrupt controllers, which
// would drop a line a device raised before it while the device keeps
// it up, the guest never interrupted. A machine restored and closed
// without running, or whose BeforeRun failed, so serves nothing.
func (m *Machine) startDevices() {
	for _, s := range m.virtio {
		s.dev.Start()
	}
}

// sharedLine returns the line the virtio devices on IRQ line share (a
// fifth device shares the first one's): KVM keeps one level per line for
// all of userspace, so the devices' INTx must be ORed before it.
func (m *Machine) sharedLine(line uint8) *bus.SharedIRQ {
	for _, s := range m.virtio {
		if s.line == line {
			return s.irq
		}
	}
	return bus.NewSharedIRQ(kvmIRQ{m.vmFD, uint32(line)})
}

func (s *virtioSlot) listen(vmFD uintptr, port uint64) error {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if err := setIOEventFD(vmFD, port, virtio.NotifySize, efd, false); err != nil {
		unix.Close(efd)
		return err
	}
	s.efd, s.notify, s.listening = efd, port, true
	s.file = os.NewFile(uintptr(efd), "ioeventfd")
	go s.serve()
	return nil
}

// serve serves the device on each eventfd wake-up, on this goroutine (not
// the vCPU's, and without a second hand-off to the device's worker), until
// the eventfd is closed.
func (s *virtioSlot) serve() {
	defer close(s.done)
	var buf [8]byte
	for {
		n, err := s.file.Read(buf[:])
		if err != nil || n != 8 {
			return
		}
		if binary.LittleEndian.Uint64(buf[:]) > 0 {
			s.dev.Serve()
		}
	}
}

// moveNotify follows a guest that moved BAR0 (NetBSD never does; other
// guests may). A BAR moved over another device (new is pci.NoAddress)
// decodes nothing, so its ioeventfd goes too: left behind, it would take
// the notifications of a device later placed there.
func (m *Machine) moveNotify(fn pci.Function, bar int, old, new uint64) {
	if bar != 0 {
		return
	}
	for _, s := range m.virtio {
		if pci.Function(s.dev) != fn || s.efd < 0 {
			continue
		}
		if s.listening {
			_ = setIOEventFD(m.vmFD, s.notify, virtio.NotifySize, s.efd, true)
			s.listening = false
		}
		if new == pci.NoAddress {
			continue
		}
		s.notify = new + virtio.NotifyOffset
		if err := setIOEventFD(m.vmFD, s.notify, virtio.NotifySize, s.efd, false); err != nil {
			// Notifications then reach the register through the port
			// bus, which kicks the worker too: slower, still correct.
			// Said once: the guest may move the BAR in a loop.
			if !s.moveFailed {
				s.moveFailed = true
				m.logf("cannot move ioeventfd to %#x: %v", s.notify, err)
			}
			continue
		}
		s.listening = true
	}
}

func (s *virtioSlot) close(vmFD uintptr) error {
	if s.efd >= 0 {
		if s.listening {
			_ = setIOEventFD(vmFD, s.notify, virtio.NotifySize, s.efd, true)
		}
		s.file.Close()
		<-s.done
		s.efd = -1
	}
	return s.dev.Close()
}

// virtioName is how warnings name a device of Config.Devices, by its
// virtio type.
func virtioName(typ uint16) string {
	switch typ {
	case 1:
		return "virtio-net"
	case 2:
		return "virtio-blk"
	}
	return fmt.Sprintf("virtio type %d", typ)
}

// deviceLog is a virtio device's logger: its warnings are lines of the
// machine's own messages to Config.Log ("smolvmm: NAME: message (key=value,
// ...)"), written through the same lock so lines never interleave, naming
// the device as the guest and the user know it.
type deviceLog struct {
	m      *Machine
	name   *atomic.Pointer[string] // set again once the PCI slot is known
	attrs  []slog.Attr             // WithAttrs's, keys with their groups
	prefix string                  // WithGroup's, "group."
}

func (h *deviceLog) setName(n string) { h.name.Store(&n) }

// Enabled passes warnings and errors: device information is not logged.
func (h *deviceLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle writes r as one line. The transport's virtio_type is left out:
// the device's name says it.
func (h *deviceLog) Handle(_ context.Context, r slog.Record) error {
	var args []string
	add := func(a slog.Attr) {
		if a.Key == "virtio_type" || a.Equal(slog.Attr{}) {
			return
		}
		args = append(args, termsafe.Line(a.Key)+"="+termsafe.Line(a.Value.Resolve().String()))
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		a.Key = h.prefix + a.Key
		add(a)
		return true
	})
	// The name carries a disk image's path, and values a device's or
	// host's error text: each is made inert on a terminal, escaping the
	// control characters slog's text handler quoted.
	line := "smolvmm: " + termsafe.Line(*h.name.Load()) + ": " + termsafe.Line(r.Message)
	if len(args) > 0 {
		line += " (" + strings.Join(args, ", ") + ")"
	}
	_, err := machineLog{h.m}.Write([]byte(line + "\n"))
	return err
}

// WithAttrs returns h with attrs added to every line.
func (h *deviceLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		a.Key = h.prefix + a.Key
		c.attrs = append(c.attrs, a)
	}
	return &c
}

// WithGroup returns h with later keys under name.
func (h *deviceLog) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}
