// Package portready tells when a guest service behind a forwarded host port
// is up. A successful connect alone proves nothing there: the user
// network's forwarder accepts on the host at once and only then connects to
// the guest, closing the host side when the guest refuses, and keeping it
// open while a guest that does not answer is asked again. Probe counts a
// port ready when a connection to it is answered (the peer sends a byte) or
// held open for Hold: right for a host port that reaches the guest itself
// (a tap behind a NAT rule), not for such a forwarder. There, a VMM
// watches the frames the guest sends for its SYN-ACK (Accepted), and
// connects to the host port (StartDialing) only to make the forwarder ask
// the guest.
package portready

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Hold is how long a connection must stay open, without data, to count.
const Hold = 100 * time.Millisecond

// dialTimeout bounds one connect attempt.
const dialTimeout = 100 * time.Millisecond

// dialer makes the probes' connections. Without MPTCP whatever GODEBUG
// says: its first dial probes the kernel (bind, uname), which a VMM's
// seccomp filter refuses.
var dialer = func() *net.Dialer {
	d := &net.Dialer{Timeout: dialTimeout}
	d.SetMultipathTCP(false)
	return d
}()

// SplitAddr splits the TCP address addr into its host and port number,
// refusing an address a probe could never connect to: one without a
// port, or whose port is no number (or service name) from 1 to 65535.
func SplitAddr(addr string) (host string, port uint16, err error) {
	host, name, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := net.LookupPort("tcp", name)
	if err != nil {
		return "", 0, err
	}
	if n == 0 {
		return "", 0, errors.New("port 0 is no port to connect to")
	}
	return host, uint16(n), nil
}

// LookupFunc looks a host name up, as net.Resolver.LookupNetIP does.
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// Resolve returns the addresses a probe of the TCP address addr connects
// to, each an IP address and port number: addr's own when its host is an
// IP address (an unspecified one, "0.0.0.0" or "::", as it is: a connect
// to it reaches the local system), the loopback addresses 127.0.0.1 then
// ::1 when its host is empty (":8080", which net.Dial takes for the local
// system, trying IPv4), else those lookup (net.DefaultResolver.LookupNetIP
// when nil) gives for its host, in that order, each with addr's port (a
// number or service name). A VMM resolves once, before its sandbox: a lookup
// reads files, calls uname and may open sockets to a name server, which
// the sandbox refuses, and leaves goroutines of its own behind; a dial of
// an IP address does neither.
func Resolve(ctx context.Context, addr string, lookup LookupFunc) ([]string, error) {
	host, port, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{netip.AddrPortFrom(ip, port).String()}, nil
	}
	if host == "" {
		// No name to look up: a lookup of "" fails ("no such host").
		return []string{
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port).String(),
			netip.AddrPortFrom(netip.IPv6Loopback(), port).String(),
		}, nil
	}
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	ips, err := lookup(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("host %s has no address", host)
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.AddrPortFrom(ip.Unmap(), port).String()
	}
	return addrs, nil
}

// Probe connects once to the first of the TCP addresses addrs that takes
// a connection, trying them in order, as a dial of a host name tries its
// addresses. It reports whether the port is ready and, if so, when the
// connection was made.
func Probe(addrs ...string) (time.Time, bool) {
	var c net.Conn
	for _, addr := range addrs {
		var err error
		if c, err = dialer.Dial("tcp", addr); err == nil {
			break
		}
	}
	if c == nil {
		return time.Time{}, false
	}
	at := time.Now()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(Hold))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	return at, n > 0 || (errors.As(err, &ne) && ne.Timeout())
}

// Wait probes addr every interval until it is ready, and returns when the
// ready connection was made. It gives up, returning false, once done is
// closed.
func Wait(addr string, every time.Duration, done <-chan struct{}) (time.Time, bool) {
	return wait([]string{addr}, every, done)
}

// wait is Wait of the addresses addrs (Probe).
func wait(addrs []string, every time.Duration, done <-chan struct{}) (time.Time, bool) {
	for {
		if at, ok := Probe(addrs...); ok {
			return at, true
		}
		select {
		case <-done:
			return time.Time{}, false
		case <-time.After(every):
		}
	}
}

// Prober probes an address on a goroutine of its own until the address is
// ready or the Prober is stopped.
type Prober struct {
	done     chan struct{}
	stopOnce sync.Once
	finished chan struct{}
}

// Start probes the addresses addrs (Probe) every interval until one is
// ready, then calls found once, on the Prober's goroutine, with the time
// the ready connection was made. Stop ends it.
func Start(addrs []string, every time.Duration, found func(time.Time)) *Prober {
	p := &Prober{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		if at, ok := wait(addrs, every, p.done); ok {
			found(at)
		}
	}()
	return p
}

// Stop ends the probing and returns once the Prober's goroutine has, a
// found call in progress included. It may be called more than once, from
// any goroutine but found's.
func (p *Prober) Stop() {
	p.stopOnce.Do(func() { close(p.done) })
	<-p.finished
}

// StartDialing connects to the addresses addrs (Probe) again and again,
// every interval apart, each connection held as Probe holds it, until
// until reports true or the Prober is stopped: connections that count for
// nothing themselves, but make a forwarder behind addrs connect to the
// guest, whose answer the caller watches for (Accepted). Stop ends it.
func StartDialing(addrs []string, every time.Duration, until func() bool) *Prober {
	p := &Prober{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		for !until() {
			Probe(addrs...)
			select {
			case <-p.done:
				return
			case <-time.After(every):
			}
		}
	}()
	return p
}
