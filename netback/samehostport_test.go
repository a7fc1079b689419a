package netback

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// TestSameHostPortAgreesWithBinds: SameHostPort says two forwards would
// take one host socket exactly when the host refuses the second's bind
// while the first's is held, each bound as a forward binds it
// (CheckForwardPorts): 0.0.0.0 listens on IPv4 alone, so it and ::1 are
// two sockets, where SameHostPort counted every unspecified address as
// taking the port everywhere.
func TestSameHostPortAgreesWithBinds(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	addrs := []string{"0.0.0.0", "127.0.0.1", "::", "::1"}
	for _, proto := range []string{"tcp", "udp"} {
		for _, a := range addrs {
			for _, b := range addrs {
				fa := Forward{Proto: proto, HostAddr: netip.MustParseAddr(a), GuestPort: 80}
				fb := Forward{Proto: proto, HostAddr: netip.MustParseAddr(b), GuestPort: 81}
				t.Run(fmt.Sprintf("%s %s %s", proto, a, b), func(t *testing.T) {
					var held func()
					var err error
					// A port free when chosen may be taken before it is bound.
					for try := 0; held == nil; try++ {
						fa.HostPort = testsock.Port(t)
						if held, err = holdForwardPort(fa); err != nil && try == 4 {
							t.Fatalf("five free ports taken before they were bound, the last %d: %v", fa.HostPort, err)
						}
					}
					defer held()
					fb.HostPort = fa.HostPort
					bindErr := CheckForwardPorts([]Forward{fb})
					refused := bindErr != nil
					if same := SameHostPort(fa, fb); same != refused {
						t.Errorf("SameHostPort %v, but the second bind: %v", same, bindErr)
					}
					if same := SameHostPort(fb, fa); same != refused {
						t.Errorf("SameHostPort (b, a) %v, but the second bind: %v", same, bindErr)
					}
					// The advice is the CLI's: netback states the facts.
					if err := CheckForwards([]Forward{fa, fb}); (err != nil) != refused || (err != nil && (!errors.Is(err, ErrSameHostPort) || strings.Contains(err.Error(), "; give"))) {
						t.Errorf("CheckForwards: %v, the second bind: %v", err, bindErr)
					}
				})
			}
		}
	}
}

// holdForwardPort binds f's host socket as the gateway's forward does
// (an IPv4 address on IPv4 alone, an IPv6 TCP one through listenRawTCP)
// and returns what releases it.
func holdForwardPort(f Forward) (release func(), err error) {
	ap := netip.AddrPortFrom(f.HostAddr, f.HostPort)
	var c io.Closer
	switch {
	case f.Proto == "tcp" && f.HostAddr.Is6():
		c, err = listenRawTCP(ap)
	case f.Proto == "tcp":
		c, err = net.Listen(forwardNetwork(f.Proto, f.HostAddr), ap.String())
	default:
		c, err = net.ListenUDP(forwardNetwork(f.Proto, f.HostAddr), net.UDPAddrFromAddrPort(ap))
	}
	if err != nil {
		return nil, err
	}
	return func() { c.Close() }, nil
}
