package netback

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
)

// A forward on an IPv6 host address takes its clients without the net
// package: for each connection it accepts and each datagram it reads, net
// names the peer's zone (a link-local peer's interface) from the
// interface table it fetches over a netlink socket, which the VMM's
// seccomp filter refuses, so that one link-local client stopped the VMM or
// the shared network. Here the peer's address is the kernel's, its zone a
// number. (A forward on an IPv4 address listens on IPv4 alone, whose
// peers have no zone, and keeps net's Accept and ReadFrom.)

// forwardNetwork is the network ("tcp4", "udp"...) a forward of proto on
// host address a listens on: IPv4 alone for an IPv4 address, 0.0.0.0
// included, which net would otherwise open as an IPv6 socket taking both
// (whose IPv6 peers may be link-local); an IPv6 one as net opens it ([::]
// takes both).
func forwardNetwork(proto string, a netip.Addr) string {
	if a.Is4() {
		return proto + "4"
	}
	return proto
}

// sockaddrAddrPort is sa's address and port, an IPv6 one's zone the
// interface's index as a number (never a name: naming it needs netlink).
func sockaddrAddrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// addrPortSockaddr is the IPv6 socket address of ap, as sockaddrAddrPort
// gave it (an IPv4 address as IPv4-mapped, for a socket taking both).
func addrPortSockaddr(ap netip.AddrPort) (*syscall.SockaddrInet6, error) {
	sa := &syscall.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
	if z := ap.Addr().Zone(); z != "" {
		id, err := strconv.ParseUint(z, 10, 32)
		if err != nil {
			return nil, &net.AddrError{Err: "zone is not an interface index", Addr: ap.String()}
		}
		sa.ZoneId = uint32(id)
	}
	return sa, nil
}

// retryable reports whether a call on a non-blocking socket failed only
// for now: interrupted, or a connection that was reset before it was
// accepted (net's accept goes on past those too).
func retryable(err error) bool {
	return err == syscall.EINTR || err == syscall.ECONNABORTED
}

// listenRawTCP listens on ap, an IPv6 address and port, as net.Listen
// does (address reuse, [::] taking IPv4 clients too), its socket a
// non-blocking os.File, so that the poller waits for its connections
// (a net listener's SyscallConn cannot wait).
func listenRawTCP(ap netip.AddrPort) (*os.File, error) {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	for _, o := range []struct{ level, name, val int }{
		{syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1},
		{syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0},
	} {
		if err := syscall.SetsockoptInt(fd, o.level, o.name, o.val); err != nil {
			_ = syscall.Close(fd)
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}); err != nil {
		_ = syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	// The kernel caps the backlog at net.core.somaxconn, as net's.
	if err := syscall.Listen(fd, 1<<16-1); err != nil {
		_ = syscall.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	return os.NewFile(uintptr(fd), "tcp "+ap.String()), nil
}

// acceptRaw is the next connection of ln, a listenRawTCP socket,
// accepted with accept4 and wrapped as a rawConn, the peer's address
// never named. syscall's calls, not x/sys/unix's: the latter's socket
// addresses ask the socket's protocol (getsockopt SO_PROTOCOL), which the
// filter refuses.
func acceptRaw(ln *os.File) (net.Conn, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		var (
			fd   int
			peer syscall.Sockaddr
			aerr error
		)
		err = rc.Read(func(lfd uintptr) bool {
			for {
				fd, peer, aerr = syscall.Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
				if !retryable(aerr) {
					return aerr != syscall.EAGAIN
				}
			}
		})
		if err == nil && aerr != nil {
			err = os.NewSyscallError("accept4", aerr)
		}
		if err != nil {
			return nil, err
		}
		// What net sets on the connections it accepts: no delay for
		// interactive clients, keep-alive so that a vanished client's
		// relay ends (15 s idle, 15 s apart, 9 probes: net's defaults).
		for _, o := range []struct{ level, name, val int }{
			{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
		} {
			_ = syscall.SetsockoptInt(fd, o.level, o.name, o.val)
		}
		local, err := syscall.Getsockname(fd)
		if err != nil {
			// That connection is gone (reset already); the port goes on.
			_ = syscall.Close(fd)
			continue
		}
		c := &rawConn{
			local:  net.TCPAddrFromAddrPort(sockaddrAddrPort(local)),
			remote: net.TCPAddrFromAddrPort(sockaddrAddrPort(peer)),
		}
		// Non-blocking, so the file's reads and writes wait in the
		// poller as net's do.
		c.f = os.NewFile(uintptr(fd), "tcp "+c.local.String()+"<-"+c.remote.String())
		return c, nil
	}
}

// rawConn is a TCP connection acceptRaw took: its socket as an os.File,
// with the addresses the kernel gave. Only Read and Write are passed on
// (not os.File's ReadFrom or WriteTo, whose file copies are meant for
// files).
type rawConn struct {
	f             *os.File
	local, remote *net.TCPAddr
}

func (c *rawConn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *rawConn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *rawConn) Close() error                       { return c.f.Close() }
func (c *rawConn) LocalAddr() net.Addr                { return c.local }
func (c *rawConn) RemoteAddr() net.Addr               { return c.remote }
func (c *rawConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *rawConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *rawConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// SyscallConn is the socket's, for waitHangup's peek.
func (c *rawConn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// CloseWrite ends the stream to the peer, leaving the other way open.
func (c *rawConn) CloseWrite() error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}

// udpHostPort is the host socket of a UDP forward as udpForward uses it.
type udpHostPort interface {
	// readFrom reads a datagram into b: its length and sender.
	readFrom(b []byte) (int, netip.AddrPort, error)
	// writeTo sends b to a sender readFrom gave.
	writeTo(b []byte, to netip.AddrPort) error
	Close() error
}

// netUDPPort is a UDP forward's IPv4 socket, whose peers net's ReadFrom
// takes as they are.
type netUDPPort struct{ *net.UDPConn }

func (p netUDPPort) readFrom(b []byte) (int, netip.AddrPort, error) {
	return p.ReadFromUDPAddrPort(b)
}

func (p netUDPPort) writeTo(b []byte, to netip.AddrPort) error {
	_, err := p.WriteToUDPAddrPort(b, to)
	return err
}

// rawUDPPort is a UDP forward's IPv6 socket, read with recvfrom and
// written with sendto, the peers' addresses never named.
type rawUDPPort struct {
	c  *net.UDPConn
	rc syscall.RawConn
}

func newRawUDPPort(c *net.UDPConn) (*rawUDPPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawUDPPort{c: c, rc: rc}, nil
}

func (p *rawUDPPort) readFrom(b []byte) (int, netip.AddrPort, error) {
	var (
		n    int
		from syscall.Sockaddr
		rerr error
	)
	err := p.rc.Read(func(fd uintptr) bool {
		for {
			n, from, rerr = syscall.Recvfrom(int(fd), b, 0)
			// A datagram has a sender; one without (none of UDP's) is
			// passed over.
			if rerr != syscall.EINTR && (rerr != nil || from != nil) {
				return rerr != syscall.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, sockaddrAddrPort(from), nil
}

func (p *rawUDPPort) writeTo(b []byte, to netip.AddrPort) error {
	sa, err := addrPortSockaddr(to)
	if err != nil {
		return err
	}
	var werr error
	err = p.rc.Write(func(fd uintptr) bool {
		for {
			werr = syscall.Sendto(int(fd), b, 0, sa)
			if werr != syscall.EINTR {
				return werr != syscall.EAGAIN
			}
		}
	})
	if err == nil {
		err = werr
	}
	return err
}

func (p *rawUDPPort) Close() error { return p.c.Close() }
