package netback_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// TestForwardIPv6: a forward on an IPv6 address, which takes its
// connections and datagrams through its own socket (accept4, recvfrom,
// sendto) rather than the net package's, proxies to the guest and back:
// over TCP the client's end of stream reaches the guest and the guest's
// close reaches the client (io.ReadAll returns), over UDP the answer comes
// back to the client's address; [::] takes IPv4 clients too; and the
// network's Close frees the port. TestForwardLinkLocalPeerUnderSeccomp
// checks the same path from a link-local peer where the host has one.
func TestForwardIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	v6, v4 := netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		proto, host string
		clients     []netip.Addr
	}{
		{"tcp", "[::1]", []netip.Addr{v6}},
		{"tcp", "[::]", []netip.Addr{v6, v4}},
		{"udp", "[::1]", []netip.Addr{v6}},
		{"udp", "[::]", []netip.Addr{v6, v4}},
	}
	for _, tt := range tests {
		t.Run(tt.proto+" "+tt.host, func(t *testing.T) {
			port := testsock.Port(t)
			f, err := netback.ParseForward(fmt.Sprintf("%s:%s:%d:7", tt.proto, tt.host, port))
			if err != nil {
				t.Fatal(err)
			}
			u, err := netback.NewUser(guestMAC, []netback.Forward{f})
			if err != nil {
				t.Fatal(err)
			}
			g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway, Silent: true})
			if err != nil {
				u.Close()
				t.Fatal(err)
			}
			if msg := echoOnGuest(g, f); msg != "" {
				g.Close()
				t.Fatal(msg)
			}
			for i, c := range tt.clients {
				msg := fmt.Sprintf("hello %d from %s", i, c)
				got, err := exchange(tt.proto, netip.AddrPortFrom(c, 0), netip.AddrPortFrom(c, port), msg)
				if err != nil || got != msg {
					t.Errorf("from %s: answer %q, %v; want %q", c, got, err, msg)
				}
			}
			if err := g.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			// The port is free again: the forward's socket closed.
			if err := netback.CheckForwardPorts([]netback.Forward{f}); err != nil {
				t.Errorf("after Close: %v", err)
			}
		})
	}
}
