package netback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// gateway is the user network's router, shared by the single-VM User and
// the many-VM Hub: a gVisor netstack on one Ethernet link owning the
// gateway and DNS addresses, NAT of the guests' TCP and UDP connections to
// the host's sockets (nat.go), DNS from the host's resolver, DHCP, and
// host port forwards to guest addresses. Its frames
// leave through out; frames for it are pushed onto in and handed to the
// stack, in order, by one goroutine.
type gateway struct {
	in   *frameQueue // frames for the gateway -> link.run -> stack
	link *gatewayLink
	// stack is the gateway's netstack.
	stack *stack.Stack
	// nat relays the guests' connections to the host.
	nat *nat
	// linkDone is closed when link.run stops handing frames to the
	// stack, which must outlive that.
	linkDone chan struct{}
	closers  []func() error
	wg       sync.WaitGroup
	// dnsUDP are the UDP DNS connections: close clears their read
	// deadlines once the servers have stopped, since closing a gonet
	// connection leaves its pending deadline timer (a day long) alive.
	dnsUDP []*gonet.UDPConn
	// resolver answers DNS from the host's configuration: as read when
	// a User's gateway was made (no file is opened afterwards, under the
	// VMM's seccomp filter), read again when it changes for a hub's
	// (hostdns.go).
	resolver *hostResolver
	// dns answers the guests' queries from resolver (dnsserver.go).
	dns *dnsHandler
	// dnsConns counts each guest's DNS-over-TCP connections open, to
	// both DNS addresses; dnsConnsRefused those reset beyond the bound
	// (dnstcp.go).
	dnsConns        *dnsConnCount
	dnsConnsRefused atomic.Uint64
	// oneGuest counts every source address as the one guest's.
	oneGuest bool

	closeOnce sync.Once
	closeErr  error
}

// newGateway builds the gateway whose frames go to out, with NAT and DNS
// running; oneGuest makes the NAT count every source address as one
// guest's (newNAT). The caller adds DHCP and forwards, then calls start.
func newGateway(out frameSink, inDepth int, oneGuest bool) (*gateway, error) {
	g := &gateway{in: newFrameQueue(inDepth), dnsConns: newDNSConnCount(), oneGuest: oneGuest}
	g.link = newGatewayLink(tcpip.LinkAddress(UserGatewayMAC), out,
		tcpip.AddrFrom4(UserGateway.As4()), tcpip.AddrFrom4(UserDNS.As4()))
	var err error
	if g.stack, err = newGatewayStack(g.link); err != nil {
		return nil, err
	}
	// Connections the guests open to anything but the gateway's own
	// services go to the host (nat.go). Closed in reverse: the relays
	// end, then the stack (which ends the handshakes a TCP handler may
	// wait on), then the relays' goroutines are joined.
	n := newNAT(UserGateway, UserSubnet, oneGuest)
	n.stack = g.stack
	g.nat = n
	g.closers = append(g.closers, n.wait,
		func() error { g.stack.Close(); g.stack.Wait(); return nil },
		n.stop)
	g.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, n.watchTCP(n.forwardTCP))
	g.stack.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(g.stack, n.handleUDP).HandlePacket)

	// A hub's gateway (many guests) runs in smolvmm net's daemon, for
	// as long as the host: it follows the files' changes, a contained
	// hub (HubConfig.Contained: its seccomp filter refuses stat and open)
	// through HubConfig.ReadHostFiles, which asks its broker.
	g.resolver = newHostResolver(!oneGuest)
	// Closed after the servers (closers run in reverse): their queries
	// being answered end, and are joined.
	g.dns = newDNSHandler(g.resolver)
	g.closers = append(g.closers, g.dns.close)
	for _, a := range []netip.Addr{UserGateway, UserDNS} {
		if err := g.serveDNS(a); err != nil {
			_ = g.close()
			return nil, err
		}
	}
	return g, nil
}

// start hands the frames pushed on g.in to the stack until close.
func (g *gateway) start() {
	g.linkDone = make(chan struct{})
	go func() {
		defer close(g.linkDone)
		g.link.run(g.in)
	}()
}

