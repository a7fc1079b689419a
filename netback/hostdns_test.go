package netback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

func TestParseHosts(t *testing.T) {
	h := parseHosts([]byte(`# comment
127.0.0.1	localhost loopback   # trailing comment
::1 localhost ip6-localhost
10.1.2.3 Web.Example.   web
fe80::1%eth0 linklocal
not-an-address name
192.0.2.1
`))
	want := map[string][]net.IPAddr{
		"localhost":     {{IP: net.IPv4(127, 0, 0, 1).To4()}, {IP: net.IPv6loopback}},
		"loopback":      {{IP: net.IPv4(127, 0, 0, 1).To4()}},
		"ip6-localhost": {{IP: net.IPv6loopback}},
		"web.example.":  {{IP: net.IPv4(10, 1, 2, 3).To4()}},
		"web":           {{IP: net.IPv4(10, 1, 2, 3).To4()}},
		"linklocal":     {{IP: net.ParseIP("fe80::1"), Zone: "eth0"}},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("parseHosts:\n got %v\nwant %v", h, want)
	}
}

// TestParseHostsLongLine: a line longer than bufio.Scanner's 64 KiB
// (a name with thousands of aliases, in a file MaxHostFileSize bounds)
// is read as any other, and so are the lines after it: the scanner
// stopped at it, and every name from there on was unknown.
func TestParseHostsLongLine(t *testing.T) {
	var aliases strings.Builder
	for i := 0; aliases.Len() <= 100<<10; i++ {
		fmt.Fprintf(&aliases, " alias%d", i)
	}
	for _, tc := range []struct {
		name, long string
		want       []string // names of 10.0.0.1
	}{
		{"aliases", "10.0.0.1 first" + aliases.String(), []string{"first", "alias0", "alias9999"}},
		{"comment", "10.0.0.1 first #" + strings.Repeat("x", 100<<10), []string{"first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := parseHosts([]byte("127.0.0.1 localhost\n" + tc.long + "\r\n192.0.2.7 after\n"))
			for _, name := range append([]string{"localhost", "after"}, tc.want...) {
				if len(h[name]) != 1 {
					t.Errorf("%s: %v, want one address", name, h[name])
				}
			}
			if got := h["first"]; len(got) == 1 && !got[0].IP.Equal(net.IPv4(10, 0, 0, 1)) {
				t.Errorf("first: %v, want 10.0.0.1", got)
			}
		})
	}
}

// fakeNameserver answers on 127.0.0.1 over UDP and TCP from zone (name and
// type to records, in zone file syntax); other names do not exist.
// Answers to big are truncated over UDP, so TCP must follow.
func fakeNameserver(t *testing.T, zone map[string][]string) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		qq := q.Question[0]
		key := strings.ToLower(qq.Name) + " " + dns.TypeToString[qq.Qtype]
		exists := false
		for k, rrs := range zone {
			if strings.HasPrefix(k, strings.ToLower(qq.Name)+" ") {
				exists = true
			}
			if k != key {
				continue
			}
			for _, s := range rrs {
				rr, err := dns.NewRR(s)
				if err != nil {
					t.Errorf("zone record %q: %v", s, err)
					continue
				}
				m.Answer = append(m.Answer, rr)
			}
		}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncate(dns.MinMsgSize)
		}
		w.WriteMsg(m)
	})
	pc, ln, err := testsock.Listeners(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// sp formats values as fmt.Println does, spaced, without the newline.
func sp(a ...any) string { return strings.TrimSuffix(fmt.Sprintln(a...), "\n") }

// TestHostResolverQuery: query gives the records the nameserver answered,
// whole over TCP when UDP's answer is truncated, and errNoSuchHost for a
// name it says does not exist.
func TestHostResolverQuery(t *testing.T) {
	long := make([]string, 40)
	for i := range long {
		long[i] = fmt.Sprintf("big.test. 60 IN A 192.0.2.%d", i+1)
	}
	addr := fakeNameserver(t, map[string][]string{
		"www.test. A": {"www.test. 60 IN A 192.0.2.10"},
		"big.test. A": long,
	})
	r := testResolver(hostConf{servers: []string{addr}, timeout: 2 * time.Second, attempts: 1})
	tests := []struct {
		name, want string
	}{
		{"www.test.", "1 <nil>"},
		{"big.test.", "40 <nil>"},
		{"nope.test.", "0 nope.test.: no such host"},
	}
	for _, tt := range tests {
		rrs, err := r.query(context.Background(), tt.name, dns.TypeA)
		if got := sp(len(rrs), err); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestForwardRetries: a nameserver that answers an EDNS query FORMERR is
// asked again without EDNS; one answering another question than asked,
// or failing, is passed over for the next.
func TestForwardRetries(t *testing.T) {
	serve := func(reply func(q *dns.Msg, m *dns.Msg)) string {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			reply(q, m)
			w.WriteMsg(m)
		})}
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
		return pc.LocalAddr().String()
	}
	a := func(s string) dns.RR { rr, _ := dns.NewRR(s); return rr }
	noEDNS := serve(func(q, m *dns.Msg) {
		if q.IsEdns0() != nil {
			m.Rcode = dns.RcodeFormatError
			return
		}
		m.Answer = []dns.RR{a("www.test. 60 IN A 192.0.2.1")}
	})
	other := serve(func(q, m *dns.Msg) {
		m.Question[0].Name = "evil.test."
		m.Answer = []dns.RR{a("evil.test. 60 IN A 192.0.2.66")}
	})
	failing := serve(func(q, m *dns.Msg) { m.Rcode = dns.RcodeServerFailure })
	good := serve(func(q, m *dns.Msg) { m.Answer = []dns.RR{a("www.test. 60 IN A 192.0.2.2")} })
	tests := []struct {
		name    string
		servers []string
		want    string
	}{
		{"FORMERR to EDNS", []string{noEDNS}, "192.0.2.1"},
		{"another question", []string{other, good}, "192.0.2.2"},
		{"SERVFAIL", []string{failing, good}, "192.0.2.2"},
		{"only another question", []string{other}, "error"},
	}
	for _, tt := range tests {
		r := testResolver(hostConf{servers: tt.servers, timeout: 2 * time.Second, attempts: 1})
		q := new(dns.Msg)
		q.SetQuestion("www.test.", dns.TypeA)
		q.SetEdns0(1232, false)
		in, err := r.forward(context.Background(), q)
		got := "error"
		if err == nil && len(in.Answer) == 1 {
			got = in.Answer[0].(*dns.A).A.String()
		}
		if got != tt.want {
			t.Errorf("%s: got %s (%v), want %s", tt.name, got, err, tt.want)
		}
	}
}

