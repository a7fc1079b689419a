package testsock

import (
	"fmt"
	"net"
	"testing"
)

// TestPortsOutside: the test ports never overlap the host's ephemeral
// range when there is room beside it.
func TestPortsOutside(t *testing.T) {
	tests := []struct {
		low, high, first, count int
	}{
		{32768, 60999, 20000, 12768}, // Linux's default
		{49152, 65535, 20000, 12768}, // IANA's
		{1024, 65535, 1024, 64512},   // every port ephemeral: nowhere else
		{1024, 40000, 40001, 25535},  // room above only
		{10000, 65000, 1024, 8976},   // more room below than above
		{20000, 32000, 32001, 33535}, // more above
	}
	for _, tt := range tests {
		first, count := portsOutside(tt.low, tt.high)
		if first != tt.first || count != tt.count {
			t.Errorf("portsOutside(%d, %d) = %d, %d; want %d, %d", tt.low, tt.high, first, count, tt.first, tt.count)
		}
		if last := first + count - 1; tt.low > 1024 && last >= tt.low && first <= tt.high {
			t.Errorf("portsOutside(%d, %d) = %d-%d, inside the ephemeral range", tt.low, tt.high, first, last)
		}
	}
}

// TestPortFree: the port Port gives lies in the test range and takes a
// TCP and a UDP socket.
func TestPortFree(t *testing.T) {
	low, high := ephemeralRange()
	p := int(Port(t))
	if first, count := portsOutside(low, high); p < first || p >= first+count {
		t.Errorf("Port() = %d, outside %d-%d", p, first, first+count-1)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
}

// TestListeners: one port, in the test range, held for TCP and UDP both;
// an address not of this host is an error, not a listener.
func TestListeners(t *testing.T) {
	pc, ln, err := Listeners(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp := ln.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
	low, high := ephemeralRange()
	if first, count := portsOutside(low, high); tcp != udp || tcp < first || tcp >= first+count {
		t.Errorf("TCP port %d, UDP port %d: want one port in %d-%d", tcp, udp, first, first+count-1)
	}
	if _, err := net.Listen("tcp", ln.Addr().String()); err == nil {
		t.Errorf("%s: a second listen succeeded: the port is not held", ln.Addr())
	}
	if _, _, err := Listeners(t, "192.0.2.1"); err == nil {
		t.Error("Listeners on 192.0.2.1 (TEST-NET-1, no address here): no error")
	}
}
