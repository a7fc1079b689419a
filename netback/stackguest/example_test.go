package stackguest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// A netstack guest on the user network reaches a host service through the
// gateway, as a VM's guest would.
func ExampleNew() {
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()
	go func() {
		c, err := host.Accept()
		if err == nil {
			io.WriteString(c, "hello from the host")
			c.Close()
		}
	}()

	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	u, err := netback.NewUser(mac, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: mac,
		Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close() // closes u too

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := uint16(host.Addr().(*net.TCPAddr).Port)
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg, _ := io.ReadAll(c)
	fmt.Println(string(msg))
	// Output:
	// hello from the host
}
