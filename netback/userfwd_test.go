package netback_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// dialAll opens n connections to a host port.
func dialAll(t *testing.T, port uint16, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, n)
	for i := range cs {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}

// closedAtOnce checks that the forward closed c without waiting for the
// guest: with a guest that never answers and no dial timeout to speak
// of, only a refusal ends it.
func closedAtOnce(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) || os.IsTimeout(err) {
		t.Fatalf("connection beyond the bound: read %d, %v; want it closed", n, err)
	}
}

// userWithGuest starts a user network with fwds and a guest of its own on
// it, closed (the network with it) when the test ends.
func userWithGuest(t *testing.T, fwds []netback.Forward) (*netback.User, *stackguest.Guest) {
	t.Helper()
	u, err := netback.NewUser(guestMAC, fwds)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24), Silent: true})
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return u, g
}

// A local program connecting again and again to a forward of a guest that
// does not answer must not make the network hold unbounded connections:
// beyond maxPendingPerForward for one forward, or maxPendingPerVM for all
// of a VM's forwards, host connections are closed at once and counted, and
// a client that hangs up frees its slot.
func TestUserForwardPendingBound(t *testing.T) {
	// Restored after the network is closed, as cleanups run last first.
	t.Cleanup(netback.SetForwardDialTimeout(time.Hour))
	var fwds []netback.Forward
	for i := range 3 {
		fwds = append(fwds, netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: freePort(t, "tcp"), GuestPort: uint16(80 + i)})
	}
	u, _ := userWithGuest(t, fwds)
	pending := func(n uint64) func() bool { return func() bool { return u.Stats().ForwardsPending == n } }

	var open []net.Conn
	open = append(open, dialAll(t, fwds[0].HostPort, netback.MaxPendingPerForward)...)
	waitFor(t, "the first forward's connections to wait", pending(netback.MaxPendingPerForward))
	closedAtOnce(t, dialAll(t, fwds[0].HostPort, 1)[0]) // the forward's bound
	waitFor(t, "one refusal", func() bool { return u.Stats().ForwardsRefused == 1 })

	open = append(open, dialAll(t, fwds[1].HostPort, netback.MaxPendingPerVM-netback.MaxPendingPerForward)...)
	waitFor(t, "the VM's bound to be reached", pending(netback.MaxPendingPerVM))
	closedAtOnce(t, dialAll(t, fwds[2].HostPort, 1)[0]) // the VM's bound
	waitFor(t, "two refusals", func() bool { return u.Stats().ForwardsRefused == 2 })
	if s := u.Stats(); s.ForwardsPending != netback.MaxPendingPerVM {
		t.Errorf("after the refusals: %d pending, want %d", s.ForwardsPending, netback.MaxPendingPerVM)
	}

	// Clients that give up free their slots without waiting for the
	// guest; the forwards then take connections again.
	for _, c := range open {
		c.Close()
	}
	waitFor(t, "no connection to wait", pending(0))
	dialAll(t, fwds[2].HostPort, 1)
	waitFor(t, "a new connection to wait", pending(1))
	if s := u.Stats(); s.ForwardsRefused != 2 {
		t.Errorf("refused %d, want 2", s.ForwardsRefused)
	}
}

// On the shared network the bound is per VM too, and the hub counts the
// refusals of all its VMs' forwards.
func TestHubForwardPendingBound(t *testing.T) {
	defer netback.SetForwardDialTimeout(time.Hour)()
	h := startHub(t, testsock.Dir(t))
	f := netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: freePort(t, "tcp"), GuestPort: 80}
	j, err := netback.Join(h.Socket(), testMAC(1), []netback.Forward{f})
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(j, stackguest.Config{MAC: testMAC(1), Addr: netip.PrefixFrom(j.Addr(), 24), Silent: true})
	if err != nil {
		j.Close()
		t.Fatal(err)
	}
	defer g.Close()
	open := dialAll(t, f.HostPort, netback.MaxPendingPerForward)
	waitFor(t, "the forward's connections to wait", func() bool { return h.Stats().ForwardsPending == netback.MaxPendingPerForward })
	closedAtOnce(t, dialAll(t, f.HostPort, 1)[0])
	waitFor(t, "one refusal", func() bool { return h.Stats().ForwardsRefused == 1 })
	for _, c := range open {
		c.Close()
	}
	waitFor(t, "no connection to wait", func() bool { return h.Stats().ForwardsPending == 0 })
}

