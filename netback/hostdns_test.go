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
)

func TestParseHosts(t *testing.T) {
	h := parseHosts(strings.NewReader(`# comment
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
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("no TCP port beside UDP %s: %v", pc.LocalAddr(), err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// sp formats values as fmt.Println does, spaced, without the newline.
func sp(a ...any) string { return strings.TrimSuffix(fmt.Sprintln(a...), "\n") }

func TestHostResolver(t *testing.T) {
	long := make([]string, 40)
	for i := range long {
		long[i] = fmt.Sprintf("big.test. 60 IN A 192.0.2.%d", i+1)
	}
	addr := fakeNameserver(t, map[string][]string{
		"www.test. A":         {"www.test. 60 IN A 192.0.2.10"},
		"v6.test. AAAA":       {"v6.test. 60 IN AAAA 2001:db8::1"},
		"alias.test. CNAME":   {"alias.test. 60 IN CNAME www.test."},
		"www.test. CNAME":     nil,
		"test. MX":            {"test. 60 IN MX 10 mail.test."},
		"test. NS":            {"test. 60 IN NS ns1.test."},
		"_sip._udp.test. SRV": {"_sip._udp.test. 60 IN SRV 1 2 5060 sip.test."},
		"test. TXT":           {`test. 60 IN TXT "v=spf1" " -all"`},
		"big.test. A":         long,
	})
	r := &hostResolver{
		slots:    make(chan struct{}, hostDNSMaxQueries),
		hosts:    map[string][]net.IPAddr{"pinned.test.": {{IP: net.IPv4(198, 51, 100, 7).To4()}}},
		servers:  []string{addr},
		timeout:  2 * time.Second,
		attempts: 1,
	}
	ctx := context.Background()
	ips := func(host string) string {
		got, err := r.LookupIPAddr(ctx, host)
		if err != nil {
			return "error: " + err.Error()
		}
		var s []string
		for _, ip := range got {
			s = append(s, ip.String())
		}
		return strings.Join(s, ",")
	}
	tests := []struct{ name, got, want string }{
		{"A", ips("www.test."), "192.0.2.10"},
		{"A from the hosts file", ips("PINNED.test."), "198.51.100.7"},
		{"AAAA only", ips("v6.test."), "2001:db8::1"},
		{"truncated over UDP, whole over TCP", fmt.Sprint(strings.Count(ips("big.test."), ",") + 1), "40"},
		{"no such name", ips("nope.test."), "error: nope.test.: no such host"},
	}
	cname, err := r.LookupCNAME(ctx, "alias.test.")
	tests = append(tests, struct{ name, got, want string }{"CNAME", sp(cname, err), "www.test. <nil>"})
	cname, err = r.LookupCNAME(ctx, "www.test.")
	tests = append(tests, struct{ name, got, want string }{"CNAME of a canonical name", sp(cname, err), "www.test. <nil>"})
	mx, err := r.LookupMX(ctx, "test.")
	tests = append(tests, struct{ name, got, want string }{"MX", sp(len(mx), mx[0].Host, mx[0].Pref, err), "1 mail.test. 10 <nil>"})
	ns, err := r.LookupNS(ctx, "test.")
	tests = append(tests, struct{ name, got, want string }{"NS", sp(len(ns), ns[0].Host, err), "1 ns1.test. <nil>"})
	_, srv, err := r.LookupSRV(ctx, "", "", "_sip._udp.test.")
	tests = append(tests, struct{ name, got, want string }{"SRV", sp(len(srv), *srv[0], err), "1 {sip.test. 5060 1 2} <nil>"})
	txt, err := r.LookupTXT(ctx, "test.")
	tests = append(tests, struct{ name, got, want string }{"TXT", sp(txt, err), "[v=spf1 -all] <nil>"})
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if _, err := r.LookupMX(ctx, "nope.test."); !errors.Is(err, errNoSuchHost) {
		t.Errorf("MX of a missing name: %v, want errNoSuchHost", err)
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
	r := &hostResolver{servers: []string{pc.LocalAddr().String()}, timeout: 50 * time.Millisecond, attempts: 2, slots: make(chan struct{}, hostDNSMaxQueries)}
	start := time.Now()
	if _, err := r.LookupIPAddr(context.Background(), "www.test."); err == nil || errors.Is(err, errNoSuchHost) {
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
	r := &hostResolver{servers: []string{pc.LocalAddr().String()}, timeout: time.Minute, attempts: 1, slots: make(chan struct{}, slots)}
	done := make(chan error, slots+1)
	for i := range slots {
		go func() {
			_, err := r.LookupTXT(context.Background(), fmt.Sprintf("q%d.test.", i))
			done <- err
		}()
	}
	var waiting []query
	for range slots {
		waiting = append(waiting, <-asked)
	}
	if _, err := r.LookupTXT(context.Background(), "beyond.test."); !errors.Is(err, errDNSBusy) {
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
		_, err := r.LookupTXT(context.Background(), "again.test.")
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
