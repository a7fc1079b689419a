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
	// natDialsPerGuest bounds one guest's TCP connections being dialled
	// on the host at once (its SYNs beyond it are dropped, and the guest
	// sends them again): each holds a goroutine and a half-open socket
	// for up to natDialTimeout.
	natDialsPerGuest = 10
	// natMaxInFlight bounds the SYNs of all guests being handled at once
	// (gVisor's forwarder drops those beyond it). It is well above
	// natDialsPerGuest for each of a hub's 240 addresses, so that guests
	// at their own bound, whose further SYNs are dropped at once, never
	// fill it for the others.
	natMaxInFlight = 4096
	// natDialTimeout bounds a dial on the host for a guest's SYN: the
	// guest answers a connection that did not come in that long with a
	// reset. NetBSD's own connection-establishment timer is 75 s: the
	// guest has given up by then.
	natDialTimeout = 75 * time.Second
	// natTCPPerGuest and natUDPPerGuest bound the TCP connections and
	// UDP flows one guest has through the NAT at once, each holding a
	// socket of this process: on a hub one process serves every VM, and
	// without a bound one guest could use up its file descriptors and
	// cut every other VM off. Beyond them a guest's SYN is answered with
	// a reset, and the first datagram of a new flow is dropped (the
	// flows it has go on), as a NAT with a full table refuses. The other
	// user-mode NATs bound nothing themselves (slirp and gvproxy stop at
	// the process's descriptor limit, which Go raises to the hard one;
	// passt has one table of 128 Ki flows for everything), and a home
	// router's whole table holds a few thousand to 16 Ki entries. A
	// browser keeps a few hundred connections, a parallel build or a
	// crawler one or two thousand; a UDP flow lasts udpIdleTimeout, so
	// 1024 of them allow a guest about 11 new flows a second (a DNS
	// query each to an outside resolver) without end. Together they are
	// about 3 Ki descriptors per guest, far below the usual hard limits
	// (512 Ki with systemd, 1 Mi in containers).
	natTCPPerGuest = 2048
	natUDPPerGuest = 1024
	// natTCPBuffer is the send and the receive buffer of the gateway's
	// side of each of a guest's first natTCPBufferedConns relayed TCP
	// connections; its later ones get natTCPSmallBuffer. gVisor's
	// default is 1 MiB, tuned up to 4 MiB: a guest that opened
	// connections to a host server that sends, and never read them,
	// made a hub hold 1 MiB for each (293 MB for 300), up to GBs for
	// natTCPPerGuest. Now one guest's connections hold at most 64 MiB
	// in the first and 60 MiB in the rest (2 × 16 KiB each). 256 KiB is
	// above the bandwidth-delay product of a host's own connections and
	// most outside ones (1 Gb/s at 2 ms).
	natTCPBuffer        = 256 << 10
	natTCPSmallBuffer   = 16 << 10
	natTCPBufferedConns = 128
	// udpIdleTimeout ends a UDP flow (its host socket and goroutines)
	// after this long without a datagram either way, as a NAT's
	// connection tracking forgets it; a later datagram opens a new flow.
	udpIdleTimeout = 90 * time.Second
	// udpMaxDatagram is the largest UDP payload over IPv4.
	udpMaxDatagram = 65507
)

// natLimits are the per-guest bounds of a NAT: natTCPPerGuest,
// natUDPPerGuest and natTCPBufferedConns, a variable for the tests (read
// when a NAT is made).
var natLimits = struct{ tcp, udp, buffered int }{natTCPPerGuest, natUDPPerGuest, natTCPBufferedConns}

// udpIdleFor is udpIdleTimeout, a variable for the tests.
var udpIdleFor = udpIdleTimeout

