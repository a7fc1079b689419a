package netback

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// recordedReply is a dns.ResponseWriter that keeps the message written,
// packed as the server would send it.
type recordedReply struct {
	remote net.Addr
	wire   []byte
	err    error
}

func (w *recordedReply) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(10, 0, 2, 3), Port: 53}
}
func (w *recordedReply) RemoteAddr() net.Addr { return w.remote }
func (w *recordedReply) WriteMsg(m *dns.Msg) error {
	w.wire, w.err = m.Pack()
	return w.err
}
func (w *recordedReply) Write(b []byte) (int, error) {
	w.wire = append([]byte(nil), b...)
	return len(b), nil
}
func (w *recordedReply) Close() error        { return nil }
func (w *recordedReply) TsigStatus() error   { return nil }
func (w *recordedReply) TsigTimersOnly(bool) {}
func (w *recordedReply) Hijack()             {}

// TestDNSHandler asks the gateway's DNS server questions of a nameserver
// (fakeNameserver) and checks the guest gets what the nameserver said:
// its reply code, its records of any type with their TTLs, the hosts
// file's addresses for A, no address for AAAA (the network has no IPv6),
// REFUSED for ANY and classes but IN, an OPT record to an EDNS query, and
// an answer cut to the client's size (TC set) over UDP, whole over TCP.
func TestDNSHandler(t *testing.T) {
	big := make([]string, 40)
	for i := range big {
		big[i] = fmt.Sprintf("big.test. 3600 IN A 192.0.2.%d", i+1)
	}
	addr := fakeNameserver(t, map[string][]string{
		"www.test. A":                  {"www.test. 3600 IN A 192.0.2.10"},
		"www.test. AAAA":               {"www.test. 3600 IN AAAA 2001:db8::10"},
		"alias6.test. AAAA":            {"alias6.test. 300 IN CNAME www.test.", "www.test. 3600 IN AAAA 2001:db8::10"},
		"www.test. CNAME":              nil,
		"alias.test. CNAME":            {"alias.test. 300 IN CNAME www.test."},
		"mxonly.test. MX":              {"mxonly.test. 3600 IN MX 10 mail.test."},
		"test. SOA":                    {"test. 3600 IN SOA ns1.test. admin.test. 1 7200 900 1209600 300"},
		"test. NS":                     {"test. 3600 IN NS ns1.test."},
		"test. TXT":                    {`test. 3600 IN TXT "v=spf1" " -all"`},
		"_sip._udp.test. SRV":          {"_sip._udp.test. 3600 IN SRV 1 2 5060 sip.test."},
		"10.2.0.192.in-addr.arpa. PTR": {"10.2.0.192.in-addr.arpa. 3600 IN PTR www.test."},
		"big.test. A":                  big,
	})
	r := testResolver(hostConf{
		hosts: map[string][]net.IPAddr{"pinned.test.": {
			{IP: net.IPv4(198, 51, 100, 7).To4()}, {IP: net.ParseIP("2001:db8::7")}}},
		servers:  []string{addr},
		timeout:  2 * time.Second,
		attempts: 1,
	})
	d := newDNSHandler(r)
	defer d.close()
	udp := &net.UDPAddr{IP: net.IPv4(10, 0, 2, 15), Port: 5353}
	tcp := &net.TCPAddr{IP: net.IPv4(10, 0, 2, 15), Port: 5353}
	edns := func(size uint16, do bool) func(*dns.Msg) {
		return func(m *dns.Msg) { m.SetEdns0(size, do) }
	}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		from  net.Addr
		edit  func(*dns.Msg) // the query's, if any
		// want: the reply's code, flags and sections, each record as
		// dns.RR's String gives it (tab-separated), "|" between them.
		rcode  int
		tc     bool
		answer string
		opt    string // the OPT record, "" for none
		n      int    // len(Answer) when answer is "" and n > 0; -1: any
	}{
		{name: "A, upstream's TTL", qname: "www.test.", qtype: dns.TypeA,
			answer: "www.test.\t3600\tIN\tA\t192.0.2.10"},
		{name: "AAAA: the name exists, no address (no IPv6 here)", qname: "www.test.", qtype: dns.TypeAAAA},
		{name: "AAAA: the CNAME chain, no address", qname: "alias6.test.", qtype: dns.TypeAAAA,
			answer: "alias6.test.\t300\tIN\tCNAME\twww.test."},
		{name: "CNAME of a name with none", qname: "www.test.", qtype: dns.TypeCNAME},
		{name: "CNAME", qname: "alias.test.", qtype: dns.TypeCNAME,
			answer: "alias.test.\t300\tIN\tCNAME\twww.test."},
		{name: "A of a name with only MX", qname: "mxonly.test.", qtype: dns.TypeA},
		{name: "MX", qname: "mxonly.test.", qtype: dns.TypeMX,
			answer: "mxonly.test.\t3600\tIN\tMX\t10 mail.test."},
		{name: "AAAA of a missing name", qname: "nope.test.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
		{name: "A of a missing name", qname: "nope.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "PTR", qname: "10.2.0.192.in-addr.arpa.", qtype: dns.TypePTR,
			answer: "10.2.0.192.in-addr.arpa.\t3600\tIN\tPTR\twww.test."},
		{name: "SOA", qname: "test.", qtype: dns.TypeSOA,
			answer: "test.\t3600\tIN\tSOA\tns1.test. admin.test. 1 7200 900 1209600 300"},
		{name: "NS", qname: "test.", qtype: dns.TypeNS, answer: "test.\t3600\tIN\tNS\tns1.test."},
		{name: "TXT", qname: "test.", qtype: dns.TypeTXT, answer: "test.\t3600\tIN\tTXT\t\"v=spf1\" \" -all\""},
		{name: "SRV", qname: "_sip._udp.test.", qtype: dns.TypeSRV,
			answer: "_sip._udp.test.\t3600\tIN\tSRV\t1 2 5060 sip.test."},
		{name: "A from the hosts file", qname: "PINNED.test.", qtype: dns.TypeA,
			answer: "PINNED.test.\t0\tIN\tA\t198.51.100.7"},
		{name: "AAAA of the hosts file: the name exists, no address", qname: "pinned.test.", qtype: dns.TypeAAAA},
		{name: "EDNS: OPT, whole in the client's size", qname: "big.test.", qtype: dns.TypeA, edit: edns(1232, false),
			opt: "version 0 do false udp 512", n: 40},
		{name: "EDNS: the DO bit echoed", qname: "www.test.", qtype: dns.TypeA, edit: edns(1232, true),
			answer: "www.test.\t3600\tIN\tA\t192.0.2.10", opt: "version 0 do true udp 512"},
		{name: "EDNS: cut to the client's size", qname: "big.test.", qtype: dns.TypeA, edit: edns(600, false),
			tc: true, n: -1, opt: "version 0 do false udp 512"},
		{name: "no EDNS: cut to 512", qname: "big.test.", qtype: dns.TypeA, tc: true, n: -1},
		{name: "over TCP: whole", qname: "big.test.", qtype: dns.TypeA, from: tcp, n: 40},
		{name: "EDNS version 1", qname: "www.test.", qtype: dns.TypeA, rcode: dns.RcodeBadVers,
			edit: func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }, opt: "version 0 do false udp 512"},
		{name: "not a query", qname: "test.", qtype: dns.TypeSOA, rcode: dns.RcodeNotImplemented,
			edit: func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }},
		{name: "zone transfer", qname: "test.", qtype: dns.TypeAXFR, from: tcp, rcode: dns.RcodeRefused},
		{name: "ANY", qname: "www.test.", qtype: dns.TypeANY, rcode: dns.RcodeRefused},
		{name: "class CH", qname: "version.bind.", qtype: dns.TypeTXT, rcode: dns.RcodeRefused,
			edit: func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }},
	}
	for _, tt := range tests {
		q := new(dns.Msg)
		q.SetQuestion(tt.qname, tt.qtype)
		if tt.edit != nil {
			tt.edit(q)
		}
		from := tt.from
		if from == nil {
			from = udp
		}
		w := &recordedReply{remote: from}
		size := dns.MinMsgSize
		if from == tcp {
			d.tcp().ServeDNS(w, q)
			size = dns.MaxMsgSize
		} else {
			d.udp().ServeDNS(w, q)
			if e := q.IsEdns0(); e != nil && int(e.UDPSize()) > size {
				size = int(e.UDPSize())
			}
		}
		if w.err != nil || w.wire == nil {
			t.Errorf("%s: no reply written (%v)", tt.name, w.err)
			continue
		}
		var m dns.Msg
		if err := m.Unpack(w.wire); err != nil {
			t.Errorf("%s: reply does not parse: %v", tt.name, err)
			continue
		}
		var answer []string
		for _, rr := range m.Answer {
			answer = append(answer, rr.String())
		}
		opt := ""
		if o := m.IsEdns0(); o != nil {
			opt = fmt.Sprintf("version %d do %v udp %d", o.Version(), o.Do(), o.UDPSize())
		}
		got := sp(dns.RcodeToString[m.Rcode], "tc", m.Truncated, "answer", strings.Join(answer, "|"), "opt", opt)
		want := sp(dns.RcodeToString[tt.rcode], "tc", tt.tc, "answer", tt.answer, "opt", tt.opt)
		switch {
		case tt.n > 0:
			got = sp(dns.RcodeToString[m.Rcode], "tc", m.Truncated, "answers", len(m.Answer), "opt", opt)
			want = sp(dns.RcodeToString[tt.rcode], "tc", tt.tc, "answers", tt.n, "opt", tt.opt)
		case tt.n < 0:
			got = sp(dns.RcodeToString[m.Rcode], "tc", m.Truncated, "opt", opt)
			want = sp(dns.RcodeToString[tt.rcode], "tc", tt.tc, "opt", tt.opt)
		}
		if got != want {
			t.Errorf("%s: %s %s answered\n got %s\nwant %s", tt.name, tt.qname, dns.TypeToString[tt.qtype], got, want)
		}
		if len(w.wire) > size {
			t.Errorf("%s: reply of %d bytes, over the client's %d", tt.name, len(w.wire), size)
		}
		if m.Id != q.Id || !m.Response || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
			t.Errorf("%s: reply id %d response %v question %v, want id %d, true, %v", tt.name, m.Id, m.Response, m.Question, q.Id, q.Question)
		}
	}
}

