package netback_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// One user's VMs share a budget of NAT relays (each a host socket), and
// all VMs another: a user's 21 fake VMs of 1024 UDP flows each took every
// descriptor of a hub, and no other VM could join, root's included. Over
// its budget a user's new connections are reset and its new flows'
// datagrams dropped (counted, and logged once), while another user's VM
// still joins and opens its own, and root's VMs have a share the other
// users cannot take. A hub with 16 descriptors has 8 relays: 4 for one
// user, 6 for the users but root together.
func TestHubNATBudget(t *testing.T) {
	tests := []struct {
		name    string
		serve   func(t *testing.T) uint16
		open    func(g *stackguest.Guest, port uint16) (net.Conn, error)
		refused func(netback.HubStats) uint64
		// refuse tries one beyond a bound from g: a TCP connection
		// refused, a UDP flow's datagram sent (and dropped).
		refuse func(t *testing.T, g *stackguest.Guest, port uint16)
	}{
		{
			name:  "tcp",
			serve: echoTCP,
			open: func(g *stackguest.Guest, port uint16) (net.Conn, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				return g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
			},
			refused: func(s netback.HubStats) uint64 { return s.NATRefusedConns },
			refuse: func(t *testing.T, g *stackguest.Guest, port uint16) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
				if err == nil {
					c.Close()
					t.Fatal("connected beyond the budget")
				}
				if ctx.Err() != nil {
					t.Fatalf("no answer to the SYN beyond the budget: %v", err)
				}
			},
		},
		{
			name:    "udp",
			serve:   echoUDP,
			open:    dialGatewayUDP,
			refused: func(s netback.HubStats) uint64 { return s.NATRefusedFlows },
			refuse: func(t *testing.T, g *stackguest.Guest, port uint16) {
				t.Helper()
				c, err := dialGatewayUDP(g, port)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("beyond")); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := tt.serve(t)
			var mu sync.Mutex
			var lines []string
			var uid atomic.Int64
			h, err := netback.NewHubWithUsers(netback.HubConfig{
				Socket: filepath.Join(testsock.Dir(t), "n.sock"),
				Logf: func(format string, args ...any) {
					line := fmt.Sprintf(format, args...)
					t.Log(line)
					mu.Lock()
					lines = append(lines, line)
					mu.Unlock()
				},
			}, func() int { return int(uid.Load()) }, 16)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			addrs := map[*stackguest.Guest]netip.Addr{}
			join := func(u int, mac byte) *stackguest.Guest {
				t.Helper()
				uid.Store(int64(u))
				g, j := joinGuest(t, h, testMAC(mac))
				addrs[g] = j.Addr()
				return g
			}
			open := func(g *stackguest.Guest, what string) net.Conn {
				t.Helper()
				return openEchoing(t, tt.open, g, port, what)
			}
			refused := uint64(0)
			refuse := func(g *stackguest.Guest, what string) {
				t.Helper()
				tt.refuse(t, g, port)
				refused++
				waitFor(t, what+" to be refused", func() bool { return tt.refused(h.Stats()) == refused })
			}

			// uid 5001's two VMs take its 4.
			a1, a2 := join(5001, 1), join(5001, 2)
			a1c := []net.Conn{open(a1, "a1 0"), open(a1, "a1 1")}
			open(a2, "a2 0")
			open(a2, "a2 1")
			refuse(a1, "a1's third")
			refuse(a2, "a2's third")
			for i, c := range a1c {
				if err := echoes(c, fmt.Sprintf("a1 %d again", i)); err != nil {
					t.Errorf("a1's earlier %d: %v", i, err)
				}
			}

			// uid 5002's VM joins and opens its own, up to the users'
			// 6 together.
			b := join(5002, 3)
			open(b, "b 0")
			open(b, "b 1")
			refuse(b, "b's third, over the users' together")

			// root's VM has the last 2 of the 8.
			r := join(0, 4)
			open(r, "root 0")
			open(r, "root 1")
			refuse(r, "root's third, over the network's")

			// Once one of uid 5001's has ended, it opens one again.
			a1c[0].Close()
			if tt.name == "udp" { // a flow ends when idle
				netback.ExpireHubUDPFlows(h, addrs[a1], 1)
			}
			waitFor(t, "a1's ended one to be released", func() bool {
				s := h.Stats()
				return s.NATConns+s.NATFlows == 7
			})
			open(a1, "a1 again")

			mu.Lock()
			defer mu.Unlock()
			count := func(s string) int {
				n := 0
				for _, l := range lines {
					if strings.Contains(l, s) {
						n++
					}
				}
				return n
			}
			for _, want := range []string{
				"NAT: uid 5001's VMs have 4 connections and flows through the NAT, the most one user's VMs may have at once (half of the network's 8",
				"NAT: the VMs of users other than root and the network's own have 6 connections and flows through the NAT together",
				"NAT: the network's VMs have 8 connections and flows through the NAT, the most it relays at once (its RLIMIT_NOFILE 16 less 8 descriptors kept",
			} {
				if n := count(want); n != 1 {
					t.Errorf("%d log lines say %q, want 1", n, want)
				}
			}
		})
	}
}