// notRelayed are the destinations the NAT refuses: the cloud services
// that answer any process of the host by its address alone, which a guest
// must not reach as the host: 169.254.0.0/16 (the metadata services of
// most clouds), 100.100.100.200 (Alibaba Cloud's metadata),
// 168.63.129.16 (Azure's WireServer) and 192.0.0.192 (Oracle Cloud's
// metadata); the host's loopback 127.0.0.0/8, which a guest reaches as
// 10.0.2.2 only (gVisor drops such packets from a NIC by default, and
// this does not hang on that default); "this network" 0.0.0.0/8,
// multicast 224.0.0.0/4 and the reserved 240.0.0.0/4 with the broadcast
// address, which are not one host to connect to. The user subnet is
// refused apart (newNAT): its addresses are the virtual network's, never
// the host's.
var notRelayed = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("168.63.129.16/32"),
	netip.MustParsePrefix("192.0.0.192/32"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// nat relays the guests' TCP connections and UDP flows to the host's
// sockets. Its goroutines are its own and joined by wait; the gVisor
// forwarders start the TCP handlers, which enter through admitTCP.
type nat struct {
	// outside maps a guest's destination to the host's (gateway to
	// loopback), false for destinations not relayed.
	outside func(tcpip.Address) (netip.Addr, bool)
	// oneGuest makes every source address one guest's (a User's: its
	// guest may send from any address, and only harms itself).
	// Otherwise each source address is a guest's (a hub lets a VM send
	// from its leased address only).
	oneGuest bool
	// maxTCP, maxUDP and maxBuffered are natLimits as they were when
	// the NAT was made.
	maxTCP, maxUDP, maxBuffered int
	dialer                      net.Dialer
	// ctx ends the dials in progress when the gateway closes.
	ctx    context.Context
	cancel context.CancelFunc
	conns  connSet // both sides of every relay

	mu     sync.Mutex
	closed bool
	// guests counts each guest's relays, for the per-guest bounds; a
	// guest with none has no entry.
	guests map[netip.Addr]*natGuest
	// flows are the UDP flows open, by guest.
	flows map[*udpFlow]netip.Addr
	// openTCP and openUDP count every guest's relays, for Stats.
	openTCP, openUDP int
	wg               sync.WaitGroup
	// running counts the relays' goroutines, as wg does, for the tests.
	running atomic.Int64
	// refusedTCP and refusedUDP count the connections and flows refused
	// for a guest's bound.
	refusedTCP, refusedUDP atomic.Uint64
}

// natGuest counts one guest's relays.
type natGuest struct {
	tcp      int // TCP connections, dialling or established
	dialing  int // of which being dialled on the host
	buffered int // of which with natTCPBuffer
	udp      int // UDP flows
}

// natStats are a NAT's counters.
type natStats struct {
	tcp, udp               uint64 // open now
	refusedTCP, refusedUDP uint64
}

// newNAT relays to the host the guests' connections to anything but the
// gateway's own services, gateway (whose address stands for the host's
// loopback, as in QEMU) included. The rest of subnet (the DNS server's
// address on other ports than its own, the guests, the broadcast) is
// refused: the host would dial those addresses on its own networks.
// oneGuest counts every source address as one guest's.
func newNAT(gateway netip.Addr, subnet netip.Prefix, oneGuest bool) *nat {
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
	}, oneGuest: oneGuest, maxTCP: natLimits.tcp, maxUDP: natLimits.udp, maxBuffered: natLimits.buffered,
		guests: map[netip.Addr]*natGuest{}, flows: map[*udpFlow]netip.Addr{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// Under the seccomp filter: GODEBUG=multipathtcp=1 would make the
	// first dial probe the kernel (bind, uname), which the filter refuses.
	n.dialer.SetMultipathTCP(false)
	return n
}

// guestOf is the guest a connection from source belongs to; false for a
// source no guest may use (0.0.0.0, which a hub lets any VM send from).
func (n *nat) guestOf(source tcpip.Address) (netip.Addr, bool) {
	addr, ok := netip.AddrFromSlice(source.AsSlice())
	if !ok || !addr.Is4() || addr.IsUnspecified() {
		return netip.Addr{}, false
	}
	if n.oneGuest {
		return netip.Addr{}, true
	}
	return addr, true
}

// natAdmission is what admitTCP and admitUDP decide.
type natAdmission int

const (
	natAdmitted natAdmission = iota
	natClosing               // the NAT is closing
	natFull                  // the guest has its most relays
	natBusy                  // the guest has its most TCP dials
)

// admitTCP counts a TCP connection of guest, being dialled, and its
// goroutine, unless the guest is at a bound or the NAT is closing, and
// says whether it is one of the guest's first maxBuffered (natTCPBuffer,
// else natTCPSmallBuffer). An admitted connection ends with dialed (once
// its dial is over) and releaseTCP.
func (n *nat) admitTCP(guest netip.Addr) (a natAdmission, buffered bool) {
	a = n.admit(guest, 1, func(c *natGuest) natAdmission {
		switch {
		case c.tcp >= n.maxTCP:
			return natFull
		case c.dialing >= natDialsPerGuest:
			return natBusy
		}
		c.tcp++
		c.dialing++
		n.openTCP++
		if buffered = c.buffered < n.maxBuffered; buffered {
			c.buffered++
		}
		return natAdmitted
	})
	return a, buffered
}

// dialed ends the dial of a connection admitTCP admitted.
func (n *nat) dialed(guest netip.Addr) {
	n.mu.Lock()
	n.guests[guest].dialing--
	n.mu.Unlock()
}

// releaseTCP ends a connection admitTCP admitted, and its goroutine.
func (n *nat) releaseTCP(guest netip.Addr, buffered bool) {
	n.mu.Lock()
	n.guests[guest].tcp--
	if buffered {
		n.guests[guest].buffered--
	}
	n.openTCP--
	n.forgetLocked(guest)
	n.mu.Unlock()
	n.done(1)
}

// admitUDP counts a UDP flow of guest and its two goroutines, unless the
// guest is at its bound or the NAT is closing. An admitted flow ends
// with releaseUDP, its goroutines with done.
func (n *nat) admitUDP(guest netip.Addr) natAdmission {
	return n.admit(guest, 2, func(c *natGuest) natAdmission {
		if c.udp >= n.maxUDP {
			return natFull
		}
		c.udp++
		n.openUDP++
		return natAdmitted
	})
}

// admit is admitTCP's and admitUDP's common part: under n.mu, unless the
// NAT is closing, count decides on guest's entry (and counts what it
// admits), and an admission keeps the entry and counts its k goroutines.
func (n *nat) admit(guest netip.Addr, k int, count func(*natGuest) natAdmission) natAdmission {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return natClosing
	}
	c := n.guests[guest]
	if c == nil {
		c = &natGuest{}
	}
	a := count(c)
	if a != natAdmitted {
		return a
	}
	n.guests[guest] = c
	n.wg.Add(k)
	n.running.Add(int64(k))
	return natAdmitted
}