// serveDNS answers DNS over UDP and TCP at addr:53 from the host's resolver
// configuration (g.resolver).
func (g *gateway) serveDNS(addr netip.Addr) error {
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(addr.As4()), Port: 53}
	uc, err := gonet.DialUDP(g.stack, &fa, nil, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("user network: DNS on %s:53/udp: %w", addr, err)
	}
	g.closers = append(g.closers, uc.Close)
	g.dnsUDP = append(g.dnsUDP, uc)
	ln, err := listenDNSTCP(g.stack, fa, g.oneGuest, g.dnsConns, &g.dnsConnsRefused)
	if err != nil {
		return fmt.Errorf("user network: DNS on %s:53/tcp: %w", addr, err)
	}
	g.closers = append(g.closers, ln.Close)
	g.goServe(dnsUDPServer(uc, g.dns.udp()).ActivateAndServe)
	idle := dnsTCPIdleFor
	g.goServe((&dns.Server{Listener: ln, Handler: g.dns.tcp(), ReadTimeout: dnsTCPFirstQueryFor,
		IdleTimeout: func() time.Duration { return idle }}).ActivateAndServe)
	return nil
}

// dnsUDPReadTimeout bounds each read of the UDP DNS server: a day.
// miekg/dns sets a read deadline before every read (2 s by default) and
// reads again when it passes: an idle VM's two servers woke every 2 s and
// the code they ran kept ~1.6 MiB of the executable mapped. Closing the
// connection ends the server; the deadline ends nothing.
const dnsUDPReadTimeout = 24 * time.Hour

// dnsUDPServer is the DNS server on pc, answered by h. (The TCP server's
// Accept has no deadline; its ReadTimeout bounds a connection's reads.)
func dnsUDPServer(pc net.PacketConn, h dns.Handler) *dns.Server {
	return &dns.Server{PacketConn: pc, Handler: h, ReadTimeout: dnsUDPReadTimeout}
}

// serveDHCP answers DHCP with the addresses lease gives each MAC.
func (g *gateway) serveDHCP(lease leaseFunc) error {
	srv, err := newDHCPServer(g.stack, lease)
	if err != nil {
		return fmt.Errorf("user network: DHCP server: %w", err)
	}
	g.closers = append(g.closers, srv.conn.Close)
	g.goServe(srv.serve)
	return nil
}

// goServe runs a server loop until close; its closing error is expected.
func (g *gateway) goServe(serve func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		_ = serve()
	}()
}

// close stops the link, then services and the stack in reverse order of
// creation, and waits for their goroutines. The queue towards the guests
// (out) is the caller's to close.
func (g *gateway) close() error {
	g.closeOnce.Do(func() {
		g.in.close()
		if g.linkDone != nil {
			<-g.linkDone
		}
		var errs []error
		for i := len(g.closers) - 1; i >= 0; i-- {
			if err := g.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		g.wg.Wait()
		for _, uc := range g.dnsUDP {
			_ = uc.SetReadDeadline(time.Time{})
		}
		if err := errors.Join(errs...); err != nil {
			g.closeErr = fmt.Errorf("user network: close: %w", err)
		}
	})
	return g.closeErr
}

// stats returns the gateway's counters, with those of the forwards
// counted in fwd (a User's, or a hub's for all its VMs).
func (g *gateway) stats(fwd *forwardCounts) GatewayStats {
	ns := g.nat.stats()
	return GatewayStats{
		ForwardsPending:     uint64(fwd.pending.Load()),
		ForwardsRefused:     fwd.refused.Load(),
		ForwardFlows:        uint64(fwd.flows.Load()),
		ForwardFlowsRefused: fwd.flowsRefused.Load(),
		NATConns:            ns.tcp,
		NATFlows:            ns.udp,
		NATRefusedConns:     ns.refusedTCP,
		NATRefusedFlows:     ns.refusedUDP,
		NATHeldConns:        ns.heldTCP,
		DNSRefused:          g.resolver.refused.Load(),
		DNSConns:            uint64(g.dnsConns.total.Load()),
		DNSRefusedConns:     g.dnsConnsRefused.Load(),
	}
}
