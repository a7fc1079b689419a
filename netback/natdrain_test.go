package netback_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/smolvmm/smolvmm/netback"
)

// sendThenClose serves each connection to a host TCP port with payload,
// then closes it, until the test ends.
func sendThenClose(t *testing.T, payload []byte) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write(payload)
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// Once a relay is over (the host server sent its reply and closed, the
// guest shut down its side), the guest's connection counts against its
// bounds until the gateway's side has handed the guest what it still
// holds for it, or has been reset after the drain timeout: the gateway's
// endpoint freed with the relay, a guest that never read kept it probing
// its zero window for ever, with up to 256 KiB each, a fresh one per
// connection, beyond every bound (3,000 of them took 775 MB).
func TestNATDrainsBeforeFreeing(t *testing.T) {
	tests := []struct {
		name  string
		reads bool          // the guest reads once the relay is over
		drain time.Duration // the NAT's drain timeout
	}{
		{name: "guest reads", reads: true, drain: time.Minute},
		{name: "guest never reads", drain: 200 * time.Millisecond},
	}
	payload := make([]byte, 64<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(netback.SetNATDrainTimeout(tt.drain))
			g, u := startGuestOn(t)
			// A 4 KiB window that does not grow: the rest of the reply
			// waits at the gateway.
			rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 4096, Max: 4096}
			moderate := tcpip.TCPModerateReceiveBufferOption(false)
			for _, opt := range []tcpip.SettableTransportProtocolOption{&rcv, &moderate} {
				if err := g.Stack.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
					t.Fatal(err)
				}
			}
			port := sendThenClose(t, payload)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.(*gonet.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if tt.reads {
				// The guest's end of stream reached the gateway first.
				waitFor(t, "the guest's end of stream", func() bool {
					return slices.Equal(netback.UserTCPStates(u), []string{"CLOSE-WAIT"})
				})
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				got, err := io.ReadAll(c)
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("the guest read %d bytes of the %d sent (equal: %v), then %v; want them all, then the end of stream", len(got), len(payload), bytes.Equal(got, payload), err)
				}
			}
			waitFor(t, "the connection to be freed", func() bool { return u.Stats().NATConns == 0 })
			if states := netback.UserTCPStates(u); len(states) != 0 {
				t.Fatalf("the connection was freed while the gateway still had endpoints in %v", states)
			}
			if !tt.reads {
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				got, err := io.ReadAll(c)
				if err == nil || len(got) >= len(payload) || !bytes.Equal(got, payload[:len(got)]) {
					t.Fatalf("the guest read %d bytes of the %d sent, then %v; want what its window held, then a reset", len(got), len(payload), err)
				}
			}
		})
	}
}
