package netback

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// deadlineConn records the read deadlines set on a PacketConn.
type deadlineConn struct {
	net.PacketConn
	mu        sync.Mutex
	deadlines []time.Time
	set       chan struct{} // closed at the first
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	if len(c.deadlines) == 1 {
		close(c.set)
	}
	c.mu.Unlock()
	return c.PacketConn.SetReadDeadline(t)
}

// The UDP DNS server's reads wait for a query, not for miekg/dns's 2 s
// default, after which an idle VM's server woke to read again, for as
// long as the VM ran; closing the connection still ends it at once.
func TestDNSUDPServerReadsWithoutWaking(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &deadlineConn{PacketConn: pc, set: make(chan struct{})}
	srv := dnsUDPServer(c, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {}))
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-c.set:
	case <-time.After(10 * time.Second):
		t.Fatal("no read deadline set within 10 s")
	}
	c.mu.Lock()
	first := c.deadlines[0]
	c.mu.Unlock()
	if d := time.Until(first); d < time.Hour {
		t.Errorf("the server's read deadline is %v away, want at least an hour", d.Round(time.Second))
	}
	pc.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not end within 10 s of its connection's close")
	}
}
