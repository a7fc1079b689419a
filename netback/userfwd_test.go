package netback_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

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

// A local program connecting again and again to a forward of a guest that
// does not answer must not make the network hold unbounded connections:
// beyond maxPendingPerForward for one forward, or maxPendingPerVM for all
// of a VM's forwards, host connections are closed at once and counted, and
// a client that hangs up frees its slot.
func TestUserForwardPendingBound(t *testing.T) {
	defer netback.SetForwardDialTimeout(time.Hour)()
	var fwds []netback.Forward
	for i := range 3 {
		fwds = append(fwds, netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: freePort(t, "tcp"), GuestPort: uint16(80 + i)})
	}
	u, err := netback.NewUser(guestMAC, fwds)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24), Silent: true})
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	defer g.Close()
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
	h := startHub(t, t.TempDir())
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
