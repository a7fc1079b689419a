package netback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/services/forwarder"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// forwardDialTimeout bounds how long a host connection waits for the guest
// to accept (the guest may not be up yet, or not listening).
const forwardDialTimeout = 10 * time.Second

// forward starts listening on the host for one Forward to the guest at
// addr. stop ends it: the host socket and every open connection close; the
// gateway's close waits for its goroutines.
func (g *gateway) forward(f Forward, addr netip.Addr) (stop func() error, err error) {
	local := netip.AddrPortFrom(f.HostAddr, f.HostPort).String()
	guest := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(addr.As4()), Port: f.GuestPort}
	switch f.Proto {
	case "tcp":
		ln, err := net.Listen("tcp", local)
		if err != nil {
			return nil, forwardListenErr(f, err)
		}
		t := &tcpForward{g: g, ln: ln, guest: guest}
		g.wg.Add(1)
		go t.serve()
		return t.close, nil
	case "udp":
		addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.HostAddr, f.HostPort))
		lc, err := net.ListenUDP("udp", addr)
		if err != nil {
			return nil, forwardListenErr(f, err)
		}
		p, err := forwarder.NewUDPProxy(lc, func() (net.Conn, error) {
			return gonet.DialUDP(g.stack, nil, &guest, ipv4.ProtocolNumber)
		})
		if err != nil {
			_ = lc.Close()
			return nil, fmt.Errorf("port forward %s: %w", f, err)
		}
		g.goServe(func() error { p.Run(); return nil })
		return p.Close, nil
	}
	return nil, fmt.Errorf("port forward %s: protocol %q is neither tcp nor udp", f, f.Proto)
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
	g     *gateway
	ln    net.Listener
	guest tcpip.FullAddress
	conns connSet // host and guest sides of the relays
}

func (t *tcpForward) serve() {
	defer t.g.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		if !t.conns.add(c) {
			_ = c.Close()
			return
		}
		t.g.wg.Add(1)
		go t.relay(c)
	}
}

// relay copies both ways between a host connection and a new connection
// to the guest, passing each side's end of stream on as a half close.
func (t *tcpForward) relay(host net.Conn) {
	defer t.g.wg.Done()
	defer t.conns.remove(host)
	ctx, cancel := context.WithTimeout(context.Background(), forwardDialTimeout)
	guest, err := gonet.DialContextTCP(ctx, t.g.stack, t.guest, ipv4.ProtocolNumber)
	cancel()
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
	if hc, ok := host.(*net.TCPConn); ok {
		_ = hc.CloseWrite()
	}
	<-done
}

// close stops accepting and ends every open connection.
func (t *tcpForward) close() error {
	err := t.ln.Close()
	t.conns.closeAll()
	return err
}
