package vmm

import (
	"errors"
	"fmt"
	"net"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
)

// macDevice is a network card: a virtio device with an Ethernet address
// in its configuration space (virtio/net's Device).
type macDevice interface {
	MAC() net.HardwareAddr
}

// RestoreOption changes how Restore rebuilds a machine.
type RestoreOption func(*restoreOptions)

type restoreOptions struct {
	mac             net.HardwareAddr
	skipMemoryCheck bool
	prepared        *PreparedRestore
}

// SkipMemoryCheck makes Restore (and PrepareRestore) leave the snapshot's
// memory section unchecked. By default a restore reads the pages the
// file holds (not its holes, the zero pages) and checks them against the
// memory digest the snapshot recorded, refusing a mismatch (an error
// wrapping snapshot.ErrCorrupt) before the machine is restored; the
// memory is still mapped copy-on-write, the check reads the file. It
// costs next to nothing for a mostly empty guest (0.04-0.2 ms for the
// demo guest's 128 MiB, 48 KiB of it data) and ~55-80 ms per 256 MiB of
// data.
// Skipping it saves that time, but a damaged page then reaches the guest
// as it is, when the guest touches it.
func SkipMemoryCheck() RestoreOption {
	return func(o *restoreOptions) { o.skipMemoryCheck = true }
}

// WithMAC makes the restored machine a clone with another network card
// address: the first network card in Config.Devices must have mac (its
// backend then answers for mac: the user network leases the guest's
// address to it), and the guest's driver, if live, gets a configuration
// change interrupt. A guest's driver reads the address once, when it
// attaches (NetBSD's vioif does), so the guest goes on sending from the
// snapshot's address until it is told the new one (NetBSD: ifconfig
// vioif0 link MAC active) or reboots; then it must renew its DHCP lease,
// since the user network leases the guest's address to mac alone.
// Without WithMAC, Restore refuses a card whose address is not the
// snapshot's (ErrMACChanged). With several cards, WithMAC gives the first
// its address; each other card must still have the address its slot had
// in the snapshot (else ErrMACChanged, Field Devices): a clone's guest
// would go on sending from it.
func WithMAC(mac net.HardwareAddr) RestoreOption {
	return func(o *restoreOptions) { o.mac = append(net.HardwareAddr(nil), mac...) }
}

// ErrMACChanged is wrapped by a restore whose network card, any of them,
// has another address than the snapshot's card in its slot (without
// WithMAC, or a card after the first), or than WithMAC's (the first).
var ErrMACChanged = errors.New("the network card's address is not the one the restore expects")

// checkMAC validates WithMAC's address: a NIC's (six bytes, neither
// multicast nor all zero).
func checkMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("address %q has %d bytes, an Ethernet address 6: %w", mac, len(mac), ErrConfig)
	case mac[0]&1 != 0:
		return fmt.Errorf("address %s is a multicast address, which cannot be a network card's: %w", mac, ErrConfig)
	case mac.String() == "00:00:00:00:00:00":
		return fmt.Errorf("the all-zero address cannot be a network card's: %w", ErrConfig)
	}
	return nil
}

// restoreMAC checks each network card's address against the one its
// slot had in the snapshot (the first card's against WithMAC's instead,
// when given), and signals a clone's new address to the guest's driver.
// It runs once the machine's state is restored.
func (m *Machine) restoreMAC(st *machineState, o restoreOptions) error {
	nic := m.firstNIC()
	if nic < 0 && o.mac != nil {
		return &Error{Op: "restore", Field: "WithMAC", Err: fmt.Errorf("address %s for a network card, but the machine has none: %w", o.mac, ErrConfig)}
	}
	changed := false
	for i, s := range m.virtio {
		d, ok := s.dev.Device().(macDevice)
		if !ok {
			continue
		}
		clone := i == nic && o.mac != nil
		op := fmt.Sprintf("restore: network card (virtio device %d)", i)
		has := d.MAC()
		var had net.HardwareAddr
		if i < len(st.MACs) && st.MACs[i] != "" {
			var err error
			if had, err = net.ParseMAC(st.MACs[i]); err != nil {
				return &Error{Op: op, Err: fmt.Errorf("snapshot's address %q: %w: %w", st.MACs[i], snapshot.ErrCorrupt, err)}
			}
		}
		switch {
		case clone && has.String() != o.mac.String():
			return &Error{Op: op, Field: "WithMAC", Err: fmt.Errorf("%w: the card has %s, the clone's address is %s", ErrMACChanged, has, o.mac),
				Hint: "give the card the clone's address"}
		case clone:
			// Told once every card is accepted.
			changed = had.String() != o.mac.String()
		case had != nil && has.String() != had.String() && i == nic:
			return &Error{Op: op, Field: "WithMAC", Err: fmt.Errorf("%w: the card has %s, the snapshot's guest %s", ErrMACChanged, has, had),
				Hint: "give the card the snapshot's address, or restore a clone with another address (WithMAC)"}
		case had != nil && has.String() != had.String():
			// WithMAC gives one address, the first card's: the others'
			// guest drivers still send from the snapshot's.
			return &Error{Op: op, Field: "Devices", Err: fmt.Errorf("%w: the card has %s, the snapshot's guest %s", ErrMACChanged, has, had),
				Hint: "give the card the snapshot's address (WithMAC changes the first network card's alone)"}
		}
	}
	if changed {
		m.virtio[nic].dev.ConfigChanged()
	}
	return nil
}

