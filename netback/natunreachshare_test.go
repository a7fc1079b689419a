package netback_test

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// closedUDPPort is a host loopback port nothing listens on.
func closedUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	return port
}

// dialGateway is a UDP socket of guest g (at addr, port from) to the
// gateway's port to (the host's loopback).
func dialGateway(t *testing.T, g *stackguest.Guest, addr netip.Addr, from, to uint16) *gonet.UDPConn {
	t.Helper()
	c, err := gonet.DialUDP(g.Stack, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addr.As4()), Port: from},
		&tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: to}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// One VM of a hub flooding closed host ports with UDP does not use up
// the ICMP port unreachables of the others. Before, every refusal came
// out of the gateway stack's one ICMP limiter (1000 a second, bursts of
// 50), which a VM with hundreds of flows to a closed port drained: its
// neighbour's datagram to a closed port then drew no refusal, and its
// socket waited out its timeout. Each VM now has a budget of its own.
func TestNATPortUnreachableFloodSparesOthers(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	ga, ja := joinGuest(t, h, testMAC(1))
	gb, jb := joinGuest(t, h, testMAC(2))
	port := closedUDPPort(t)
	var flood []*gonet.UDPConn
	for i := range 800 {
		c := dialGateway(t, ga, ja.Addr(), uint16(40000+i), port)
		defer c.Close()
		flood = append(flood, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range flood {
				_, _ = c.Write([]byte("x"))
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	time.Sleep(500 * time.Millisecond) // the flood under way

	const tries = 5
	for i := range tries {
		c := dialGateway(t, gb, jb.Addr(), uint16(32000+i), closedUDPPort(t))
		if _, err := c.Write([]byte("anyone there?")); err != nil {
			t.Fatal(err)
		}
		// gonet's read waits for a datagram, not an error: it is read
		// again until the refusal is there.
		deadline := time.Now().Add(2 * time.Second)
		var err error
		for {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err = c.Read(make([]byte, 100))
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() || time.Now().After(deadline) {
				break
			}
		}
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("datagram %d of the other VM while one flooded: read %v, want the connection refused", i, err)
		}
	}
}
