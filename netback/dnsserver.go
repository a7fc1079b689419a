package netback

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// hostDNSPerGuest bounds the queries one guest has the gateway's DNS
// server answer at once, below hostDNSMaxQueries for all of them: on a hub
// one VM asking names of a nameserver that never answers would otherwise
// take every slot, and every other VM's queries fail. A resolver asks a
// few names at a time (a stub resolver one, a browser a dozen); beyond
// the bound a query is answered SERVFAIL at once and counted, as beyond
// hostDNSMaxQueries.
const hostDNSPerGuest = 16

// dnsHandler is the gateway's DNS server (on UDP and TCP, at the gateway's
// and the DNS server's addresses): it forwards each query's question to
// the host's nameservers (hostResolver) and gives the guest their answer
// as they gave it: its reply code (NXDOMAIN only for a name that does
// not exist), its records of every type and section, their TTLs, but
// for no IPv6 address (withoutIPv6). A name of the hosts file written
// rooted is answered its IPv4 addresses from there, with TTL 0. Any other failure (the nameservers' answer, a
// timeout, too many queries) is SERVFAIL, so that the guest's resolver
// tries again rather than take the name for missing. An EDNS query is
// answered with an OPT record (RFC 6891 6.1.1); over UDP an answer is
// cut to the client's EDNS size, or 512 bytes without, and marked
// truncated (TC), so that the client asks again over TCP.
type dnsHandler struct {
	r *hostResolver
	// ctx ends the queries being asked when the gateway closes.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	// asking counts each guest's queries being answered; a guest with
	// none has no entry.
	asking map[netip.Addr]int
	wg     sync.WaitGroup // the queries being answered
}

func newDNSHandler(r *hostResolver) *dnsHandler {
	d := &dnsHandler{r: r, asking: map[netip.Addr]int{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// close ends the queries being answered and waits for them; later ones
// are not answered. Call it once the servers stopped reading.
func (d *dnsHandler) close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	return nil
}

// udp and tcp are the handlers of the server's two transports: over UDP
// an answer is cut to the client's EDNS0 size (512 bytes without).
func (d *dnsHandler) udp() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { d.serve(w, q, dns.MinMsgSize) })
}

func (d *dnsHandler) tcp() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { d.serve(w, q, dns.MaxMsgSize) })
}

// serve answers q to w, in a message of at most size bytes (or the
// client's EDNS0 size, over UDP).
func (d *dnsHandler) serve(w dns.ResponseWriter, q *dns.Msg, size int) {
	guest := guestOfAddr(w.RemoteAddr())
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	admitted := d.asking[guest] < hostDNSPerGuest
	if admitted {
		d.asking[guest]++
		d.wg.Add(1)
	}
	d.mu.Unlock()
	var m *dns.Msg
	if admitted {
		m = d.answer(q)
		d.mu.Lock()
		if d.asking[guest]--; d.asking[guest] == 0 {
			delete(d.asking, guest)
		}
		d.mu.Unlock()
		defer d.wg.Done()
	} else {
		d.r.refused.Add(1)
		m = dnsReply(q, dns.RcodeServerFailure)
	}
	if e := q.IsEdns0(); e != nil && size == dns.MinMsgSize && int(e.UDPSize()) > size {
		size = int(e.UDPSize())
	}
	m.Truncate(size)
	_ = w.WriteMsg(m) // lost as a datagram is lost: the guest asks again
}

// dnsServerUDPSize is the EDNS size the server gives in its OPT records:
// the largest query it reads over UDP (dns.Server's default).
const dnsServerUDPSize = dns.MinMsgSize

// dnsReply starts q's reply, of reply code rcode: q's id and question,
// its RD and CD flags, and an OPT record when q has one (RFC 6891
// 6.1.1), with q's DO bit (RFC 3225 3).
func dnsReply(q *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	if e := q.IsEdns0(); e != nil {
		m.SetEdns0(dnsServerUDPSize, e.Do())
	}
	return m
}

// guestOfAddr is the address of the guest a query came from (its
// connection's or datagram's remote address); the zero Addr for none.
func guestOfAddr(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return ap.Addr().Unmap()
}

// answer is the reply to q: from the hosts file, else the nameservers'.
// Only a standard query of one question, EDNS version 0, is forwarded.
// Refused: zone transfers, as the nameservers would; classes but IN (CH
// asks the nameservers' version and names, nothing a guest needs); and
// ANY, as many public resolvers do (RFC 8482): a resolver's answer to it
// is what its cache holds, which tells a guest what the host or other VMs
// looked up, and no resolver library asks it for addresses.
func (d *dnsHandler) answer(q *dns.Msg) *dns.Msg {
	if q.Opcode != dns.OpcodeQuery {
		return dnsReply(q, dns.RcodeNotImplemented)
	}
	if len(q.Question) != 1 {
		return dnsReply(q, dns.RcodeFormatError)
	}
	if e := q.IsEdns0(); e != nil && e.Version() != 0 {
		return dnsReply(q, dns.RcodeBadVers)
	}
	if q.Question[0].Qclass != dns.ClassINET {
		return dnsReply(q, dns.RcodeRefused)
	}
	switch q.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeANY:
		return dnsReply(q, dns.RcodeRefused)
	}
	if m := d.fromHosts(q); m != nil {
		return m
	}
	in, err := d.r.forward(d.ctx, q)
	if err != nil {
		return dnsReply(q, dns.RcodeServerFailure)
	}
	m := dnsReply(q, in.Rcode)
	m.AuthenticatedData = in.AuthenticatedData
	m.Answer, m.Ns = in.Answer, in.Ns
	for _, rr := range in.Extra {
		// The nameserver's OPT record was for the gateway (the guest's
		// is dnsReply's), as a signature would be.
		switch rr.(type) {
		case *dns.OPT, *dns.TSIG, *dns.SIG:
			continue
		}
		m.Extra = append(m.Extra, rr)
	}
	if q.Question[0].Qtype == dns.TypeAAAA {
		withoutIPv6(m)
	}
	return m
}

// withoutIPv6 leaves out of m, the answer to an AAAA question, its
// addresses (and their signatures), keeping its reply code and CNAME
// chain: the network has no IPv6 route, and a guest given an IPv6
// address would try it, as NetBSD's getaddrinfo may first, and a
// program using only the first address fails. The answer is the gateway's
// then, not authenticated (AD clear).
func withoutIPv6(m *dns.Msg) {
	kept := m.Answer[:0]
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.AAAA:
			continue
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeAAAA {
				continue
			}
		}
		kept = append(kept, rr)
	}
	if len(kept) < len(m.Answer) {
		m.AuthenticatedData = false
	}
	m.Answer = kept
}

// fromHosts answers an A or AAAA question of a name of the hosts file:
// A with its IPv4 addresses, AAAA with none (the network has no IPv6:
// withoutIPv6), the name existing all the same; nil for other questions
// and names.
func (d *dnsHandler) fromHosts(q *dns.Msg) *dns.Msg {
	qq := q.Question[0]
	if qq.Qclass != dns.ClassINET || (qq.Qtype != dns.TypeA && qq.Qtype != dns.TypeAAAA) {
		return nil
	}
	ips, ok := d.r.config().hosts[hostKey(qq.Name)]
	if !ok {
		return nil
	}
	m := dnsReply(q, dns.RcodeSuccess)
	for _, ip := range ips {
		hdr := dns.RR_Header{Name: qq.Name, Rrtype: qq.Qtype, Class: dns.ClassINET}
		if v4 := ip.IP.To4(); qq.Qtype == dns.TypeA && v4 != nil {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: v4})
		}
	}
	return m
}
