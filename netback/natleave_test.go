package netback_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// A VM that leaves the hub without closing its connections (its process
// ended) and does not rejoin within the grace takes its NAT relays with
// it: the host's end of its TCP
// connection is closed, its UDP flow ends, and the same VM started again
// (same MAC, same address) has its whole NAT bound, not the remains of
// its last run counted against it.
func TestHubNATEndsWithVM(t *testing.T) {
	defer netback.SetNATLimits(1, 1)()
	defer netback.SetHubNATGrace(time.Second)() // the VM does not rejoin
	h := startHub(t, testsock.Dir(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	tcpPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	udpPort := echoUDP(t)

	open := func(t *testing.T) {
		t.Helper()
		g, _ := joinGuest(t, h, testMAC(7))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, tcpPort))
		if err != nil {
			t.Fatalf("TCP connection: %v", err)
		}
		_ = c // left open: the VM goes without closing it
		u, err := gonet.DialUDP(g.Stack, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: udpPort}, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoes(u, "udp"); err != nil {
			t.Fatalf("UDP flow: %v", err)
		}
		g.Close()
	}

	open(t)
	host := <-accepted
	defer host.Close()
	waitFor(t, "the VM's NAT relays to end after it left", func() bool {
		s := h.Stats()
		return s.VMs == 0 && s.NATConns == 0 && s.NATFlows == 0
	})
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := host.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("host's end of the departed VM's connection: %v, want it closed", err)
	}
	open(t) // at the bounds of 1 connection and 1 flow: none left over
	(<-accepted).Close()
}

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A VM that leaves while the host sends it more than it reads (its
// connection's window shut, the gateway's send buffer full) has its NAT
// relay ended too: closing it wakes the relay's writer.
func TestHubNATEndsWithVMWhileHostSends(t *testing.T) {
	defer netback.SetHubNATGrace(time.Second)()
	h := startHub(t, testsock.Dir(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// full is closed once a write of the host's has taken nothing for
	// 200 ms: the guest's window and every buffer on the way are full,
	// the relay's writer blocked.
	full := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for blocked := false; ; {
			if !blocked {
				_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			}
			n, err := c.Write(buf)
			switch {
			case !blocked && n == 0 && isTimeout(err):
				blocked = true
				_ = c.SetWriteDeadline(time.Time{})
				close(full)
			case err != nil && !isTimeout(err):
				return
			}
		}
	}()
	g, _ := joinGuest(t, h, testMAC(7))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, uint16(ln.Addr().(*net.TCPAddr).Port)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The guest reads no more: the window fills.
	select {
	case <-full:
	case <-ctx.Done():
		t.Fatal("the host's writes never stopped: the relay kept taking them")
	}
	g.Close()
	waitFor(t, "the VM's NAT relay to end after it left", func() bool { s := h.Stats(); return s.VMs == 0 && s.NATConns == 0 })
}
