package netback_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
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
			echo := echoTCP(t)
			dest := netip.AddrPortFrom(netback.UserGateway, echo)
			h := startHub(t, testsock.Dir(t))
			mac := testMAC(1)
			g, j := joinGuest(t, h, mac)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := g.DialTCP(ctx, dest)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := echoes(c, "before"); err != nil {
				t.Fatal(err)
			}
			addr := j.Addr()
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
			err = echoes(c, "after")
			if tt.wantEcho && err != nil {
				t.Errorf("the NAT connection after the VM rejoined: %v", err)
			}
			if !tt.wantEcho && err == nil {
				t.Errorf("the NAT connection of the VM's last run still echoes")
			}
		})
	}
}
