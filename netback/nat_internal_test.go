package netback

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// A UDP flow that carries nothing for udpIdleFor ends: its far side is
// closed and its end called, so that its socket and goroutines go.
func TestUDPFlowEndsWhenIdle(t *testing.T) {
	defer func(d time.Duration) { udpIdleFor = d }(udpIdleFor)
	udpIdleFor = 20 * time.Millisecond
	near, far := net.Pipe()
	defer near.Close()
	ended := make(chan struct{})
	f := newUDPFlow(far, func([]byte) error { return nil }, func() { close(ended) })
	read := make(chan error, 1)
	go func() {
		f.readFar()
		_, err := far.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle flow did not end")
	}
	if err := <-read; !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("far side after the flow ended: %v, want closed", err)
	}
}

// TestNATDestinations: the gateway stands for the host's loopback; the
// rest of the user subnet (the DNS server's address, the guests, its
// broadcast), the clouds' metadata services, the loopback itself,
// "this network", multicast, reserved and the broadcast address are not
// relayed; other IPv4 addresses are, as they are.
func TestNATDestinations(t *testing.T) {
	n := newNAT(UserGateway, UserSubnet, false)
	defer n.cancel()
	tests := []struct {
		to, want string // want "" for refused
	}{
		{"10.0.2.2", "127.0.0.1"},
		{"10.0.2.3", ""},
		{"10.0.2.15", ""},
		{"10.0.2.16", ""},
		{"10.0.2.255", ""},
		{"10.0.2.0", ""},
		{"169.254.169.254", ""},
		{"0.1.2.3", ""},
		{"224.0.0.251", ""},
		{"239.255.255.250", ""},
		{"240.0.0.1", ""},
		{"255.255.255.255", ""},
		{"10.0.3.1", "10.0.3.1"},
		{"192.0.2.7", "192.0.2.7"},
		{"127.0.0.1", ""},
		{"127.1.2.3", ""},
		{"100.100.100.200", ""},
		{"100.100.100.201", "100.100.100.201"},
		{"168.63.129.16", ""},
		{"192.0.0.192", ""},
	}
	for _, tt := range tests {
		got, ok := n.outside(tcpip.AddrFrom4(netip.MustParseAddr(tt.to).As4()))
		if ok != (tt.want != "") || ok && got.String() != tt.want {
			t.Errorf("outside(%s) = %v, %v; want %q", tt.to, got, ok, tt.want)
		}
	}
	if _, ok := n.outside(tcpip.AddrFrom16([16]byte{15: 1})); ok {
		t.Error("an IPv6 destination is relayed")
	}
}
