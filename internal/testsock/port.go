package testsock

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// Port is a port of 127.0.0.1 that nothing listens on now, for TCP and for
// UDP, below Linux's default ephemeral range (32768-60999): a port a
// listen of port 0 gives comes from that range, where another process's
// outgoing connection or datagram may take it for the other protocol, or
// take it again once the test closed it, which made forward tests fail in
// CI with "address already in use".
func Port(t testing.TB) uint16 {
	t.Helper()
	const first, count = 20000, 12768
	start := time.Now().Nanosecond()
	for i := 0; i < count; i++ {
		p := uint16(first + (start+i*7919)%count)
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return p
	}
	t.Fatalf("no port of 127.0.0.1 in %d-%d is free for both TCP and UDP", first, first+count-1)
	return 0
}
