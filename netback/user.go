package netback

import (
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The user-mode network uses QEMU's addresses so that service scripts
// written for QEMU's "-netdev user" work unchanged.
var (
	// UserSubnet is the guest network.
	UserSubnet = netip.MustParsePrefix("10.0.2.0/24")
	// UserGateway is the router; connections to it reach the host's
	// loopback (as in QEMU), except DNS on port 53.
	UserGateway = netip.MustParseAddr("10.0.2.2")
	// UserDNS is the DNS server, answering from the host's resolver.
	UserDNS = netip.MustParseAddr("10.0.2.3")
	// UserGuest is the address DHCP leases to the guest's MAC and the one
	// port forwards reach.
	UserGuest = netip.MustParseAddr("10.0.2.15")
	// UserGatewayMAC is the gateway's (and DNS server's) Ethernet address.
	UserGatewayMAC = net.HardwareAddr{0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xdd}
)

// Queue depths, in frames. Towards the guest the queue absorbs the largest
// TCP window a guest is likely to open (4096 frames is about 6 MiB, more
// than gVisor's and NetBSD's default maximum receive buffers) while the
// device waits for receive buffers; beyond it frames are dropped as a NIC
// drops them. It only holds memory while it is full. Blocking the gateway's
// link instead would stall the gateway, and through it the guest's transmit
// path that the guest may need to make progress. From the guest a short
// queue is enough: a full one makes WriteFrame wait.
const (
	userToGuestDepth   = 4096
	userFromGuestDepth = 256
)

// nicID is the gateway stack's only NIC.
const nicID tcpip.NICID = 1

// User is the rootless user-mode network backend: a gateway running
// gVisor's netstack in this process, its NIC wired straight to the guest's
// (DHCP, DNS and NAT of the guest's TCP/UDP connections to the host's
// sockets, DNS from the host's resolver), plus host port forwards
// to the guest.
type User struct {
	toGuest *frameQueue // gateway stack -> link -> ReadFrame
	gw      *gateway    // WriteFrame -> gw.in -> gateway stack
	fwd     forwardCounts
}

// NewUser starts a user-mode network for a guest whose NIC has address mac,
// with the given host port forwards. A forward whose host port cannot be
// bound fails the whole call (wrapping the socket error, e.g.
// syscall.EADDRINUSE) and nothing is left running; forwards naming one
// host port twice are refused first (CheckForwards).
func NewUser(mac net.HardwareAddr, forwards []Forward) (*User, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("user network: guest MAC %q is not a 6-byte Ethernet address", mac)
	}
	if err := CheckForwards(forwards); err != nil {
		return nil, fmt.Errorf("user network: %w", err)
	}
	u := &User{toGuest: newFrameQueue(userToGuestDepth)}
	gw, err := newGateway(u.toGuest, userFromGuestDepth, true)
	if err != nil {
		return nil, err
	}
	u.gw = gw
	ok := false
	defer func() {
		if !ok {
			_ = u.Close()
		}
	}()
	if err := gw.serveDHCP(newLeaseTable(mac).lease); err != nil {
		return nil, err
	}
	for _, f := range forwards {
		stop, err := gw.forward(f, UserGuest, forwardLimits{vm: &u.fwd})
		if err != nil {
			return nil, err
		}
		gw.closers = append(gw.closers, stop)
	}
	gw.start()
	ok = true
	return u, nil
}

// newGatewayStack builds the gateway's netstack: IPv4 with ARP, TCP, UDP and
// ICMP on one NIC owning the gateway and DNS addresses. Spoofing and
// promiscuous mode let it accept the guest's connections to any address,
// which the forwarders then relay to the host.
func newGatewayStack(link stack.LinkEndpoint) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	if err := s.CreateNIC(nicID, link); err != nil {
		s.Close()
		return nil, fmt.Errorf("user network: create NIC: %s", err)
	}
	// The gateway address goes first: it is the source of the gateway's
	// own connections to the guest (port forwards).
	for _, a := range []netip.Addr{UserGateway, UserDNS} {
		pa := tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddrFrom4(a.As4()).WithPrefix(),
		}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			s.Close()
			return nil, fmt.Errorf("user network: add address %s: %s", a, err)
		}
	}
	s.SetSpoofing(nicID, true)
	s.SetPromiscuousMode(nicID, true)
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4(UserSubnet.Addr().As4()),
		tcpip.MaskFromBytes(net.CIDRMask(UserSubnet.Bits(), 32)))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("user network: subnet %s: %w", UserSubnet, err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	return s, nil
}

// ReadFrame implements Backend.
func (u *User) ReadFrame(buf []byte) (int, error) {
	n, err := u.toGuest.pop(buf)
	if err != nil {
		return 0, fmt.Errorf("user network: read frame: %w", err)
	}
	return n, nil
}

// WriteFrame implements Backend.
func (u *User) WriteFrame(frame []byte) error {
	if err := checkOutgoing(frame); err != nil {
		return fmt.Errorf("user network: write frame: %w", err)
	}
	if err := u.gw.in.pushWait(frame); err != nil {
		return fmt.Errorf("user network: write frame: %w", err)
	}
	return nil
}

// Stats implements StatsReporter.
func (u *User) Stats() Stats {
	return Stats{
		ToGuest:      u.toGuest.pushed.Load(),
		FromGuest:    u.gw.in.pushed.Load(),
		Dropped:      u.toGuest.dropped.Load(),
		GatewayStats: u.gw.stats(&u.fwd),
	}
}

// Close stops forwards, services and the gateway stack, in reverse order of
// creation, and waits for their goroutines.
func (u *User) Close() error {
	u.toGuest.close()
	if u.gw == nil {
		return nil
	}
	return u.gw.close()
}
