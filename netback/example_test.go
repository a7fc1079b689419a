package netback_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
)

func ExampleOpen() {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	b, err := netback.Open("none", nil, mac)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.WriteFrame(make([]byte, 60)))
	b.Close()
	_, err = b.ReadFrame(make([]byte, netback.MaxFrameSize))
	fmt.Println(errors.Is(err, netback.ErrClosed))

	fwd, _ := netback.ParseForward("8080:80")
	_, err = netback.Open("tap:tap0", []netback.Forward{fwd}, mac)
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// network "tap:tap0": port forwards need the user network
}

func ExampleNewUser() {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	u, err := netback.NewUser(mac, nil) // add forwards to reach guest ports
	if err != nil {
		fmt.Println(err)
		return
	}
	defer u.Close()
	// The guest's DHCP discover, as its first frame: the network's DHCP
	// server offers it its address, router and nameserver.
	disc, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := u.WriteFrame(udpBroadcast(mac, 68, 67, disc.ToBytes())); err != nil {
		fmt.Println(err)
		return
	}
	offer, err := readDHCPReply(u, disc.TransactionID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(offer.MessageType(), "guest", offer.YourIPAddr, "gateway", offer.Router(), "dns", offer.DNS())
	// Output:
	// OFFER guest 10.0.2.15 gateway [10.0.2.2] dns [10.0.2.3]
}

// readDHCPReply reads b's frames until the DHCP reply of transaction
// xid, for at most 10 s (then b is closed).
func readDHCPReply(b netback.Backend, xid dhcpv4.TransactionID) (*dhcpv4.DHCPv4, error) {
	timer := time.AfterFunc(10*time.Second, func() { b.Close() })
	defer timer.Stop()
	buf := make([]byte, netback.MaxFrameSize)
	for {
		n, err := b.ReadFrame(buf)
		if err != nil {
			return nil, fmt.Errorf("no DHCP reply: %w", err)
		}
		f := buf[:n]
		// IPv4 (no options), UDP, to the client's port 68.
		if n <= 42 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 || binary.BigEndian.Uint16(f[36:]) != 68 {
			continue
		}
		if r, err := dhcpv4.FromBytes(f[42:]); err == nil && r.TransactionID == xid {
			return r, nil
		}
	}
}

func ExampleLateBackend() {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	spec := "none" // a shared network's, user:NAME, in use
	l := netback.NewLateBackend(func() (netback.Backend, error) {
		return netback.Open(spec, nil, mac)
	})
	defer l.Close()
	// Give l to the card (virtio/net.New) and restore the machine
	// (vmm.Restore); the network is joined only once that succeeded.
	b, err := l.Join()
	fmt.Println(b != nil, err)
	// Output:
	// true <nil>
}

func ExampleSnapshotNetwork() {
	// A shared network, as a hub runs it.
	dir, err := os.MkdirTemp("", "net")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "net.sock")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	spec := "user:" + h.Socket()

	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	l := netback.NewLateBackend(func() (netback.Backend, error) {
		return netback.Open(spec, nil, mac)
	})
	defer l.Close()
	// Set as vmm.Config.SnapshotNetwork, asked at each snapshot: the
	// network, and the address the hub leased the VM once it joined.
	record := netback.SnapshotNetwork(spec, l)
	before := record()
	if _, err := l.Join(); err != nil {
		fmt.Println(err)
		return
	}
	after := record()
	fmt.Println(before.Kind == snapshot.NetShared, before.Name == h.Socket(), before.Addr)
	fmt.Println(after.Kind == snapshot.NetShared, after.Name == h.Socket(), after.Addr)
	// Output:
	// true true invalid IP
	// true true 10.0.2.15
}
