package netback_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

var guestMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// freePort is a port of 127.0.0.1 free for TCP and UDP (testsock.Port),
// whichever network the forward is for.
func freePort(t testing.TB, network string) uint16 { return testsock.Port(t) }

// startGuest runs a user network with forwards and a netstack guest at
// 10.0.2.15 behind it.
func startGuest(t testing.TB, forwards ...netback.Forward) *stackguest.Guest {
	t.Helper()
	g, _ := startGuestOn(t, forwards...)
	return g
}

// startGuestOn is startGuest that also returns the user network.
func startGuestOn(t testing.TB, forwards ...netback.Forward) (*stackguest.Guest, *netback.User) {
	t.Helper()
	u, err := netback.NewUser(guestMAC, forwards)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(u, stackguest.Config{
		MAC:     guestMAC,
		Addr:    netip.PrefixFrom(netback.UserGuest, 24),
		Gateway: netback.UserGateway,
	})
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, u
}

func TestUserForwardTCPEndToEnd(t *testing.T) {
	port := freePort(t, "tcp")
	g := startGuest(t, netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80})
	ln, err := g.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go stackguest.EchoSum(ln)

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 3 MiB through the user network takes ~20 s under the race detector
	// on a loaded 2-core machine.
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	data := make([]byte, 3<<20) // several TCP windows: exercises flow control
	rand.Read(data)
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write to forwarded port: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	want := fmt.Sprintf("got %d bytes sha256 %x", len(data), sha256.Sum256(data))
	if string(reply) != want {
		t.Fatalf("guest replied %q, want %q", reply, want)
	}
}

func TestUserForwardUDP(t *testing.T) {
	port := freePort(t, "udp")
	g := startGuest(t, netback.Forward{Proto: "udp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 53})
	pc, err := gonet.DialUDP(g.Stack, &tcpip.FullAddress{NIC: 1, Port: 53}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello guest"))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "echo:hello guest" {
		t.Fatalf("udp reply %q, %v; want %q", buf[:n], err, "echo:hello guest")
	}
}

func TestUserGuestReachesHostThroughGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go stackguest.EchoSum(ln)
	g := startGuest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
	if err != nil {
		t.Fatalf("guest cannot reach the host's loopback through 10.0.2.2: %v", err)
	}
	defer c.Close()
	c.Write([]byte("from the guest"))
	c.(interface{ CloseWrite() error }).CloseWrite()
	reply, _ := io.ReadAll(c)
	want := fmt.Sprintf("got 14 bytes sha256 %x", sha256.Sum256([]byte("from the guest")))
	if string(reply) != want {
		t.Fatalf("host replied %q, want %q", reply, want)
	}
}

func TestUserDNS(t *testing.T) {
	g := startGuest(t)
	for _, server := range []netip.Addr{netback.UserDNS, netback.UserGateway} {
		pc, err := gonet.DialUDP(g.Stack, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(server.As4()), Port: 53}, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		q := new(dns.Msg)
		q.SetQuestion("localhost.", dns.TypeA)
		wire, _ := q.Pack()
		pc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := pc.Write(wire); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		n, err := pc.Read(buf)
		pc.Close()
		if err != nil {
			t.Fatalf("no DNS answer from %s: %v", server, err)
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatalf("DNS answer from %s: %v", server, err)
		}
		if r.Id != q.Id || !r.Response {
			t.Fatalf("DNS %s: reply id %d response %v, want id %d response true", server, r.Id, r.Response, q.Id)
		}
		// The answer must be the host resolver's, whatever that is here.
		var got []string
		for _, a := range r.Answer {
			if a, ok := a.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		if want := hostIPv4s(t, "localhost."); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("DNS %s: localhost. = %v (rcode %d), host resolver says %v", server, got, r.Rcode, want)
		}
	}
}

// hostIPv4s resolves name with the host's resolver, as the DNS service does.
func hostIPv4s(t *testing.T, name string) []string {
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), name)
	if err != nil {
		t.Logf("host resolver: %v", err)
	}
	var out []string
	for _, ip := range ips {
		if ip4 := ip.IP.To4(); ip4 != nil {
			out = append(out, ip4.String())
		}
	}
	return out
}

func TestUserForwardErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := uint16(busy.Addr().(*net.TCPAddr).Port)
	free := freePort(t, "tcp")
	lo := netback.DefaultForwardAddr
	_, err = netback.NewUser(guestMAC, []netback.Forward{
		{Proto: "tcp", HostAddr: lo, HostPort: free, GuestPort: 80},
		{Proto: "tcp", HostAddr: lo, HostPort: busyPort, GuestPort: 22},
	})
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "already in use") ||
		!strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", busyPort)) {
		t.Fatalf("forward of a bound port: err = %v; want EADDRINUSE naming the port and saying it is in use", err)
	}
	// The failed call must have released the forward it had opened.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", free))
	if err != nil {
		t.Fatalf("port of the first forward still held after the failure: %v", err)
	}
	ln.Close()

	_, err = netback.NewUser(guestMAC, []netback.Forward{{Proto: "sctp", HostAddr: lo, HostPort: free, GuestPort: 1}})
	if err == nil || !strings.Contains(err.Error(), "neither tcp nor udp") {
		t.Fatalf("sctp forward: err = %v", err)
	}
	if _, err := netback.NewUser(net.HardwareAddr{1, 2, 3}, nil); err == nil {
		t.Fatal("3-byte MAC accepted")
	}
}

