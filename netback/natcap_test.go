package netback_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// echoTCP echoes every connection to a host TCP port until the test ends.
func echoTCP(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveEcho(ln)
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// echoUDP echoes every datagram to a host UDP port until the test ends.
func echoUDP(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// echoes reports whether c answers a message with itself.
func echoes(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != msg {
		return fmt.Errorf("answer %q to %q", buf[:n], msg)
	}
	return nil
}

// openEchoing opens a connection or flow from g to port with open and
// fails t unless it echoes what; it is closed when the test ends.
func openEchoing(t *testing.T, open func(g *stackguest.Guest, port uint16) (net.Conn, error), g *stackguest.Guest, port uint16, what string) net.Conn {
	t.Helper()
	c, err := open(g, port)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := echoes(c, what); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return c
}

// dialGatewayUDP opens a UDP flow from g to port on the gateway, which
// the NAT relays to the host's port.
func dialGatewayUDP(g *stackguest.Guest, port uint16) (net.Conn, error) {
	return gonet.DialUDP(g.Stack, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: port}, ipv4.ProtocolNumber)
}

// A guest has at most so many TCP connections and UDP flows through a
// hub's NAT: beyond them a SYN is refused and a new flow's datagram
// dropped (and counted), while its earlier ones go on, another guest on
// the hub still gets new ones, and the first gets new ones again once
// some of its own have ended.
func TestHubNATBoundsPerGuest(t *testing.T) {
	const limit = 4
	defer netback.SetNATLimits(limit, limit)()
	tests := []struct {
		name string
		// serve starts the host's echo server, open opens a connection
		// or flow from g to it: an error for a TCP connection refused,
		// nothing for a UDP flow, whose first datagram is not answered.
		serve func(t *testing.T) uint16
		open  func(g *stackguest.Guest, port uint16) (net.Conn, error)
		// refused is the count of refusals in the hub's stats, open the
		// count of connections or flows.
		refused, count func(netback.HubStats) uint64
		// free ends k of guest's connections or flows (conns).
		free func(h *netback.Hub, guest netip.Addr, conns []net.Conn, k int)
	}{
		{
			name:  "tcp",
			serve: echoTCP,
			open: func(g *stackguest.Guest, port uint16) (net.Conn, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
				if err != nil && ctx.Err() != nil {
					return nil, fmt.Errorf("no answer to the SYN: %w", err)
				}
				return c, err
			},
			refused: func(s netback.HubStats) uint64 { return s.NATRefusedConns },
			count:   func(s netback.HubStats) uint64 { return s.NATConns },
			free: func(_ *netback.Hub, _ netip.Addr, conns []net.Conn, k int) {
				for _, c := range conns[:k] {
					c.Close()
				}
			},
		},
		{
			name:    "udp",
			serve:   echoUDP,
			open:    dialGatewayUDP,
			refused: func(s netback.HubStats) uint64 { return s.NATRefusedFlows },
			count:   func(s netback.HubStats) uint64 { return s.NATFlows },
			free: func(h *netback.Hub, guest netip.Addr, _ []net.Conn, k int) {
				netback.ExpireHubUDPFlows(h, guest, k)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := tt.serve(t)
			h := startHub(t, testsock.Dir(t))
			a, ja := joinGuest(t, h, testMAC(1))
			b, _ := joinGuest(t, h, testMAC(2))
			open := func(g *stackguest.Guest, what string) net.Conn {
				t.Helper()
				return openEchoing(t, tt.open, g, port, what)
			}
			var conns []net.Conn
			for i := range limit {
				conns = append(conns, open(a, fmt.Sprintf("a%d", i)))
			}

			// One beyond the bound: refused, and counted.
			c, err := tt.open(a, port)
			switch {
			case tt.name == "tcp" && err == nil:
				c.Close()
				t.Fatalf("guest a connected beyond its %d connections", limit)
			case tt.name == "tcp":
				t.Logf("beyond the bound: %v", err)
			case err != nil:
				t.Fatal(err)
			default:
				defer c.Close()
				if _, err := c.Write([]byte("beyond")); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the refusal to be counted", func() bool { return tt.refused(h.Stats()) == 1 })
			for i, c := range conns {
				if err := echoes(c, fmt.Sprintf("a%d again", i)); err != nil {
					t.Errorf("guest a's earlier %d: %v", i, err)
				}
			}

			// Another guest is not held back by a's bound.
			open(b, "b0")
			if s := h.Stats(); tt.count(s) != limit+1 || tt.refused(s) != 1 {
				t.Errorf("hub stats %+v: want %d open, 1 refused", s, limit+1)
			}

			// Once two of a's have ended, a opens two again.
			tt.free(h, ja.Addr(), conns, 2)
			waitFor(t, "a's ended ones to be released", func() bool { return tt.count(h.Stats()) == limit-1 })
			open(a, "a again 0")
			open(a, "a again 1")
			if s := h.Stats(); tt.refused(s) != 1 {
				t.Errorf("hub stats %+v: want 1 refused", s)
			}
		})
	}
}

// A guest's relayed TCP connections hold bounded buffers in the gateway:
// its first ones (SetNATBuffered) NATBuffer each way, the rest
// NATSmallBuffer, so that connections a guest never reads (or a host
// server never reads) hold a bounded share of the network's memory, not
// gVisor's default of 1 MiB or more each.
func TestHubNATBuffers(t *testing.T) {
	defer netback.SetNATBuffered(2)()
	h := startHub(t, testsock.Dir(t))
	g, _ := joinGuest(t, h, testMAC(1))
	port := echoTCP(t)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
		cancel()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		// Echoed through the relay: its buffers are set by then.
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("connection %d: echo: %v", i, err)
		}
	}
	want := []int64{netback.NATSmallBuffer, netback.NATBuffer, netback.NATBuffer}
	send, recv := netback.HubTCPBuffers(h)
	if !slices.Equal(send, want) || !slices.Equal(recv, want) {
		t.Errorf("the gateway's connections have send buffers %v and receive buffers %v, want %v each", send, recv, want)
	}
}

// serveEcho echoes on each connection ln accepts all it reads, then
// closes it, until ln is closed.
func serveEcho(ln net.Listener) {
	acceptEach(ln, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// acceptEach serves each connection ln accepts with handle on a goroutine
// of its own, then closes it, until ln is closed.
func acceptEach(ln net.Listener, handle func(c net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}
