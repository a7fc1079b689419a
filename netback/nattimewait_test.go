package netback_test

import (
	"context"
	"io"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/smolvmm/smolvmm/netback"
)

// tcpEndpoints counts s's TCP endpoints.
func tcpEndpoints(s *stack.Stack) int {
	k := 0
	for _, te := range s.RegisteredEndpoints() {
		if _, ok := te.(*tcp.Endpoint); ok {
			k++
		}
	}
	return k
}

// A guest connects again from the port of a connection the host server
// closed first, to the same server, at once: the gateway's side of the
// last one waited in TIME-WAIT for 60 s, dropping the guest's SYNs for
// the new one (gVisor hands such a SYN only to a listener, and the NAT
// has none), and the guest's connect stalled for a minute.
func TestNATPortReusedAfterHostClosed(t *testing.T) {
	g, _ := startGuestOn(t)
	const reply = "bye"
	port := sendThenClose(t, []byte(reply))
	local := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGuest.As4()), Port: 40000}
	remote := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: port}
	for i := range 3 {
		// A guest's first SYN retransmission comes after 1 s.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := gonet.DialTCPWithBind(ctx, g.Stack, local, remote, ipv4.ProtocolNumber)
		cancel()
		if err != nil {
			t.Fatalf("connection %d from port %d to the host's port %d: %v", i, local.Port, port, err)
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != reply {
			t.Fatalf("connection %d: read %q, %v; want %q, then the end of stream", i, got, err, reply)
		}
		// Its port is free once the gateway has acknowledged its end.
		waitFor(t, "the guest's side to close", func() bool { return tcpEndpoints(g.Stack) == 0 })
	}
}
