package netback_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// A guest that opens 200 connections at once to one host service that
// answers (a load test, a parallel fetch) has them all, as a host or
// QEMU's slirp accepts them: its SYNs beyond the dials' bounds (4 to one
// service) wait for a dial to end rather than being dropped, and with
// them the guest's backoff (1, 3, 7, 15 s ...), after which 97 of 200
// had timed out at 30 s. Only those beyond the waits' bound are dropped
// (counted as delayed), to be sent again a second later: none of 100.
// A user network's guest and a hub's VM alike.
func TestNATManyConnectionsAtOnce(t *testing.T) {
	// A wait longer than the test, so that a SYN is dropped only beyond
	// the waits' bound, as counted below, or never admitted (a dial's
	// end that does not wake it) and the test's 20 s fail it: with the
	// 0.9 s wait, a loaded machine's dials that took longer dropped one
	// more than the bound (77 of 200), indistinguishable in the stats.
	defer netback.SetSYNWait(time.Minute)()
	user := func(t *testing.T) (*stackguest.Guest, func() netback.Stats) {
		g, u := startGuestOn(t)
		return g, u.Stats
	}
	hub := func(t *testing.T) (*stackguest.Guest, func() netback.Stats) {
		h := startHub(t, testsock.Dir(t))
		g, _ := joinGuest(t, h, testMAC(1))
		return g, func() netback.Stats {
			s := h.Stats()
			return netback.Stats{GatewayStats: s.GatewayStats}
		}
	}
	tests := []struct {
		name  string
		guest func(t *testing.T) (*stackguest.Guest, func() netback.Stats)
		conns int
	}{
		{"user 200", user, 200},
		{"hub 200", hub, 200},
		{"user 100", user, 100},
		{"hub 100", hub, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := echoTCP(t)
			g, stats := tt.guest(t)
			dest := netip.AddrPortFrom(netback.UserGateway, port)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			open := make([]net.Conn, tt.conns)
			errs := make([]error, tt.conns)
			start := time.Now()
			var wg sync.WaitGroup
			for i := range tt.conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					open[i], errs[i] = g.DialTCP(ctx, dest)
				}()
			}
			wg.Wait()
			took := time.Since(start)
			defer func() {
				for _, c := range open {
					if c != nil {
						c.Close()
					}
				}
			}()
			failed := 0
			for i, err := range errs {
				if err != nil {
					failed++
					if failed <= 5 {
						t.Errorf("connection %d: %v", i, err)
					}
				}
			}
			if failed != 0 {
				t.Fatalf("%d of %d connections opened at once failed within 20 s (%v; stats %+v)", failed, tt.conns, took, stats())
			}
			echoEach(t, open) // natsynflood_test.go
			s := stats()
			if s.NATConns != uint64(tt.conns) || s.NATRefusedConns != 0 {
				t.Errorf("%d connections through the NAT, %d refused; want %d, none", s.NATConns, s.NATRefusedConns, tt.conns)
			}
			// Those that waited were admitted as dials ended, not
			// dropped when their wait ran out.
			if most := max(0, tt.conns-netback.NATDialsPerService-netback.NATSYNWaitsPerService); s.NATHeldConns > uint64(most) {
				t.Errorf("%d connections delayed (SYN dropped), want at most %d (beyond %d dials and %d waiting)", s.NATHeldConns, most, netback.NATDialsPerService, netback.NATSYNWaitsPerService)
			}
		})
	}
}
