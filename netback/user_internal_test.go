package netback

import (
	"net"
	"net/netip"
	"testing"
)

// NewUser must return with the gateway's NIC attached to its stack and the
// guest's frames flowing to it: a frame the gateway sends at once (the first
// ARP request of a port forward) must not be lost.
func TestNewUserIsReady(t *testing.T) {
	for range 20 {
		u, err := NewUser(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !u.gw.link.IsAttached() {
			t.Fatal("NewUser returned before the gateway link was attached to its stack")
		}
		select {
		case <-u.gw.linkDone:
			t.Fatal("the link stopped reading the guest's frames before Close")
		default:
		}
		u.Close()
		select {
		case <-u.gw.linkDone:
		default:
			t.Fatal("Close returned while the link still hands frames to the stack")
		}
	}
}

func TestLeaseTable(t *testing.T) {
	guest := net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}
	other := func(i byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, i} }
	lt := newLeaseTable(guest)
	steps := []struct {
		mac  net.HardwareAddr
		want string // "" for no address left
	}{
		{guest, "10.0.2.15"},
		{other(1), "10.0.2.4"},
		{guest, "10.0.2.15"},
		{other(2), "10.0.2.5"},
		{other(1), "10.0.2.4"},
	}
	for i, s := range steps {
		a, ok := lt.lease(s.mac)
		if got := a.String(); !ok || got != s.want {
			t.Fatalf("step %d: lease(%s) = %s, %v; want %s", i, s.mac, got, ok, s.want)
		}
	}
	// Fill the subnet: .4 to .254 less .15 is 250 addresses, two taken.
	seen := map[netip.Addr]bool{}
	for i := 3; i <= 250; i++ {
		a, ok := lt.lease(net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)})
		if !ok {
			t.Fatalf("lease %d: subnet exhausted early", i)
		}
		switch {
		case seen[a] || a == UserGuest || a == UserGateway || a == UserDNS:
			t.Fatalf("lease %d: %s handed out twice or reserved", i, a)
		case a.As4()[3] < 4 || a.As4()[3] == 255:
			t.Fatalf("lease %d: %s is reserved", i, a)
		}
		seen[a] = true
	}
	if a, ok := lt.lease(other(0xff)); ok {
		t.Fatalf("full subnet still leased %s", a)
	}
}
