package netback_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// A VM's NAT connections outlive its connection to the hub when it
// rejoins (the hub dropped it, or it dropped a hub that took no frame),
// and end at once when the VM is started again with its MAC (its last
// run's connections are gone with it, and count against no bound).
func TestHubNATRejoin(t *testing.T) {
	tests := []struct {
		name     string
		restart  bool // the VM is started again, not rejoining
		wantEcho bool // the first connection still echoes
	}{
		{name: "dropped and rejoined", wantEcho: true},
		{name: "started again", restart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A grace no test waits out: what ends the relays, or
			// keeps them, is the join.
			defer netback.SetHubNATGrace(time.Hour)()
			defer netback.SetNATLimits(1, 1)()
			v := natVM(t)
			h, mac, g, j, c, ctx, dest, addr := v.h, v.mac, v.g, v.j, v.c, v.ctx, v.dest, v.addr
			if tt.restart {
				g.Close()
				waitFor(t, "the VM to leave", func() bool { return h.Stats().VMs == 0 })
				g2, j2 := joinGuest(t, h, mac)
				if j2.Addr() != addr {
					t.Fatalf("started again at %s, was %s", j2.Addr(), addr)
				}
				// At the bound of one connection: the last run's is
				// not counted.
				c2, err := g2.DialTCP(ctx, dest)
				if err != nil {
					t.Fatalf("the VM started again, at a bound of one connection: %v", err)
				}
				c2.Close()
			} else {
				var key [6]byte
				copy(key[:], mac)
				if !netback.HubDropVM(h, key) {
					t.Fatal("no such VM")
				}
				waitFor(t, "the VM to rejoin", func() bool { return j.Connects() == 2 && h.Stats().VMs == 1 })
				if j.Addr() != addr {
					t.Fatalf("rejoined at %s, was %s", j.Addr(), addr)
				}
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			err := echoes(c, "after")
			if tt.wantEcho && err != nil {
				t.Errorf("the NAT connection after the VM rejoined: %v", err)
			}
			if !tt.wantEcho && err == nil {
				t.Errorf("the NAT connection of the VM's last run still echoes")
			}
		})
	}
}

// TestHubNATSettle: the relays of a VM that left are kept for the VM that
// joins next at its address only when that is the same MAC rejoining;
// another MAC there ends them even with its hello's rejoin set (it lost
// its own connection, not this address's), and so does the same MAC
// started again. The join's decision is made through HubSettleNAT, at
// once, with a grace no test waits out.
func TestHubNATSettle(t *testing.T) {
	tests := []struct {
		name     string
		otherMAC bool
		rejoin   bool
		wantKept bool
	}{
		{name: "same MAC rejoins", rejoin: true, wantKept: true},
		{name: "same MAC started again"},
		{name: "other MAC rejoins", otherMAC: true, rejoin: true},
		{name: "other MAC started", otherMAC: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer netback.SetHubNATGrace(time.Hour)()
			v := natVM(t)
			h, mac, j, addr := v.h, v.mac, v.j, v.addr
			// The VM leaves without a word from its stack: its
			// connection stays, pending the grace.
			j.Close()
			waitFor(t, "the VM to leave", func() bool { return h.Stats().VMs == 0 })
			if n := h.Stats().NATConns; n != 1 {
				t.Fatalf("NAT connections after the VM left: %d; want 1 (kept for the grace)", n)
			}
			var key [6]byte
			copy(key[:], mac)
			if tt.otherMAC {
				copy(key[:], testMAC(2))
			}
			netback.HubSettleNAT(h, key, addr, tt.rejoin)
			want := uint64(0)
			if tt.wantKept {
				want = 1
			}
			if n := h.Stats().NATConns; n != want {
				t.Errorf("NAT connections after the join at %s: %d; want %d", addr, n, want)
			}
		})
	}
}

// natTestVM is a VM joined to a hub of its own, with one NAT connection to
// an echo service on the host that echoed once.
type natTestVM struct {
	h    *netback.Hub
	mac  net.HardwareAddr
	g    *stackguest.Guest
	j    *netback.Joined
	c    net.Conn
	ctx  context.Context // the test's dial bound
	dest netip.AddrPort  // the echo service, through the NAT
	addr netip.Addr      // the VM's address
}

// natVM starts a hub, joins a VM to it and connects the VM to an echo
// service on the host; the connection and its bound end with the test.
func natVM(t *testing.T) natTestVM {
	t.Helper()
	echo := echoTCP(t)
	v := natTestVM{dest: netip.AddrPortFrom(netback.UserGateway, echo), h: startHub(t, testsock.Dir(t)), mac: testMAC(1)}
	v.g, v.j = joinGuest(t, v.h, v.mac)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	v.ctx = ctx
	c, err := v.g.DialTCP(ctx, v.dest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := echoes(c, "before"); err != nil {
		t.Fatal(err)
	}
	v.c, v.addr = c, v.j.Addr()
	return v
}
