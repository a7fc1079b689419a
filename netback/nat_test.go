package netback_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/smolvmm/smolvmm/netback"
)

// A guest's UDP datagrams to the gateway reach the host's loopback, the
// replies come back, and the datagrams of one flow leave from one host
// socket.
func TestUserGuestUDPToHost(t *testing.T) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	froms := make(chan netip.AddrPort, 2)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			froms <- from
			pc.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	g := startGuest(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c, err := gonet.DialUDP(g.Stack, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: uint16(port)}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"one", "two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "echo:"+msg {
			t.Fatalf("reply to %q: %q, %v", msg, buf[:n], err)
		}
	}
	if a, b := <-froms, <-froms; a != b || !a.Addr().IsLoopback() {
		t.Errorf("the flow's datagrams came from %v and %v: want one loopback socket", a, b)
	}
}

// Connections the NAT does not make are refused at once (reset), not
// left to time out: nothing listening on the host's port, or an address
// in 169.254.0.0/16 (a cloud metadata service, not the host's to offer).
func TestUserNATRefuses(t *testing.T) {
	g := startGuest(t)
	tests := []struct {
		name string
		to   netip.AddrPort
	}{
		{"closed host port", netip.AddrPortFrom(netback.UserGateway, freePort(t, "tcp"))},
		{"link-local", netip.MustParseAddrPort("169.254.169.254:80")},
		{"the DNS server's address, not port 53", netip.AddrPortFrom(netback.UserDNS, 80)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := g.DialTCP(ctx, tt.to)
			if err == nil {
				c.Close()
				t.Fatalf("guest connected to %v", tt.to)
			}
			if ctx.Err() != nil {
				t.Fatalf("connect to %v: %v after the context ended: want a refusal", tt.to, err)
			}
		})
	}
}

// Close ends the guest's open connections to the host and joins their
// relays: the host side sees the end of the stream.
func TestUserCloseEndsGuestConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g, u := startGuestOn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gc, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, uint16(ln.Addr().(*net.TCPAddr).Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	hc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if n := netback.NATRelays(u); n != 1 {
		t.Fatalf("%d relays with one connection open, want 1", n)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if n := netback.NATRelays(u); n != 0 {
		t.Errorf("%d relays still running after Close", n)
	}
	hc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := hc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) || os.IsTimeout(err) {
		t.Errorf("host side after Close: %v, want EOF", err)
	}
}
