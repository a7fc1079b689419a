package netback_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// A guest's UDP datagram to a host port nothing listens on draws an ICMP
// port unreachable from the gateway, as QEMU's slirp sends, quoting the
// datagram's addresses and ports: the guest's socket reads "connection
// refused" at once (a DNS client tries its next server, a probe knows
// the port is closed) rather than waiting out its timeout. Before, the
// host's refusal was dropped. On a User's network and a hub's.
func TestNATUDPPortUnreachable(t *testing.T) {
	tests := []struct {
		name  string
		guest func(t *testing.T) (*stackguest.Guest, netip.Addr)
	}{
		{"user network", func(t *testing.T) (*stackguest.Guest, netip.Addr) { return startGuest(t), netback.UserGuest }},
		{"hub", func(t *testing.T) (*stackguest.Guest, netip.Addr) {
			g, j := joinGuest(t, startHub(t, testsock.Dir(t)), testMAC(1))
			return g, j.Addr()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, addr := tt.guest(t)
			port := closedUDPPort(t)
			c, err := gonet.DialUDP(g.Stack, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addr.As4()), Port: 31000},
				&tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: port}, ipv4.ProtocolNumber)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("anyone there?")); err != nil {
				t.Fatal(err)
			}
			// gonet's read waits for a datagram, not an error: it is
			// read again until the refusal is there.
			deadline := time.Now().Add(20 * time.Second)
			for {
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				_, err = c.Read(make([]byte, 100))
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() || time.Now().After(deadline) {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("read: %v, want the connection refused", err)
			}
		})
	}
}
