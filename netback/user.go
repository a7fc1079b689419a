package netback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/containers/gvisor-tap-vsock/pkg/services/dns"
	"github.com/containers/gvisor-tap-vsock/pkg/services/forwarder"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
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
// sockets, the last two from gvisor-tap-vsock), plus host port forwards to
// the guest.
type User struct {
	fromGuest *frameQueue // WriteFrame -> link.run -> gateway stack
	toGuest   *frameQueue // gateway stack -> link -> ReadFrame
	link      *gatewayLink
	stack     *stack.Stack
	// linkDone is closed when link.run stops handing the guest's frames
	// to the gateway stack, which must outlive that.
	linkDone chan struct{}
	closers  []func() error
	wg       sync.WaitGroup
	// resolver answers DNS from the host's configuration as read at
	// NewUser (hostdns.go): no file is opened afterwards.
	resolver *hostResolver

	closeOnce sync.Once
	closeErr  error
}

// NewUser starts a user-mode network for a guest whose NIC has address mac,
// with the given host port forwards. A forward whose host port cannot be
// bound fails the whole call (wrapping the socket error, e.g.
// syscall.EADDRINUSE) and nothing is left running.
func NewUser(mac net.HardwareAddr, forwards []Forward) (*User, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("user network: guest MAC %q is not a 6-byte Ethernet address", mac)
	}
	u := &User{}
	ok := false
	defer func() {
		if !ok {
			_ = u.Close()
		}
	}()

	u.fromGuest = newFrameQueue(userFromGuestDepth)
	u.toGuest = newFrameQueue(userToGuestDepth)
	u.link = newGatewayLink(tcpip.LinkAddress(UserGatewayMAC), u.toGuest,
		tcpip.AddrFrom4(UserGateway.As4()), tcpip.AddrFrom4(UserDNS.As4()))
	var err error
	if u.stack, err = newGatewayStack(u.link); err != nil {
		return nil, err
	}
	u.closers = append(u.closers, func() error { u.stack.Close(); u.stack.Wait(); return nil })

	// Connections the guest opens to anything but the gateway's own
	// services go to the host; the gateway itself stands for the host's
	// loopback, as in QEMU.
	var natLock sync.Mutex
	nat := map[tcpip.Address]tcpip.Address{
		tcpip.AddrFrom4(UserGateway.As4()): tcpip.AddrFrom4([4]byte{127, 0, 0, 1}),
	}
	u.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, forwarder.TCP(u.stack, nat, &natLock, false).HandlePacket)
	u.stack.SetTransportProtocolHandler(udp.ProtocolNumber, forwarder.UDP(u.stack, nat, &natLock, false).HandlePacket)

	u.resolver = newHostResolver()
	for _, a := range []netip.Addr{UserGateway, UserDNS} {
		if err := u.serveDNS(a); err != nil {
			return nil, err
		}
	}
	if err := u.serveDHCP(mac); err != nil {
		return nil, err
	}
	for _, f := range forwards {
		if err := u.forward(f); err != nil {
			return nil, err
		}
	}

	u.linkDone = make(chan struct{})
	go func() {
		defer close(u.linkDone)
		u.link.run(u.fromGuest)
	}()
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

// serveDNS answers DNS over UDP and TCP at addr:53 from the host's resolver
// configuration (u.resolver).
func (u *User) serveDNS(addr netip.Addr) error {
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(addr.As4()), Port: 53}
	uc, err := gonet.DialUDP(u.stack, &fa, nil, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("user network: DNS on %s:53/udp: %w", addr, err)
	}
	u.closers = append(u.closers, uc.Close)
	ln, err := gonet.ListenTCP(u.stack, fa, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("user network: DNS on %s:53/tcp: %w", addr, err)
	}
	u.closers = append(u.closers, ln.Close)
	srv, err := dns.NewWithUpstreamResolver(uc, ln, nil, u.resolver)
	if err != nil {
		return fmt.Errorf("user network: DNS server on %s: %w", addr, err)
	}
	u.goServe(srv.Serve)
	u.goServe(srv.ServeTCP)
	return nil
}

// serveDHCP answers DHCP with the static lease of UserGuest to the guest's
// MAC (other MACs get other addresses of the subnet).
func (u *User) serveDHCP(mac net.HardwareAddr) error {
	srv, err := newDHCPServer(u.stack, mac)
	if err != nil {
		return fmt.Errorf("user network: DHCP server: %w", err)
	}
	u.closers = append(u.closers, srv.conn.Close)
	u.goServe(srv.serve)
	return nil
}

// goServe runs a server loop until Close; its closing error is expected.
func (u *User) goServe(serve func() error) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = serve()
	}()
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
	if err := u.fromGuest.pushWait(frame); err != nil {
		return fmt.Errorf("user network: write frame: %w", err)
	}
	return nil
}

// Stats implements StatsReporter.
func (u *User) Stats() Stats {
	return Stats{
		ToGuest:   u.toGuest.pushed.Load(),
		FromGuest: u.fromGuest.pushed.Load(),
		Dropped:   u.toGuest.dropped.Load(),
	}
}

// Close stops forwards, services and the gateway stack, in reverse order of
// creation, and waits for their goroutines.
func (u *User) Close() error {
	u.closeOnce.Do(func() {
		if u.fromGuest != nil {
			u.fromGuest.close()
			u.toGuest.close()
		}
		if u.linkDone != nil {
			<-u.linkDone
		}
		var errs []error
		for i := len(u.closers) - 1; i >= 0; i-- {
			if err := u.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		u.wg.Wait()
		if err := errors.Join(errs...); err != nil {
			u.closeErr = fmt.Errorf("user network: close: %w", err)
		}
	})
	return u.closeErr
}