// firstNIC is the virtio slot of the machine's first network card, -1
// when it has none.
func (m *Machine) firstNIC() int {
	for i, s := range m.virtio {
		if _, ok := s.dev.Device().(macDevice); ok {
			return i
		}
	}
	return -1
}

// linkWatcher is a network card whose driver watches its link
// (virtio/net's WatchesLink).
type linkWatcher interface{ WatchesLink() bool }

// tellLinks raises the configuration-change interrupt of each restored
// card whose driver watches the link, whatever its backend: the driver
// last saw the snapshot's link, perhaps down (a shared network's, its
// daemon gone), and reads the status again only when told (NetBSD's vioif
// sends nothing while it thinks the link down); the restored card's
// backend (the built-in user network, a tap) may be one whose link never
// changes. The transport raises it only for a driver that set DRIVER_OK.
// It runs once the machine's state, its interrupt controllers included,
// is restored; a card restoreMAC signalled already keeps the same single
// interrupt (the ISR bit and the level line are set once).
func (m *Machine) tellLinks() {
	for _, s := range m.virtio {
		if w, ok := s.dev.Device().(linkWatcher); ok && w.WatchesLink() {
			s.dev.ConfigChanged()
		}
	}
}

// SnapshotMAC returns the address of the first network card of the
// snapshot's machine as its guest last saw it, or nil when the machine
// had no network card (or the guest's address was not recorded). A card's
// address is never all zero, which would read as none recorded: its
// driver cannot set one (virtio/net's WriteConfig).
func SnapshotMAC(path string) (net.HardwareAddr, error) {
	_, mac, err := SnapshotNIC(path)
	return mac, err
}

// SnapshotNIC reports whether the snapshot's machine had a network card
// (a restore needs the same devices), and returns the first one's address
// as SnapshotMAC does. It reads the snapshot's header alone, which is
// verified with the state only when the snapshot is restored: Restore
// refuses a snapshot whose header and state differ on either (an error
// wrapping snapshot.ErrCorrupt), so a restore given what SnapshotNIC said
// of a damaged file is refused, not run with another card.
func SnapshotNIC(path string) (has bool, mac net.HardwareAddr, err error) {
	// The header, not the state: reading, digesting and decoding the
	// state here, and again in Restore, cost a restore ~0.4 ms before
	// its VM was begun.
	f, err := snapshot.OpenHeader(path)
	if err != nil {
		return false, nil, err
	}
	defer f.Close()
	nic := f.Header.NIC
	if nic.MAC != ([6]byte{}) {
		mac = net.HardwareAddr(nic.MAC[:])
	}
	return nic.Present, mac, nil
}

// nicOf is what st says of the machine's network card (any device of the
// network type; the first recorded address), as a snapshot's header
// records it.
func nicOf(st *machineState) (snapshot.NIC, error) {
	var nic snapshot.NIC
	for _, v := range st.Virtio {
		nic.Present = nic.Present || v.Type == virtio.TypeNet
	}
	for _, s := range st.MACs {
		if s == "" {
			continue
		}
		mac, err := net.ParseMAC(s)
		if err != nil {
			return nic, fmt.Errorf("network card address %q: %w: %w", s, snapshot.ErrCorrupt, err)
		}
		// ParseMAC also takes 8- and 20-byte (EUI-64, InfiniBand) addresses.
		if len(mac) != len(nic.MAC) {
			return nic, fmt.Errorf("network card address %q: %w: %d bytes, not an Ethernet address's %d", s, snapshot.ErrCorrupt, len(mac), len(nic.MAC))
		}
		copy(nic.MAC[:], mac)
		break
	}
	return nic, nil
}

// checkHeaderNIC refuses a snapshot whose header says another thing of
// its network card than its state: a restore's network was chosen from
// the header (SnapshotNIC).
func checkHeaderNIC(h snapshot.Header, st *machineState) error {
	nic, err := nicOf(st)
	if err != nil {
		return err
	}
	if nic != h.NIC {
		return fmt.Errorf("%w: the header says network card %t, address %x; the state %t, %x", snapshot.ErrCorrupt, h.NIC.Present, h.NIC.MAC, nic.Present, nic.MAC)
	}
	return nil
}

// SnapshotDisks returns the disk images the snapshot's machine had, as it
// saw them (a restore without Config.Disks opens these).
func SnapshotDisks(path string) ([]DiskIdentity, error) {
	f, err := snapshot.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The disks are in the state's fields part.
	var st machineState
	j, _, err := stateFields(f.State)
	if err == nil {
		err = decodeFields(j, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: state section: %w: %w", path, snapshot.ErrCorrupt, err)
	}
	return st.Disks, nil
}