// TestHostResolverNoServer: a nameserver that does not answer is an
// error once the attempts are spent, not a hang.
func TestHostResolverNoServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r := testResolver(hostConf{servers: []string{pc.LocalAddr().String()}, timeout: 50 * time.Millisecond, attempts: 2})
	start := time.Now()
	if _, err := r.query(context.Background(), "www.test.", dns.TypeA); err == nil || errors.Is(err, errNoSuchHost) {
		t.Errorf("silent nameserver: %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// TestHostResolverBoundsQueries: while as many queries as the resolver
// has slots wait for the nameserver, a further one fails at once
// (errDNSBusy, counted), asking nothing; once they are answered, a query
// is asked again.
func TestHostResolverBoundsQueries(t *testing.T) {
	const slots = 3
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	type query struct {
		from net.Addr
		msg  dns.Msg
	}
	asked := make(chan query, 2*slots)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q query
			q.from = from
			if q.msg.Unpack(buf[:n]) == nil {
				asked <- q
			}
		}
	}()
	answer := func(q query) {
		var m dns.Msg
		m.SetReply(&q.msg)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		pc.WriteTo(b, q.from)
	}
	r := testResolver(hostConf{servers: []string{pc.LocalAddr().String()}, timeout: time.Minute, attempts: 1})
	r.slots = make(chan struct{}, slots)
	done := make(chan error, slots+1)
	for i := range slots {
		go func() {
			_, err := r.query(context.Background(), fmt.Sprintf("q%d.test.", i), dns.TypeTXT)
			done <- err
		}()
	}
	var waiting []query
	for range slots {
		waiting = append(waiting, <-asked)
	}
	if _, err := r.query(context.Background(), "beyond.test.", dns.TypeTXT); !errors.Is(err, errDNSBusy) {
		t.Errorf("a query beyond %d waiting: %v, want errDNSBusy", slots, err)
	}
	if n := r.refused.Load(); n != 1 {
		t.Errorf("refused %d, want 1", n)
	}
	for _, q := range waiting {
		answer(q)
	}
	for range slots {
		if err := <-done; err != nil {
			t.Errorf("an answered query: %v", err)
		}
	}
	go func() {
		_, err := r.query(context.Background(), "again.test.", dns.TypeTXT)
		done <- err
	}()
	q := <-asked
	if name := q.msg.Question[0].Name; name != "again.test." {
		t.Errorf("the nameserver was asked %q, want again.test. (the refused query asked nothing)", name)
	}
	answer(q)
	if err := <-done; err != nil {
		t.Errorf("a query once the others ended: %v", err)
	}
}

// testResolver answers from c, read never again.
func testResolver(c hostConf) *hostResolver {
	r := &hostResolver{slots: make(chan struct{}, hostDNSMaxQueries)}
	r.conf.Store(&c)
	return r
}