// A local program sending to a UDP forward from ever new source ports
// must not make the network hold unbounded flows (each a gVisor endpoint,
// a goroutine and a 64 KiB buffer): beyond the bound of one forward, or
// of all of a VM's, a new client's datagram is dropped and counted, the
// flows there are go on, and a flow that idles out frees its place. On the
// shared network the hub counts its VMs' flows and refusals too. Before,
// every new source port made a flow: 140,000 datagrams took a hub to
// 513 MB.
func TestForwardUDPFlowBound(t *testing.T) {
	const perForward, perVM = 4, 6
	defer netback.SetForwardFlowLimits(perForward, perVM, 2*time.Second)()
	tests := []struct {
		name string
		// start starts the network with forwards and a guest on it, and
		// returns the guest and the network's counts of flows and
		// refusals.
		start func(t *testing.T, fwds []netback.Forward) (*stackguest.Guest, func() (flows, refused uint64))
	}{
		{"user", func(t *testing.T, fwds []netback.Forward) (*stackguest.Guest, func() (uint64, uint64)) {
			u, g := userWithGuest(t, fwds)
			return g, func() (uint64, uint64) { s := u.Stats(); return s.ForwardFlows, s.ForwardFlowsRefused }
		}},
		{"hub", func(t *testing.T, fwds []netback.Forward) (*stackguest.Guest, func() (uint64, uint64)) {
			h := startHub(t, testsock.Dir(t))
			j, err := netback.Join(h.Socket(), testMAC(1), fwds)
			if err != nil {
				t.Fatal(err)
			}
			g, err := stackguest.New(j, stackguest.Config{MAC: testMAC(1), Addr: netip.PrefixFrom(j.Addr(), 24), Silent: true})
			if err != nil {
				j.Close()
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			return g, func() (uint64, uint64) { s := h.Stats(); return s.ForwardFlows, s.ForwardFlowsRefused }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fwds []netback.Forward
			for i := range 3 {
				fwds = append(fwds, netback.Forward{Proto: "udp", HostAddr: netback.DefaultForwardAddr, HostPort: freePort(t, "udp"), GuestPort: uint16(5000 + i)})
			}
			g, counts := tt.start(t, fwds)
			for _, f := range fwds {
				// Listening: an ICMP port unreachable would end a flow.
				c, err := g.ListenUDP(f.GuestPort)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
			}
			want := func(what string, flows, refused uint64) {
				t.Helper()
				var f, r uint64
				deadline := time.Now().Add(10 * time.Second)
				for f, r = counts(); f != flows || r != refused; f, r = counts() {
					if time.Now().After(deadline) {
						t.Fatalf("waiting for %s: %d flows, %d refused after 10 s; want %d and %d", what, f, r, flows, refused)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			// send sends a datagram to forward i from a new client.
			send := func(i int) net.Conn {
				c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(fwds[i].HostPort))))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if _, err := c.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				return c
			}
			var clients []net.Conn
			for range perForward + 1 {
				clients = append(clients, send(0))
				want("a flow per client up to the forward's bound", uint64(min(len(clients), perForward)), uint64(max(0, len(clients)-perForward)))
			}
			send(1)
			send(1)
			want("the VM's bound to be reached", perVM, 1)
			send(1)
			send(2)
			want("two more refusals at the VM's bound", perVM, 3)
			// A client with a flow is no new one: still heard.
			if _, err := clients[0].Write([]byte("y")); err != nil {
				t.Fatal(err)
			}
			want("the flows to idle out", 0, 3)
			send(2)
			want("a new client's flow", 1, 3)
		})
	}
}

// TestCheckForwardPorts: the host sockets of the forwards are bound and
// closed again (a second check passes, and NewUser still gets them); one
// another socket holds is refused in NewUser's words, for TCP and UDP
// alike.
func TestCheckForwardPorts(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	// A port TCP has free too, below the ephemeral range: "tcp beside a
	// busy udp" binds TCP there.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(testsock.Port(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	busyTCP, busyUDP := uint16(tcp.Addr().(*net.TCPAddr).Port), uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	free := freePort(t, "tcp")
	lo := netback.DefaultForwardAddr
	tests := []struct {
		name string
		f    netback.Forward
		want error // nil: passes
	}{
		{"free tcp", netback.Forward{Proto: "tcp", HostAddr: lo, HostPort: free, GuestPort: 80}, nil},
		{"busy tcp", netback.Forward{Proto: "tcp", HostAddr: lo, HostPort: busyTCP, GuestPort: 80}, syscall.EADDRINUSE},
		{"busy udp", netback.Forward{Proto: "udp", HostAddr: lo, HostPort: busyUDP, GuestPort: 53}, syscall.EADDRINUSE},
		{"tcp beside a busy udp", netback.Forward{Proto: "tcp", HostAddr: lo, HostPort: busyUDP, GuestPort: 80}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 2; i++ { // closed after the first
				err := netback.CheckForwardPorts([]netback.Forward{tt.f})
				if tt.want == nil && err != nil {
					t.Fatalf("check %d: %v", i+1, err)
				}
				if tt.want != nil && (!errors.Is(err, tt.want) || !strings.Contains(err.Error(), "the host port is already in use")) {
					t.Fatalf("check %d: %v, want %v saying the port is in use", i+1, err, tt.want)
				}
			}
		})
	}
	u, err := netback.NewUser(guestMAC, []netback.Forward{tests[0].f})
	if err != nil {
		t.Fatalf("NewUser after the check: %v", err)
	}
	u.Close()
}
