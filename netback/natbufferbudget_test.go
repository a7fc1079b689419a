package netback_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// A hub's VMs' TCP connections with the larger buffers (256 KiB each
// way, a VM's first 128) are bounded by user and in all, as their relays
// are: 240 VMs' first connections could hold 15 GiB of buffers inside
// the hub's budget. Beyond, a connection gets the small ones. A hub of 4
// here: 2 for one user, 3 for the users but root together.
func TestHubNATBufferedBudget(t *testing.T) {
	defer netback.SetNATHubBuffered(4)()
	var uid atomic.Int64
	h, err := netback.NewHubWithUsers(netback.HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: t.Logf},
		func() int { return int(uid.Load()) }, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	port := echoTCP(t)
	open := func(g *stackguest.Guest, what string) net.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Cleanup(func() { c.Close() })
		// Echoed through the relay: its buffers are set by then.
		if err := echoes(c, what); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return c
	}
	guests := map[int]*stackguest.Guest{}
	var first net.Conn
	steps := []struct {
		name         string
		uid          int
		conns        int
		end          bool // uid 5001's first connection ends before
		large, small int  // the hub's connections of each
	}{
		{name: "uid 5001: its user's 2", uid: 5001, conns: 3, large: 2, small: 1},
		{name: "uid 5002: 1, the users' 3 together", uid: 5002, conns: 2, large: 3, small: 2},
		{name: "root: 1, the network's 4", uid: 0, conns: 2, large: 4, small: 3},
		{name: "uid 5003: none", uid: 5003, conns: 1, large: 4, small: 4},
		{name: "uid 5001 once one of its ended", uid: 5001, conns: 1, end: true, large: 4, small: 4},
	}
	for i, st := range steps {
		if st.end {
			first.Close()
			waitFor(t, "uid 5001's first connection to end", func() bool { return h.Stats().NATConns == uint64(st.large+st.small-1) })
		}
		g := guests[st.uid]
		if g == nil {
			uid.Store(int64(st.uid))
			g, _ = joinGuest(t, h, testMAC(byte(1+i)))
			guests[st.uid] = g
		}
		for k := range st.conns {
			c := open(g, fmt.Sprintf("%s: connection %d", st.name, k))
			if first == nil {
				first = c
			}
		}
		want := slices.Concat(slices.Repeat([]int64{netback.NATSmallBuffer}, st.small), slices.Repeat([]int64{netback.NATBuffer}, st.large))
		send, recv := netback.HubTCPBuffers(h)
		if !slices.Equal(send, want) || !slices.Equal(recv, want) {
			t.Fatalf("%s: the gateway's connections have send buffers %v and receive buffers %v, want %v each", st.name, send, recv, want)
		}
	}
}