// TestDNSHandlerUpstreamQuestion: whatever a guest's query asks, the
// host's nameservers are asked class IN with recursion desired: a query
// without RD would read their cache (which names the host and other VMs
// looked up), class CH their version and names, and ANY their cache again;
// those are refused and ask nothing. The guest's reply echoes its RD.
func TestDNSHandlerUpstreamQuestion(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan string, 16)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		qq := q.Question[0]
		asked <- fmt.Sprintf("%s %s rd=%v", dns.ClassToString[qq.Qclass], dns.TypeToString[qq.Qtype], q.RecursionDesired)
		m := new(dns.Msg)
		m.SetReply(q)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	r := testResolver(hostConf{servers: []string{pc.LocalAddr().String()}, timeout: 2 * time.Second, attempts: 1})
	d := newDNSHandler(r)
	defer d.close()
	tests := []struct {
		name   string
		qclass uint16
		qtype  uint16
		rd     bool
		rcode  int
		asked  string // what the nameserver was asked, "" for nothing
	}{
		{"RD=0", dns.ClassINET, dns.TypeA, false, dns.RcodeSuccess, "IN A rd=true"},
		{"RD=1", dns.ClassINET, dns.TypeMX, true, dns.RcodeSuccess, "IN MX rd=true"},
		{"class CH", dns.ClassCHAOS, dns.TypeTXT, true, dns.RcodeRefused, ""},
		{"class HS", dns.ClassHESIOD, dns.TypeA, true, dns.RcodeRefused, ""},
		{"class ANY", dns.ClassANY, dns.TypeA, true, dns.RcodeRefused, ""},
		{"type ANY", dns.ClassINET, dns.TypeANY, true, dns.RcodeRefused, ""},
	}
	for _, tt := range tests {
		q := new(dns.Msg)
		q.SetQuestion("www.test.", tt.qtype)
		q.Question[0].Qclass = tt.qclass
		q.RecursionDesired = tt.rd
		w := &recordedReply{remote: &net.UDPAddr{IP: net.IPv4(10, 0, 2, 15), Port: 5353}}
		d.udp().ServeDNS(w, q)
		var m dns.Msg
		if err := m.Unpack(w.wire); err != nil {
			t.Errorf("%s: reply: %v", tt.name, err)
			continue
		}
		got := ""
		select {
		case got = <-asked:
		default:
		}
		if got != tt.asked || m.Rcode != tt.rcode || m.RecursionDesired != tt.rd {
			t.Errorf("%s: nameserver asked %q, guest answered %s rd=%v; want %q, %s rd=%v",
				tt.name, got, dns.RcodeToString[m.Rcode], m.RecursionDesired, tt.asked, dns.RcodeToString[tt.rcode], tt.rd)
		}
	}
}
