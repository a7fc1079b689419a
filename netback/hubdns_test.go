package netback_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// stallingNameserver answers www.test. (192.0.2.10) and says REFUSED to
// fail.test. and NXDOMAIN to other names, but never answers a name
// starting "stall": it sends those names to the channel returned.
func stallingNameserver(t *testing.T) (addr string, stalled <-chan string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ch := make(chan string, 1024)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			name := q.Question[0].Name
			m := new(dns.Msg)
			m.SetReply(&q)
			switch {
			case strings.HasPrefix(name, "stall"):
				ch <- name
				continue
			case name == "fail.test.":
				m.Rcode = dns.RcodeRefused
			case name == "www.test." && q.Question[0].Qtype == dns.TypeA:
				rr, _ := dns.NewRR("www.test. 60 IN A 192.0.2.10")
				m.Answer = append(m.Answer, rr)
			case name != "www.test.":
				m.Rcode = dns.RcodeNameError
			}
			b, _ := m.Pack()
			pc.WriteTo(b, from)
		}
	}()
	return pc.LocalAddr().String(), ch
}

// askDNS sends g's query for name's A records over TCP to the network's
// DNS server; the connection is returned for read to take its answer.
func askDNS(t *testing.T, g *stackguest.Guest, name string) *dns.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserDNS, 53))
	if err != nil {
		t.Fatalf("DNS connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	dc := &dns.Conn{Conn: c}
	var q dns.Msg
	q.SetQuestion(name, dns.TypeA)
	if err := dc.WriteMsg(&q); err != nil {
		t.Fatal(err)
	}
	return dc
}

// One VM asking names of a nameserver that never answers has only its
// share of the network's DNS: its queries beyond DNSPerGuest are answered
// SERVFAIL at once (and counted), another VM's are answered. A failure
// other than a missing name is SERVFAIL, not NXDOMAIN, so that a
// resolver does not take the name for missing.
func TestHubDNSShare(t *testing.T) {
	ns, stalled := stallingNameserver(t)
	defer netback.SetNameservers([]string{ns}, time.Minute)()
	h := startHub(t, testsock.Dir(t))
	hog, _ := joinGuest(t, h, testMAC(1))
	other, _ := joinGuest(t, h, testMAC(2))
	for i := range netback.DNSPerGuest {
		askDNS(t, hog, fmt.Sprintf("stall%d.test.", i))
	}
	asked := map[string]bool{}
	for len(asked) < netback.DNSPerGuest {
		asked[<-stalled] = true
	}
	tests := []struct {
		name  string
		guest *stackguest.Guest
		query string
		rcode int
		a     string // the A record answered, if any
	}{
		{"beyond its share", hog, "www.test.", dns.RcodeServerFailure, ""},
		{"another VM", other, "www.test.", dns.RcodeSuccess, "192.0.2.10"},
		{"a missing name", other, "nope.test.", dns.RcodeNameError, ""},
		{"a nameserver's refusal", other, "fail.test.", dns.RcodeServerFailure, ""},
	}
	for _, tt := range tests {
		dc := askDNS(t, tt.guest, tt.query)
		// A deadline for a failure to show as one, not a hang.
		dc.SetReadDeadline(time.Now().Add(20 * time.Second))
		r, err := dc.ReadMsg()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var a string
		for _, rr := range r.Answer {
			if rr, ok := rr.(*dns.A); ok {
				a = rr.A.String()
			}
		}
		if r.Rcode != tt.rcode || a != tt.a {
			t.Errorf("%s: %s answered %s %q, want %s %q", tt.name, tt.query, dns.RcodeToString[r.Rcode], a, dns.RcodeToString[tt.rcode], tt.a)
		}
	}
	if n := h.Stats().DNSRefused; n != 1 {
		t.Errorf("DNSRefused = %d, want 1", n)
	}
}

// One VM holds at most DNSConnsPerGuest DNS-over-TCP connections open in
// the network's process: one more is reset unanswered (and counted),
// another VM's is answered, and a connection closed makes room again.
func TestHubDNSConnsPerGuest(t *testing.T) {
	ns, _ := stallingNameserver(t)
	defer netback.SetNameservers([]string{ns}, time.Minute)()
	// The connections held stay open however slow the host.
	defer netback.SetDNSTCPTimeout(time.Hour)()
	h := startHub(t, testsock.Dir(t))
	hog, _ := joinGuest(t, h, testMAC(1))
	other, _ := joinGuest(t, h, testMAC(2))
	var held []*dns.Conn
	for i := range netback.DNSConnsPerGuest {
		// Alternating the two addresses: both count.
		addr := netback.UserDNS
		if i%2 == 1 {
			addr = netback.UserGateway
		}
		held = append(held, dialDNS(t, hog, addr))
	}
	tests := []struct {
		name     string
		guest    *stackguest.Guest
		answered bool
	}{
		{"beyond the VM's bound", hog, false},
		{"another VM", other, true},
	}
	for _, tt := range tests {
		err := tryDNS(tt.guest, netback.UserDNS)
		if answered := err == nil; answered != tt.answered {
			t.Errorf("%s: answered %v (%v), want %v", tt.name, answered, err, tt.answered)
		}
	}
	// The other VM's connection, closed once answered, may or may not be
	// forgotten yet: the hog's are open.
	if s := h.Stats(); s.DNSRefusedConns != 1 || s.DNSConns < netback.DNSConnsPerGuest || s.DNSConns > netback.DNSConnsPerGuest+1 {
		t.Errorf("DNSRefusedConns = %d, DNSConns = %d, want 1, %d or %d", s.DNSRefusedConns, s.DNSConns, netback.DNSConnsPerGuest, netback.DNSConnsPerGuest+1)
	}
	held[0].Close()
	waitFor(t, "a closed connection to be forgotten", func() bool {
		return h.Stats().DNSConns < netback.DNSConnsPerGuest
	})
	if err := tryDNS(hog, netback.UserDNS); err != nil {
		t.Errorf("after closing one: %v", err)
	}
}

// tryDNS has g ask www.test. over a new DNS-over-TCP connection to addr,
// closed before it returns: nil when answered, else the error of the
// dial, the write or the read. A connection the server resets may fail
// at any of them, as the reset may come before the guest's stack has
// told the dial it connected.
func tryDNS(g *stackguest.Guest, addr netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(addr, 53))
	if err != nil {
		return err
	}
	defer c.Close()
	dc := &dns.Conn{Conn: c}
	// A deadline for a failure to show as one, not a hang.
	dc.SetDeadline(time.Now().Add(20 * time.Second))
	var q dns.Msg
	q.SetQuestion("www.test.", dns.TypeA)
	if err := dc.WriteMsg(&q); err != nil {
		return err
	}
	_, err = dc.ReadMsg()
	return err
}

