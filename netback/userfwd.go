package netback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// Bounds on the host connections of TCP port forwards that wait for the
// guest to accept (pending): each holds a host socket, a goroutine and a
// half-open gVisor endpoint, and a local program looping on connect to a
// guest that does not answer would otherwise make as many as it likes (a
// test made 17,549 in 10 s, 400 MiB). A real service's clients wait for
// their connection once, a handful at a time; a guest that answers takes
// each off the list within a round trip, so even a burst of hundreds of
// clients at a busy guest rarely has more than a few dozen waiting at
// once. Beyond a bound the host connection is closed at once (counted in
// ForwardsRefused), as a full listen backlog would refuse it. Established
// connections are not bounded: the guest chose to accept them.
const (
	// forwardDialTimeout bounds how long a host connection waits for the
	// guest to accept. A guest that is up answers a SYN at once (accept
	// or reset) and an address nobody holds fails its ARP within about
	// 3 s; 5 s leaves a lossy link two SYN retransmissions.
	forwardDialTimeout = 5 * time.Second
	// maxPendingPerForward is the most pending connections of one forward.
	maxPendingPerForward = 128
	// maxPendingPerVM is the most pending connections of all of one
	// VM's forwards together.
	maxPendingPerVM = 256
)

// Bounds on the client flows of UDP port forwards: each client address
// that sends to a forwarded host port gets a flow of its own (a gVisor
// endpoint, a goroutine and a 64 KiB buffer) for udpIdleTimeout after its
// last datagram, and a local program sending from ever new source ports
// would otherwise make as many as it likes (140,000 datagrams took a
// shared network to 513 MB). A UDP service's clients are a few dozen at
// once (a game server's players, the resolvers asking a DNS server);
// 256 per forward allow about 3 new clients a second without end. Beyond
// a bound the datagram that would start a flow is dropped and counted
// (ForwardFlowsRefused), as a NAT with a full table drops it; the flows
// there are go on, and a client that stops frees its flow when it idles
// out.
const (
	// maxFlowsPerForward is the most client flows of one UDP forward.
	maxFlowsPerForward = 256
	// maxFlowsPerVM is the most client flows of all of one VM's UDP
	// forwards together.
	maxFlowsPerVM = 512
)

// forwardFlowLimits are maxFlowsPerForward and maxFlowsPerVM, a variable
// for the tests (read when a forward starts).
var forwardFlowLimits = struct{ forward, vm int64 }{maxFlowsPerForward, maxFlowsPerVM}

// forwardDialTimeoutFor is forwardDialTimeout, a variable for the tests.
var forwardDialTimeoutFor = forwardDialTimeout

// forwardCounts counts the pending and refused forwarded connections, and
// the UDP forwards' client flows and the datagrams refused a flow, of one
// VM, or of all a hub's VMs.
type forwardCounts struct {
	pending atomic.Int64
	refused atomic.Uint64

	flows        atomic.Int64
	flowsRefused atomic.Uint64
}

// forwardLimits are the counters one forward charges: its VM's, bounded
// by maxPendingPerVM and maxFlowsPerVM, and the whole network's (nil for a
// User, whose one VM is the network), only counted.
type forwardLimits struct {
	vm, all *forwardCounts
}

// forward starts listening on the host for one Forward to the guest at
// addr, its pending connections charged to lim. stop ends it: the host
// socket and every open connection close; the gateway's close waits for
// its goroutines.
func (g *gateway) forward(f Forward, addr netip.Addr, lim forwardLimits) (stop func() error, err error) {
	local := netip.AddrPortFrom(f.HostAddr, f.HostPort).String()
	guest := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(addr.As4()), Port: f.GuestPort}
	network := forwardNetwork(f.Proto, f.HostAddr)
	switch f.Proto {
	case "tcp":
		var ln io.Closer
		var accept func() (net.Conn, error)
		if f.HostAddr.Is6() {
			rl, err := listenRawTCP(netip.AddrPortFrom(f.HostAddr, f.HostPort))
			if err != nil {
				return nil, forwardListenErr(f, err)
			}
			ln, accept = rl, func() (net.Conn, error) { return acceptRaw(rl) }
		} else {
			nl, err := net.Listen(network, local)
			if err != nil {
				return nil, forwardListenErr(f, err)
			}
			ln, accept = nl, nl.Accept
		}
		ctx, cancel := context.WithCancel(context.Background())
		t := &tcpForward{g: g, ln: ln, accept: accept, guest: guest, lim: lim, ctx: ctx, cancel: cancel}
		g.wg.Add(1)
		go t.serve()
		return t.close, nil
	case "udp":
		addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.HostAddr, f.HostPort))
		lc, err := net.ListenUDP(network, addr)
		if err != nil {
			return nil, forwardListenErr(f, err)
		}
		var port udpHostPort = netUDPPort{lc}
		if f.HostAddr.Is6() {
			if port, err = newRawUDPPort(lc); err != nil {
				lc.Close()
				return nil, forwardListenErr(f, err)
			}
		}
		p := newUDPForward(port, lim, func() (net.Conn, error) {
			return gonet.DialUDP(g.stack, nil, &guest, ipv4.ProtocolNumber)
		})
		g.goServe(p.serve)
		return p.close, nil
	}
	return nil, fmt.Errorf("port forward %s: protocol %q is neither tcp nor udp", f, f.Proto)
}

