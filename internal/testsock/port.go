package testsock

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// Port is a port of 127.0.0.1 that nothing listens on now, for TCP and for
// UDP, outside the host's ephemeral range (Linux's default 32768-60999): a
// port a listen of port 0 gives comes from that range, where another
// process's outgoing connection or datagram may take it for the other
// protocol, or take it again once the test closed it, which made forward
// tests fail in CI with "address already in use".
func Port(t testing.TB) uint16 {
	t.Helper()
	pc, ln, err := Listeners(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	pc.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// Listeners listens on one port of the loopback address host for TCP and
// UDP both, as a nameserver does, chosen as Port chooses and held open: no
// other socket takes it between the choice and the listen. The error says
// host is not an address here (no IPv6, say). Both close when the test
// ends, if not before.
func Listeners(t testing.TB, host string) (net.PacketConn, net.Listener, error) {
	t.Helper()
	probe, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, nil, err
	}
	probe.Close()
	first, count := portsOutside(ephemeralRange())
	start := time.Now().Nanosecond()
	for i := 0; i < count; i++ {
		addr := net.JoinHostPort(host, strconv.Itoa(first+(start+i*7919)%count))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			ln.Close()
			continue
		}
		t.Cleanup(func() {
			ln.Close()
			pc.Close()
		})
		return pc, ln, nil
	}
	t.Fatalf("no port of %s in %d-%d is free for both TCP and UDP", host, first, first+count-1)
	return nil, nil, nil
}

// ephemeralRange is the host's range of ports for outgoing sockets, or
// Linux's default where it cannot be read.
func ephemeralRange() (low, high int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if _, err := fmt.Sscan(string(b), &low, &high); err == nil && 0 < low && low <= high && high <= 65535 {
			return low, high
		}
	}
	return 32768, 60999
}

// portsOutside is the first port and the number of ports of the test
// range: 20000-32767 when it lies below the ephemeral range low-high (the
// default), else the larger of the unprivileged ports below and above it
// (all of them when a host gives every port to outgoing sockets).
func portsOutside(low, high int) (first, count int) {
	const unprivileged = 1024
	switch below, above := low-unprivileged, 65535-high; {
	case low > 32767:
		return 20000, 12768
	case below <= 0 && above <= 0:
		return unprivileged, 65536 - unprivileged
	case below >= above:
		return unprivileged, below
	default:
		return high + 1, above
	}
}
