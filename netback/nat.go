package netback

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The gateway's NAT of the guests' connections to the outside: each TCP
// connection or UDP flow a guest opens to an address the gateway does not
// serve itself becomes a socket of this process to the same address (the
// gateway's own address standing for the host's loopback), and the bytes
// or datagrams are relayed between the two.
const (
	// natMaxInFlight bounds the guests' TCP connections being dialled on
	// the host at once (SYNs beyond it are dropped, and the guest sends
	// them again): each holds a goroutine and a half-open socket.
	natMaxInFlight = 10
	// natDialTimeout bounds a dial on the host for a guest's SYN: the
	// guest answers a connection that did not come in that long with a
	// reset. NetBSD's own connection-establishment timer is 75 s: the
	// guest has given up by then.
	natDialTimeout = 75 * time.Second
	// udpIdleTimeout ends a UDP flow (its host socket and goroutines)
	// after this long without a datagram either way, as a NAT's
	// connection tracking forgets it; a later datagram opens a new flow.
	udpIdleTimeout = 90 * time.Second
	// udpMaxDatagram is the largest UDP payload over IPv4.
	udpMaxDatagram = 65507
)

// udpIdleFor is udpIdleTimeout, a variable for the tests.
var udpIdleFor = udpIdleTimeout

// notRelayed are the destinations the NAT refuses: 169.254.0.0/16, where
// cloud guests look for a metadata service (a guest must not reach the
// host's); "this network" 0.0.0.0/8, multicast 224.0.0.0/4 and the
// reserved 240.0.0.0/4 with the broadcast address, which are not one host
// to connect to. The user subnet is refused apart (newNAT): its addresses
// are the virtual network's, never the host's.
var notRelayed = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// nat relays the guests' TCP connections and UDP flows to the host's
// sockets. Its goroutines are its own and joined by wait; the gVisor
// forwarders start the TCP handlers, which enter through begin.
type nat struct {
	// outside maps a guest's destination to the host's (gateway to
	// loopback), false for destinations not relayed.
	outside func(tcpip.Address) (netip.Addr, bool)
	dialer  net.Dialer
	// ctx ends the dials in progress when the gateway closes.
	ctx    context.Context
	cancel context.CancelFunc
	conns  connSet // both sides of every relay

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	// running counts the relays' goroutines, as wg does, for the tests.
	running atomic.Int64
}

// newNAT relays to the host the guests' connections to anything but the
// gateway's own services, gateway (whose address stands for the host's
// loopback, as in QEMU) included. The rest of subnet (the DNS server's
// address on other ports than its own, the guests, the broadcast) is
// refused: the host would dial those addresses on its own networks.
func newNAT(gateway netip.Addr, subnet netip.Prefix) *nat {
	n := &nat{outside: func(a tcpip.Address) (netip.Addr, bool) {
		addr, ok := netip.AddrFromSlice(a.AsSlice())
		if !ok || !addr.Is4() {
			return netip.Addr{}, false
		}
		if addr == gateway {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
		}
		if subnet.Contains(addr) {
			return netip.Addr{}, false
		}
		for _, p := range notRelayed {
			if p.Contains(addr) {
				return netip.Addr{}, false
			}
		}
		return addr, true
	}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// begin counts k goroutines of a relay about to start; false once the NAT
// is closing, when nothing may start.
func (n *nat) begin(k int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(k)
	n.running.Add(int64(k))
	return true
}

// done ends k goroutines begin counted.
func (n *nat) done(k int) {
	n.running.Add(-int64(k))
	n.wg.Add(-k)
}

// stop refuses new relays, ends the dials in progress and closes both
// sides of every relay, so that their goroutines end.
func (n *nat) stop() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.conns.closeAll()
	return nil
}

// wait joins the relays' goroutines. A TCP handler may be waiting for the
// guest to finish its handshake: call it after the stack has closed.
func (n *nat) wait() error {
	n.wg.Wait()
	return nil
}

// handleTCP is the TCP forwarder's handler, on a goroutine of its own for
// each SYN of a new connection: the guest's connection is accepted once
// the host's is established, and refused (reset) when it is not.
func (n *nat) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	to, ok := n.outside(id.LocalAddress)
	if !ok || !n.begin(1) {
		r.Complete(true)
		return
	}
	defer n.done(1)
	ctx, cancel := context.WithTimeout(n.ctx, natDialTimeout)
	host, err := n.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(to, id.LocalPort).String())
	cancel()
	if err != nil {
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if tcpErr != nil { // the guest gave up, or reset
		_ = host.Close()
		return
	}
	guest := gonet.NewTCPConn(&wq, ep)
	if !n.conns.add(host) {
		_ = host.Close()
		_ = guest.Close()
		return
	}
	defer n.conns.remove(host)
	if !n.conns.add(guest) {
		_ = guest.Close()
		return
	}
	defer n.conns.remove(guest)
	splice(host, guest)
}

// splice copies both ways between a and b until both directions have
// ended, passing each end of stream on as a half close.
func splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(b, a)
		closeWrite(b)
	}()
	_, _ = io.Copy(a, b)
	closeWrite(a)
	<-done
}

