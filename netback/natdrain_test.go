package netback_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// serveHost serves each connection to a host TCP port, until the test
// ends, with handle, then closes it; it returns the port.
func serveHost(t *testing.T, handle func(c *net.TCPConn)) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptEach(ln, func(c net.Conn) { handle(c.(*net.TCPConn)) })
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// sendThenClose serves each connection to a host TCP port with payload,
// then closes it, until the test ends.
func sendThenClose(t *testing.T, payload []byte) uint16 {
	t.Helper()
	return serveHost(t, func(c *net.TCPConn) { _, _ = c.Write(payload) })
}

// smallWindow gives g's connections a 4 KiB receive window that does not
// grow: what a reply holds beyond it waits at the gateway.
func smallWindow(t *testing.T, g *stackguest.Guest) {
	t.Helper()
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 4096, Max: 4096}
	moderate := tcpip.TCPModerateReceiveBufferOption(false)
	for _, opt := range []tcpip.SettableTransportProtocolOption{&rcv, &moderate} {
		if err := g.Stack.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			t.Fatal(err)
		}
	}
}

// Once a relay is over (the host server sent its reply and closed, the
// guest shut down its side), the guest's connection counts against its
// bounds until the gateway's side has handed the guest what it still
// holds for it: freed with the relay, the gateway's endpoint of a guest
// that never read kept probing its zero window for ever, with up to
// 256 KiB each, a fresh one per connection, beyond every bound (3,000 of
// them took 775 MB). A guest that reads slowly gets it all; one that
// never reads holds its slot until it closes (here: resets) its side.
func TestNATDrainsBeforeFreeing(t *testing.T) {
	tests := []struct {
		name  string
		reads bool // the guest reads once the relay is over
	}{
		{name: "guest reads slowly", reads: true},
		{name: "guest never reads"},
	}
	payload := make([]byte, 64<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, u := startGuestOn(t)
			smallWindow(t, g)
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
			// The guest's end of stream reached the gateway, whose
			// relay is then over, the reply's rest held for the guest.
			waitFor(t, "the guest's end of stream", func() bool {
				return slices.Equal(netback.UserTCPStates(u), []string{"CLOSE-WAIT"}) || slices.Equal(netback.UserTCPStates(u), []string{"LAST-ACK"})
			})
			if n := u.Stats().NATConns; n != 1 {
				t.Fatalf("with the gateway's side holding data for the guest, the NAT counts %d connections; want 1", n)
			}
			if tt.reads {
				// A few KiB at a time, with pauses: no deadline cuts it.
				c.SetReadDeadline(time.Now().Add(60 * time.Second))
				var got []byte
				buf := make([]byte, 2048)
				for {
					n, err := c.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("the guest read %d bytes of the %d sent, then %v; want them all, then the end of stream", len(got), len(payload), err)
					}
					time.Sleep(5 * time.Millisecond)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("the guest read %d bytes of the %d sent (equal: %v); want them all", len(got), len(payload), bytes.Equal(got, payload))
				}
			} else {
				// Closed with data unread: the guest resets.
				c.Close()
			}
			waitFor(t, "the connection to be freed", func() bool { return u.Stats().NATConns == 0 })
			if states := netback.UserTCPStates(u); len(states) != 0 {
				t.Fatalf("the connection was freed while the gateway still had endpoints in %v", states)
			}
		})
	}
}

// A guest still sending when the host's side ends (a server that reads a
// little, answers and closes, as one refusing an upload does) sees its
// writes fail at once and its connection freed, as before the drain:
// waiting for a guest that has not ended its stream held its writes and
// its slot 60 s.
func TestNATGuestStillSendingWhenHostEnds(t *testing.T) {
	g, u := startGuestOn(t)
	port := serveHost(t, func(c *net.TCPConn) {
		_, _ = io.ReadFull(c, make([]byte, 1024))
		_, _ = c.Write([]byte("HTTP/1.0 413 Payload Too Large\r\n\r\n"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	chunk := make([]byte, 16<<10)
	var sent int
	for {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the guest's upload still blocked after 20 s (%d bytes sent); want its writes to fail once the host's side is gone", sent)
			}
			break
		}
		if sent > 1<<30 {
			t.Fatal("1 GiB sent to a server that read 1 KiB")
		}
	}
	c.Close()
	waitFor(t, "the connection to be freed", func() bool { return u.Stats().NATConns == 0 })
}

// A host server that sends a reply larger than the guest's window, then
// resets (SO_LINGER 0, or a close with request bytes unread), leaves the
// gateway's side holding the reply's rest for the guest: once the guest
// has ended its stream that side drains as after a clean end, counted,
// where it was closed uncounted and went on probing the guest's shut
// window for ever (2,500 such connections took a shared network 660 MB).
func TestNATHostResetAfterReplyStaysCounted(t *testing.T) {
	g, u := startGuestOn(t)
	smallWindow(t, g)
	connected, reset := make(chan struct{}), make(chan struct{})
	port := serveHost(t, func(c *net.TCPConn) {
		<-connected // a reset before the guest's handshake refuses it
		_, _ = c.Write(make([]byte, 200<<10))
		_ = c.SetLinger(0)
		c.Close()
		close(reset)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	close(connected)
	within := func(ch <-chan struct{}) {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("the host server did not reset within 20 s")
		}
	}
	within(reset)
	if err := c.(*gonet.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The relay ends with the guest's end of stream; the gateway's side
	// then holds the reply's rest, and must be counted while it does.
	waitFor(t, "the gateway's side to hold the reply for the guest, counted", func() bool {
		n, st := u.Stats().NATConns, netback.UserTCPStates(u)
		if n == 0 && len(st) != 0 {
			t.Fatalf("the NAT counts no connection while the gateway keeps endpoints %v holding the guest's unread reply", st)
		}
		return n == 1 && (slices.Equal(st, []string{"CLOSE-WAIT"}) || slices.Equal(st, []string{"LAST-ACK"}))
	})
	c.Close() // data unread: the guest resets
	waitFor(t, "the connection to be freed", func() bool {
		return u.Stats().NATConns == 0 && len(netback.UserTCPStates(u)) == 0
	})
}
