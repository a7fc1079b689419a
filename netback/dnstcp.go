package netback

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	// dnsTCPPerGuest bounds the DNS-over-TCP connections one guest holds
	// open to the gateway at once: each is a goroutine and an endpoint
	// in the network's process, and the NAT's bound does not count
	// them. A stub resolver (NetBSD's libc) opens one per truncated
	// query and closes it once answered, so a guest needs about as many
	// as it has queries answered at once (hostDNSPerGuest); twice that
	// leaves room for connections the guest closed that the server has
	// not yet seen end. Beyond it a connection is reset at once.
	dnsTCPPerGuest = 2 * hostDNSPerGuest
	// dnsTCPBuffer is each DNS connection's send and receive buffer:
	// room for a few queries and a common answer. A longer answer is
	// written as the guest reads it; a guest that sends queries and
	// reads no answer holds no more than this each way.
	dnsTCPBuffer = 16 << 10
	// dnsTCPBacklog is the DNS listeners' backlog.
	dnsTCPBacklog = 1024
	// dnsTCPFirstQuery is how long a DNS connection waits for its first
	// query, dnsTCPIdle for each one after; then the server closes it
	// (miekg/dns's defaults, named so that the tests can lengthen them).
	dnsTCPFirstQuery = 2 * time.Second
	dnsTCPIdle       = 8 * time.Second
)

// dnsTCPFirstQueryFor and dnsTCPIdleFor are dnsTCPFirstQuery and
// dnsTCPIdle, variables for the tests: a test holding connections open
// on a slow host must not have them closed under it. A gateway reads
// them once, when it starts.
var (
	dnsTCPFirstQueryFor = dnsTCPFirstQuery
	dnsTCPIdleFor       = dnsTCPIdle
)

// errDNSListenerClosed is Accept's error once the listener is closed.
var errDNSListenerClosed = errors.New("DNS listener closed")

// dnsTCPListener is the gateway's DNS-over-TCP listener: it accepts at
// most dnsTCPPerGuest connections from each guest at once, with
// dnsTCPBuffer buffers, resetting the others (counted in refused).
type dnsTCPListener struct {
	ep   tcpip.Endpoint
	wq   waiter.Queue
	addr net.Addr
	// oneGuest counts every source address as the one guest's (the
	// single-VM user network, where the guest may use any address).
	oneGuest bool
	// open and refused are shared by the gateway's listeners, so that
	// a guest's connections to either DNS address count together.
	open    *dnsConnCount
	refused *atomic.Uint64

	closeOnce sync.Once
	closed    chan struct{}
}

// dnsConnCount is each guest's open DNS connections; a guest with none
// has no entry.
type dnsConnCount struct {
	mu    sync.Mutex
	conns map[netip.Addr]int
	total atomic.Int64
}

func newDNSConnCount() *dnsConnCount { return &dnsConnCount{conns: map[netip.Addr]int{}} }

// take counts a connection of guest, false if it has its most already.
func (c *dnsConnCount) take(guest netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[guest] >= dnsTCPPerGuest {
		return false
	}
	c.conns[guest]++
	c.total.Add(1)
	return true
}

// release forgets a connection of guest taken before.
func (c *dnsConnCount) release(guest netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[guest]--; c.conns[guest] <= 0 {
		delete(c.conns, guest)
	}
	c.total.Add(-1)
}

// listenDNSTCP listens on fa for DNS over TCP.
func listenDNSTCP(s *stack.Stack, fa tcpip.FullAddress, oneGuest bool, open *dnsConnCount, refused *atomic.Uint64) (*dnsTCPListener, error) {
	l := &dnsTCPListener{oneGuest: oneGuest, open: open, refused: refused, closed: make(chan struct{}),
		addr: &net.TCPAddr{IP: net.IP(fa.Addr.AsSlice()), Port: int(fa.Port)}}
	ep, err := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &l.wq)
	if err != nil {
		return nil, errors.New(err.String())
	}
	// The connections accepted take the listener's receive buffer.
	ep.SocketOptions().SetReceiveBufferSize(dnsTCPBuffer, true)
	if err := ep.Bind(fa); err != nil {
		ep.Close()
		return nil, errors.New(err.String())
	}
	// Accept takes the handshakes done at once, so the backlog only
	// rides out many guests connecting together.
	if err := ep.Listen(dnsTCPBacklog); err != nil {
		ep.Close()
		return nil, errors.New(err.String())
	}
	l.ep = ep
	return l, nil
}

// Accept waits for a guest's connection within its bound.
func (l *dnsTCPListener) Accept() (net.Conn, error) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		ep, wq, err := l.ep.Accept(nil)
		if _, ok := err.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-l.closed:
				return nil, errDNSListenerClosed
			case <-notify:
			}
			continue
		}
		if err != nil {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: errors.New(err.String())}
		}
		var guest netip.Addr
		if !l.oneGuest {
			if ra, rerr := ep.GetRemoteAddress(); rerr == nil {
				guest = netip.AddrFrom4(ra.Addr.As4())
			}
		}
		if !l.open.take(guest) {
			l.refused.Add(1)
			ep.Abort()
			continue
		}
		ep.SocketOptions().SetSendBufferSize(dnsTCPBuffer, true)
		return &dnsTCPConn{TCPConn: gonet.NewTCPConn(wq, ep), guest: guest, open: l.open}, nil
	}
}

// Close stops the listener; connections accepted stay open.
func (l *dnsTCPListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.ep.Close()
	})
	return nil
}

// Addr is the address listened on.
func (l *dnsTCPListener) Addr() net.Addr { return l.addr }

// dnsTCPConn is an accepted DNS connection, counted for its guest until
// closed.
type dnsTCPConn struct {
	*gonet.TCPConn
	guest netip.Addr
	open  *dnsConnCount
	once  sync.Once
}

// Close closes the connection and releases its guest's count.
func (c *dnsTCPConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(func() { c.open.release(c.guest) })
	return err
}