// closeWrite half-closes c where it can.
func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}

// handleUDP is the UDP forwarder's handler, called by the stack for a
// datagram that no endpoint takes (the first of a new flow): it opens the
// flow's host socket and relays its datagrams until the flow is idle.
// It runs on the stack's delivery path and does not block: a UDP dial
// sends nothing.
func (n *nat) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	to, ok := n.outside(id.LocalAddress)
	if !ok || !n.begin(2) {
		return
	}
	host, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, id.LocalPort)))
	if err != nil {
		n.done(2)
		return
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	if tcpErr != nil {
		_ = host.Close()
		n.done(2)
		return
	}
	guest := gonet.NewUDPConn(&wq, ep)
	if !n.conns.add(host) || !n.conns.add(guest) {
		n.conns.remove(host)
		n.conns.remove(guest)
		n.done(2)
		return
	}
	f := newUDPFlow(host, func(b []byte) error { _, err := guest.Write(b); return err }, func() {
		n.conns.remove(host)
		n.conns.remove(guest)
	})
	go func() {
		defer n.done(1)
		f.readFar()
	}()
	go func() {
		defer n.done(1)
		defer f.close()
		buf := make([]byte, udpMaxDatagram)
		for {
			k, err := guest.Read(buf)
			if err != nil {
				return
			}
			f.send(buf[:k])
		}
	}()
}

// udpFlow is one UDP flow between a near side, which hands its datagrams
// to send, and a far connection, whose datagrams go to deliver. It ends
// (close) when idle for udpIdleFor, or when either side fails.
type udpFlow struct {
	far     net.Conn
	deliver func([]byte) error
	idle    *time.Timer
	once    sync.Once
	end     func()
}

// newUDPFlow starts a flow's idle timer; end, called once when the flow
// ends, closes what the flow's goroutines read from.
func newUDPFlow(far net.Conn, deliver func([]byte) error, end func()) *udpFlow {
	f := &udpFlow{far: far, deliver: deliver, end: end}
	f.idle = time.AfterFunc(udpIdleFor, f.close)
	return f
}

// send passes a datagram of the near side to the far one. A datagram that
// cannot be sent is lost, as UDP loses datagrams; the flow goes on.
func (f *udpFlow) send(b []byte) {
	f.idle.Reset(udpIdleFor)
	_, _ = f.far.Write(b)
}

// readFar delivers the far side's datagrams until the flow ends. A
// refusal (an ICMP port unreachable for an earlier datagram: nothing
// listens there yet) is no reason to end it.
func (f *udpFlow) readFar() {
	defer f.close()
	buf := make([]byte, udpMaxDatagram)
	for {
		k, err := f.far.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue
		}
		if err != nil {
			return
		}
		f.idle.Reset(udpIdleFor)
		if f.deliver(buf[:k]) != nil {
			return
		}
	}
}

// close ends the flow, once. The idle timer is left to fire (a no-op
// then): its callback may run before newUDPFlow has stored it.
func (f *udpFlow) close() {
	f.once.Do(func() {
		_ = f.far.Close()
		if f.end != nil {
			f.end()
		}
	})
}

// udpForward relays the datagrams that arrive on a forwarded host UDP port
// to the guest: each client address has a flow of its own, from a port of
// the gateway to the guest's, so that the guest's replies go back to that
// client.
type udpForward struct {
	ln   *net.UDPConn
	dial func() (net.Conn, error) // a connection to the guest's port

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	wg     sync.WaitGroup // the flows' readers
}

func newUDPForward(ln *net.UDPConn, dial func() (net.Conn, error)) *udpForward {
	return &udpForward{ln: ln, dial: dial, flows: map[netip.AddrPort]*udpFlow{}}
}

// serve relays the host port's datagrams until close.
func (p *udpForward) serve() error {
	buf := make([]byte, udpMaxDatagram)
	for {
		k, from, err := p.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		if f := p.flow(from); f != nil {
			f.send(buf[:k])
		}
	}
}

// flow is the flow of client from, started if it has none; nil once the
// forward is closed or when the guest cannot be dialled.
func (p *udpForward) flow(from netip.AddrPort) *udpFlow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if f, ok := p.flows[from]; ok {
		return f
	}
	c, err := p.dial()
	if err != nil {
		return nil
	}
	var f *udpFlow
	f = newUDPFlow(c, func(b []byte) error {
		_, err := p.ln.WriteToUDPAddrPort(b, from)
		return err
	}, func() {
		p.mu.Lock()
		if p.flows[from] == f {
			delete(p.flows, from)
		}
		p.mu.Unlock()
	})
	p.flows[from] = f
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f.readFar()
	}()
	return f
}

// close stops the host port and every flow, and joins the flows'
// readers (serve is its caller's to join).
func (p *udpForward) close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	flows := make([]*udpFlow, 0, len(p.flows))
	for _, f := range p.flows {
		flows = append(flows, f)
	}
	p.mu.Unlock()
	for _, f := range flows {
		f.close()
	}
	p.wg.Wait()
	return err
}
