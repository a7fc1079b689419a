package net_test

import (
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
)

// A NIC on the user network would use netback.Open("user", forwards, mac);
// "none" keeps the example free of sockets.
func ExampleNew() {
	mac := vnet.DefaultMAC("/var/lib/smolvmm/web.img")
	backend, err := netback.Open("none", nil, mac)
	if err != nil {
		fmt.Println(err)
		return
	}
	dev, err := vnet.New(backend, mac)
	if err != nil {
		fmt.Println(err)
		return
	}
	mem := guestmem.New(make([]byte, 1<<20))
	pd, err := virtio.NewPCIDevice(mem, dev, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	dev.SetKick(pd.KickQueue) // frames from the backend wake the worker
	defer pd.Close()          // stops the worker, then closes dev and the backend
	fmt.Printf("type %d, features %#x, MAC %s\n", dev.Type(), dev.Features(), dev.MAC())
	// Output:
	// type 1, features 0x10010020, MAC 52:54:00:5e:52:84
}