// releaseUDP ends a flow admitUDP admitted (f, once it has one).
func (n *nat) releaseUDP(guest netip.Addr, f *udpFlow) {
	n.mu.Lock()
	n.guests[guest].udp--
	n.openUDP--
	n.forgetLocked(guest)
	if f != nil {
		delete(n.flows, f)
	}
	n.mu.Unlock()
}

// forgetLocked drops guest's entry once it has no relay (n.mu held).
func (n *nat) forgetLocked(guest netip.Addr) {
	if c := n.guests[guest]; c.tcp == 0 && c.udp == 0 {
		delete(n.guests, guest)
	}
}

// done ends k goroutines admitted.
func (n *nat) done(k int) {
	n.running.Add(-int64(k))
	n.wg.Add(-k)
}

// stats returns the NAT's counters.
func (n *nat) stats() natStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return natStats{tcp: uint64(n.openTCP), udp: uint64(n.openUDP),
		refusedTCP: n.refusedTCP.Load(), refusedUDP: n.refusedUDP.Load()}
}

// expireUDP ends up to k UDP flows of guest as their idle timers would,
// for the tests.
func (n *nat) expireUDP(guest netip.Addr, k int) {
	var fs []*udpFlow
	n.mu.Lock()
	for f, g := range n.flows {
		if g == guest && len(fs) < k {
			fs = append(fs, f)
		}
	}
	n.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
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
// the host's is established, and refused (reset) when it is not or when
// the guest has natTCPPerGuest already; a SYN beyond the guest's
// natDialsPerGuest dials is dropped, for the guest to send again.
func (n *nat) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	to, ok := n.outside(id.LocalAddress)
	guest, known := n.guestOf(id.RemoteAddress)
	if !ok || !known {
		r.Complete(true)
		return
	}
	admission, buffered := n.admitTCP(guest)
	switch admission {
	case natClosing:
		r.Complete(true)
		return
	case natFull:
		n.refusedTCP.Add(1)
		r.Complete(true)
		return
	case natBusy: // dropped: the guest sends its SYN again
		n.refusedTCP.Add(1)
		r.Complete(false)
		return
	}
	defer n.releaseTCP(guest, buffered)
	ctx, cancel := context.WithTimeout(n.ctx, natDialTimeout)
	host, err := n.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(to, id.LocalPort).String())
	cancel()
	n.dialed(guest)
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
	size := int64(natTCPSmallBuffer)
	if buffered {
		size = natTCPBuffer
	}
	ep.SocketOptions().SetSendBufferSize(size, true)
	ep.SocketOptions().SetReceiveBufferSize(size, true)
	gc := gonet.NewTCPConn(&wq, ep)
	if !n.conns.add(host) {
		_ = host.Close()
		_ = gc.Close()
		return
	}
	defer n.conns.remove(host)
	if !n.conns.add(gc) {
		_ = gc.Close()
		return
	}
	defer n.conns.remove(gc)
	splice(host, gc)
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
// flow's host socket and relays its datagrams until the flow is idle, or
// drops the datagram when the guest has natUDPPerGuest flows already.
// It runs on the stack's delivery path and does not block: a UDP dial
// sends nothing.
func (n *nat) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	to, ok := n.outside(id.LocalAddress)
	guest, known := n.guestOf(id.RemoteAddress)
	if !ok || !known {
		return
	}
	switch n.admitUDP(guest) {
	case natClosing:
		return
	case natFull: // dropped: the guest's other flows go on
		n.refusedUDP.Add(1)
		return
	}
	fail := func() {
		n.releaseUDP(guest, nil)
		n.done(2)
	}
	host, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, id.LocalPort)))
	if err != nil {
		fail()
		return
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	if tcpErr != nil {
		_ = host.Close()
		fail()
		return
	}
	gc := gonet.NewUDPConn(&wq, ep)
	if !n.conns.add(host) || !n.conns.add(gc) {
		n.conns.remove(host)
		n.conns.remove(gc)
		fail()
		return
	}
	var f *udpFlow
	f = newUDPFlow(host, func(b []byte) error { _, err := gc.Write(b); return err }, func() {
		n.conns.remove(host)
		n.conns.remove(gc)
		n.releaseUDP(guest, f)
	})
	n.mu.Lock()
	if !f.ended.Load() { // else its end has been and gone
		n.flows[f] = guest
	}
	n.mu.Unlock()
	go func() {
		defer n.done(1)
		f.readFar()
	}()
	go func() {
		defer n.done(1)
		defer f.close()
		buf := make([]byte, udpMaxDatagram)
		for {
			k, err := gc.Read(buf)
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
	// ended is set as the flow ends, before end is called.
	ended atomic.Bool
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
		f.ended.Store(true)
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
	// lim counts the flows, bounded by maxFlows for this forward and
	// maxVMFlows for its VM's (forwardFlowLimits when made).
	lim                  forwardLimits
	maxFlows, maxVMFlows int64

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	wg     sync.WaitGroup // the flows' readers
}

func newUDPForward(ln *net.UDPConn, lim forwardLimits, dial func() (net.Conn, error)) *udpForward {
	return &udpForward{ln: ln, dial: dial, lim: lim, maxFlows: forwardFlowLimits.forward,
		maxVMFlows: forwardFlowLimits.vm, flows: map[netip.AddrPort]*udpFlow{}}
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
// forward is closed, when the forward or its VM has its most flows
// (counted), or when the guest cannot be dialled.
func (p *udpForward) flow(from netip.AddrPort) *udpFlow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if f, ok := p.flows[from]; ok {
		return f
	}
	if !p.lim.reserveFlow(int64(len(p.flows)), p.maxFlows, p.maxVMFlows) {
		return nil
	}
	c, err := p.dial()
	if err != nil {
		p.lim.releaseFlow()
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
		p.lim.releaseFlow()
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
