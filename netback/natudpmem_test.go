package netback_test

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// A UDP flow that carried one datagram holds no datagram buffer while it
// waits out its idle time: a guest opening its whole bound of flows (a
// datagram each to as many ports) costs the host a few KiB each, not the
// 128 KiB of two 64 KiB buffers.
func TestNATUDPFlowMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector grows the heap")
	}
	const flows = 256
	mac := testMAC(9)
	u, err := netback.NewUser(mac, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: mac, Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netback.UserGateway})
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	defer g.Close()
	port := echoUDP(t)
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	for i := range flows {
		// Each from a port of its own: a flow each.
		c, err := gonet.DialUDP(g.Stack, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{10, 0, 2, 15}), Port: uint16(30000 + i)},
			&tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: port}, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoes(c, "x"); err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		c.Close()
	}
	if got := u.Stats().NATFlows; got != flows {
		t.Fatalf("%d flows open, want %d", got, flows)
	}
	after := heap()
	t.Logf("%d idle flows: heap %+d KiB", flows, (int64(after)-int64(before))>>10)
	const perFlow = 16 << 10
	if grew := int64(after) - int64(before); grew > flows*perFlow {
		t.Errorf("%d idle flows grew the heap by %d KiB (%d KiB each), want at most %d KiB each", flows, grew>>10, grew/flows>>10, perFlow>>10)
	}
}