// dialDNS opens g's DNS-over-TCP connection to addr and has a query
// answered on it, which leaves it open for the server's idle timeout
// (8 s, unless the test sets SetDNSTCPTimeout).
func dialDNS(t *testing.T, g *stackguest.Guest, addr netip.Addr) *dns.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(addr, 53))
	if err != nil {
		t.Fatalf("DNS connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	dc := &dns.Conn{Conn: c}
	var q dns.Msg
	q.SetQuestion("www.test.", dns.TypeA)
	dc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := dc.WriteMsg(&q); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.ReadMsg(); err != nil {
		t.Fatalf("DNS connection to %s: %v", addr, err)
	}
	return dc
}

// A VM's own user network bounds its DNS-over-TCP connections as a hub
// bounds each VM's.
func TestUserDNSConnsBounded(t *testing.T) {
	ns, _ := stallingNameserver(t)
	defer netback.SetNameservers([]string{ns}, time.Minute)()
	// The connections held stay open however slow the host.
	defer netback.SetDNSTCPTimeout(time.Hour)()
	g, u := startGuestOn(t)
	for range netback.DNSConnsPerGuest {
		dialDNS(t, g, netback.UserDNS)
	}
	if err := tryDNS(g, netback.UserDNS); err == nil {
		t.Error("a connection beyond the bound was answered")
	}
	if s := u.Stats(); s.DNSRefusedConns != 1 || s.DNSConns != netback.DNSConnsPerGuest {
		t.Errorf("DNSRefusedConns = %d, DNSConns = %d, want 1, %d", s.DNSRefusedConns, s.DNSConns, netback.DNSConnsPerGuest)
	}
}