// CheckForwardPorts binds the host socket of each of the user network's
// forwards fs, as NewUser would, and closes it again: a port another
// program holds, one below 1024 without the right to bind it, or an
// address that is not the host's is refused now, in NewUser's words, by a
// caller with work to do before it opens the network.
func CheckForwardPorts(fs []Forward) error {
	for _, f := range fs {
		ap := netip.AddrPortFrom(f.HostAddr, f.HostPort)
		var c io.Closer
		var err error
		switch f.Proto {
		case "tcp":
			c, err = net.Listen(forwardNetwork(f.Proto, f.HostAddr), ap.String())
		case "udp":
			c, err = net.ListenUDP(forwardNetwork(f.Proto, f.HostAddr), net.UDPAddrFromAddrPort(ap))
		default:
			return fmt.Errorf("port forward %s: protocol %q is neither tcp nor udp", f, f.Proto)
		}
		if err != nil {
			return forwardListenErr(f, err)
		}
		c.Close()
	}
	return nil
}

// forwardListenErr explains the usual reasons a host port cannot be bound.
func forwardListenErr(f Forward, err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "the host port is already in use: choose another host port or stop the program using it"
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE: choose a host port of 1024 or more"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "the host address is not one of this host's addresses"
	default:
		hint = "cannot listen on the host"
	}
	return fmt.Errorf("port forward %s: %s: %w", f, hint, err)
}

// tcpForward relays connections accepted on a host port to the guest.
type tcpForward struct {
	g  *gateway
	ln io.Closer // the host socket
	// accept is ln's next connection (acceptRaw on an IPv6 address).
	accept func() (net.Conn, error)
	guest  tcpip.FullAddress
	conns  connSet // host and guest sides of the relays
	lim    forwardLimits
	// pending counts this forward's connections waiting for the guest.
	pending atomic.Int64
	// ctx ends the dials to the guest when the forward closes.
	ctx    context.Context
	cancel context.CancelFunc
}

// reserve takes a pending slot of the forward and of its VM; false, taking
// nothing and counting a refusal, when either is full.
func (t *tcpForward) reserve() bool {
	if t.pending.Add(1) <= maxPendingPerForward {
		if t.lim.vm.pending.Add(1) <= maxPendingPerVM {
			if t.lim.all != nil {
				t.lim.all.pending.Add(1)
			}
			return true
		}
		t.lim.vm.pending.Add(-1)
	}
	t.pending.Add(-1)
	t.lim.vm.refused.Add(1)
	if t.lim.all != nil {
		t.lim.all.refused.Add(1)
	}
	return false
}

// release gives back a slot reserve took.
func (t *tcpForward) release() {
	t.pending.Add(-1)
	t.lim.vm.pending.Add(-1)
	if t.lim.all != nil {
		t.lim.all.pending.Add(-1)
	}
}

// reserveFlow takes a flow of the VM for one of its forwards that has
// forward flows already; false, taking nothing and counting a refusal,
// when that forward has maxForward or the VM maxVM.
func (l forwardLimits) reserveFlow(forward, maxForward, maxVM int64) bool {
	if forward < maxForward {
		if l.vm.flows.Add(1) <= maxVM {
			if l.all != nil {
				l.all.flows.Add(1)
			}
			return true
		}
		l.vm.flows.Add(-1)
	}
	l.vm.flowsRefused.Add(1)
	if l.all != nil {
		l.all.flowsRefused.Add(1)
	}
	return false
}

// releaseFlow gives back a flow reserveFlow took.
func (l forwardLimits) releaseFlow() {
	l.vm.flows.Add(-1)
	if l.all != nil {
		l.all.flows.Add(-1)
	}
}

func (t *tcpForward) serve() {
	defer t.g.wg.Done()
	for {
		c, err := t.accept()
		if err != nil {
			return
		}
		if !t.reserve() {
			_ = c.Close()
			continue
		}
		if !t.conns.add(c) {
			t.release()
			_ = c.Close()
			return
		}
		t.g.wg.Add(1)
		go t.relay(c)
	}
}

// relay copies both ways between a host connection and a new connection
// to the guest, passing each side's end of stream on as a half close. It
// holds a pending slot (reserve) until the guest answers.
func (t *tcpForward) relay(host net.Conn) {
	defer t.g.wg.Done()
	defer t.conns.remove(host)
	guest, err := t.dial(host)
	t.release()
	if err != nil {
		return
	}
	if !t.conns.add(guest) {
		_ = guest.Close()
		return
	}
	defer t.conns.remove(guest)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(guest, host)
		_ = guest.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(host, guest)
	if hc, ok := host.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	<-done
}

// dial connects to the guest for host, giving up after
// forwardDialTimeoutFor, when the forward closes, or when the host side
// hangs up first (so that a client that gave up frees its slot at once).
func (t *tcpForward) dial(host net.Conn) (*gonet.TCPConn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, forwardDialTimeoutFor)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if waitHangup(ctx, host) {
			cancel()
		}
	}()
	guest, err := gonet.DialContextTCP(ctx, t.g.stack, t.guest, ipv4.ProtocolNumber)
	cancel()
	<-watched
	return guest, err
}

// waitHangup waits, reading nothing, until c has data or end of stream
// (true for the latter) or ctx ends. Data stays for the relay to read.
func waitHangup(ctx context.Context, c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	set := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.SetReadDeadline(time.Unix(1, 0))
		close(set)
	})
	hangup := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return false // wait until readable
		}
		hangup = n == 0 || err != nil
		return true
	})
	if !stop() {
		// The deadline was set (or is being set): clear it for the relay.
		<-set
		_ = c.SetReadDeadline(time.Time{})
	}
	return hangup
}

// close stops accepting, ends the dials to the guest and every open
// connection.
func (t *tcpForward) close() error {
	err := t.ln.Close()
	t.cancel()
	t.conns.closeAll()
	return err
}
