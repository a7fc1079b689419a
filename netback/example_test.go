package netback_test

import (
	"errors"
	"fmt"
	"net"

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
	fmt.Println("guest", netback.UserGuest, "gateway", netback.UserGateway, "dns", netback.UserDNS)
	// Output:
	// guest 10.0.2.15 gateway 10.0.2.2 dns 10.0.2.3
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
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	u, err := netback.NewUser(mac, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer u.Close()
	// Set as vmm.Config.SnapshotNetwork, asked at each snapshot.
	record := netback.SnapshotNetwork("user", u)
	n := record()
	fmt.Println(n.Kind == snapshot.NetUser, n.Addr)
	// Output:
	// true 10.0.2.15
}
