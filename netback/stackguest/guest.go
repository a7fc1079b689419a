// Package stackguest stands in for a guest OS in tests and benchmarks: a
// gVisor netstack with one Ethernet NIC whose frames go through a
// netback.Backend, exactly as a virtio-net guest's would.
package stackguest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/smolvmm/smolvmm/netback"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const nicID tcpip.NICID = 1

// outDepth is the NIC's transmit queue, in frames.
const outDepth = 4096

// Guest is a userspace TCP/IP stack attached to a backend as a guest NIC.
type Guest struct {
	// Stack is the guest's netstack, for anything the helpers do not cover.
	Stack *stack.Stack

	backend netback.Backend
	ch      *channel.Endpoint
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// Config describes the guest's interface.
type Config struct {
	// MAC is the NIC's Ethernet address.
	MAC net.HardwareAddr
	// Addr is the guest's static address and prefix, e.g. 10.0.2.15/24.
	Addr netip.Prefix
	// Gateway is the default route, an IPv4 address; the zero Addr means
	// none.
	Gateway netip.Addr
	// Silent drops TCP segments to ports nothing listens on instead of
	// answering with a reset: a guest that is up (it answers ARP) but
	// never answers a connection, as behind a dropping firewall.
	Silent bool
}

// New starts a guest stack on b. The guest owns b from then on: Close
// closes it.
func New(b netback.Backend, c Config) (*Guest, error) {
	if len(c.MAC) != 6 || !c.Addr.Addr().Is4() {
		return nil, fmt.Errorf("stackguest: need a 6-byte MAC and an IPv4 address, got %q and %s", c.MAC, c.Addr)
	}
	// The stack speaks IPv4 only; a gateway of another family is no route.
	if c.Gateway.IsValid() && !c.Gateway.Is4() {
		return nil, fmt.Errorf("stackguest: gateway %s is not an IPv4 address", c.Gateway)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	ch := channel.New(outDepth, netback.MTU+netback.EthernetHeaderSize, tcpip.LinkAddress(c.MAC))
	if err := s.CreateNIC(nicID, ethernet.New(ch)); err != nil {
		s.Close()
		return nil, fmt.Errorf("stackguest: create NIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(c.Addr.Addr().As4()),
			PrefixLen: c.Addr.Bits(),
		},
	}
	if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		s.Close()
		return nil, fmt.Errorf("stackguest: add address %s: %s", c.Addr, err)
	}
	routes := []tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: nicID}}
	if c.Gateway.IsValid() {
		routes = append(routes, tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4(c.Gateway.As4()), NIC: nicID})
	}
	s.SetRouteTable(routes)
	if c.Silent {
		s.SetTransportProtocolHandler(tcp.ProtocolNumber, func(stack.TransportEndpointID, *stack.PacketBuffer) bool { return true })
	}

	ctx, cancel := context.WithCancel(context.Background())
	g := &Guest{Stack: s, backend: b, ch: ch, cancel: cancel}
	g.wg.Add(2)
	go g.receive()
	go g.transmit(ctx)
	return g, nil
}

// receive feeds frames from the backend to the stack until it closes.
func (g *Guest) receive() {
	defer g.wg.Done()
	buf := make([]byte, netback.MaxFrameSize)
	for {
		n, err := g.backend.ReadFrame(buf)
		if errors.Is(err, netback.ErrClosed) {
			return
		}
		if err != nil || n < netback.EthernetHeaderSize {
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:n])})
		g.ch.InjectInbound(0, pkt)
		pkt.DecRef()
	}
}

// transmit sends the stack's frames to the backend.
func (g *Guest) transmit(ctx context.Context) {
	defer g.wg.Done()
	for {
		pkt := g.ch.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		err := g.backend.WriteFrame(v.AsSlice())
		v.Release()
		pkt.DecRef()
		if errors.Is(err, netback.ErrClosed) {
			return
		}
	}
}

// ListenTCP listens on the guest's address at port.
func (g *Guest) ListenTCP(port uint16) (net.Listener, error) {
	ln, err := gonet.ListenTCP(g.Stack, tcpip.FullAddress{NIC: nicID, Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("stackguest: listen on port %d: %w", port, err)
	}
	return ln, nil
}

// ListenUDP opens a UDP socket on the guest's address at port: datagrams
// to that port wait there rather than draw an ICMP port unreachable.
func (g *Guest) ListenUDP(port uint16) (net.PacketConn, error) {
	c, err := gonet.DialUDP(g.Stack, &tcpip.FullAddress{NIC: nicID, Port: port}, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("stackguest: listen on UDP port %d: %w", port, err)
	}
	return c, nil
}

// DialTCP connects from the guest to addr, an IPv4 address (the stack
// speaks IPv4 only).
func (g *Guest) DialTCP(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if !addr.Addr().Is4() {
		return nil, fmt.Errorf("stackguest: dial %s: not an IPv4 address", addr)
	}
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(addr.Addr().As4()), Port: addr.Port()}
	c, err := gonet.DialContextTCP(ctx, g.Stack, fa, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("stackguest: dial %s: %w", addr, err)
	}
	return c, nil
}

// Close stops the stack and closes the backend.
func (g *Guest) Close() error {
	var err error
	g.once.Do(func() {
		g.cancel()
		err = g.backend.Close()
		g.wg.Wait()
		g.Stack.Close()
		g.Stack.Wait()
		g.ch.Close()
	})
	return err
}