func TestUserCloseReleasesPorts(t *testing.T) {
	port := freePort(t, "tcp")
	u, err := netback.NewUser(guestMAC, []netback.Forward{{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("forwarded port still bound after Close: %v", err)
	}
	ln.Close()
	buf := make([]byte, netback.MaxFrameSize)
	if _, err := u.ReadFrame(buf); !errors.Is(err, netback.ErrClosed) {
		t.Errorf("ReadFrame after Close: %v, want ErrClosed", err)
	}
	if err := u.WriteFrame(make([]byte, 60)); !errors.Is(err, netback.ErrClosed) {
		t.Errorf("WriteFrame after Close: %v, want ErrClosed", err)
	}
}

func TestBackendRejectsBadFrames(t *testing.T) {
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, b := range []netback.Backend{u, netback.NewNone()} {
		if err := b.WriteFrame(make([]byte, 13)); !errors.Is(err, netback.ErrFrameTooShort) {
			t.Errorf("%T: 13-byte frame: %v, want ErrFrameTooShort", b, err)
		}
		if err := b.WriteFrame(make([]byte, netback.MaxFrameSize+1)); !errors.Is(err, netback.ErrFrameTooLong) {
			t.Errorf("%T: oversized frame: %v, want ErrFrameTooLong", b, err)
		}
	}
	// A frame for the guest that does not fit the reader's buffer is
	// reported, not truncated: the ARP reply is 42 bytes.
	if err := u.WriteFrame(arpRequest(guestMAC, netback.UserGuest, netback.UserGateway)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.ReadFrame(make([]byte, 20)); !errors.Is(err, netback.ErrFrameTooLong) {
		t.Errorf("short read buffer: %v, want ErrFrameTooLong", err)
	}
}

func TestUserForwardToClosedGuestPort(t *testing.T) {
	port := freePort(t, "tcp")
	startGuest(t, netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 81})
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Nothing listens on guest port 81: the guest refuses, and the host
	// connection ends at once instead of hanging.
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || os.IsTimeout(err) {
		t.Fatalf("read from a forward to a closed guest port: %d, %v; want end of stream", n, err)
	}
}

func TestUserCloseWithOpenConnection(t *testing.T) {
	port := freePort(t, "tcp")
	u, err := netback.NewUser(guestMAC, []netback.Forward{{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ln, err := g.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case gc := <-accepted:
		defer gc.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("guest never accepted the forwarded connection")
	}
	done := make(chan error, 1)
	go func() { done <- u.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs while a forwarded connection is open")
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("host side of the forward still open after Close: %v", err)
	}
}

// Close must stop the link's delivery before the gateway stack it feeds:
// frames still arriving from the guest once crashed the stack's closed NIC.
func TestUserCloseWhileGuestSends(t *testing.T) {
	for range 20 {
		u, err := netback.NewUser(guestMAC, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			f := arpRequest(guestMAC, netback.UserGuest, netback.UserGateway)
			for u.WriteFrame(f) == nil {
			}
		}()
		time.Sleep(2 * time.Millisecond)
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
	}
}

// Frames for the guest must flow as soon as NewUser returns: the gateway's
// first ARP request of a port forward, once dropped, was retried a second
// later. The gateway must have asked for the guest's address once: a
// second request is that retry (counted, not timed: a loaded host is slow
// anyway).
func TestUserFirstForwardIsPrompt(t *testing.T) {
	for range 10 {
		port := freePort(t, "tcp")
		u, err := netback.NewUser(guestMAC, []netback.Forward{{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80}})
		if err != nil {
			t.Fatal(err)
		}
		g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := g.ListenTCP(80)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("hi"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		ln.Close()
		g.Close()
		if string(b) != "hi" || err != nil {
			t.Fatalf("read %q, %v; want hi", b, err)
		}
		// gVisor counts a request once its write has returned, which
		// can be after the answer let the whole exchange through.
		n := netback.UserARPRequests(u)
		for deadline := time.Now().Add(20 * time.Second); n == 0 && time.Now().Before(deadline); n = netback.UserARPRequests(u) {
			time.Sleep(time.Millisecond)
		}
		if n != 1 {
			t.Fatalf("the gateway sent %d ARP requests for the guest, want 1: a frame was lost and retried", n)
		}
		if d := u.Stats().Dropped; d != 0 {
			t.Fatalf("%d frames for the guest dropped", d)
		}
	}
}
