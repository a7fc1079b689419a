package netback

import (
	"context"
	"errors"
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
// and the DNS server's addresses): it answers A, CNAME, MX, NS, SRV and
// TXT questions from the host's resolver (hostResolver), other types
// with no records. A name that does not exist is NXDOMAIN; any other
// failure (the nameservers' answer, a timeout, too many queries) is
// SERVFAIL, so that the guest's resolver tries again rather than take
// the name for missing. Answers have TTL 0: the guest asks again each
// time, as the host's resolver may answer otherwise meanwhile.
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
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if admitted {
		d.answer(m)
		d.mu.Lock()
		if d.asking[guest]--; d.asking[guest] == 0 {
			delete(d.asking, guest)
		}
		d.mu.Unlock()
		defer d.wg.Done()
	} else {
		d.r.refused.Add(1)
		m.Rcode = dns.RcodeServerFailure
	}
	if e := q.IsEdns0(); e != nil && size == dns.MinMsgSize && int(e.UDPSize()) > size {
		size = int(e.UDPSize())
	}
	m.Truncate(size)
	_ = w.WriteMsg(m) // lost as a datagram is lost: the guest asks again
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

// answer fills m, a reply, with the answers to its questions, or the
// reply code of the first that fails.
func (d *dnsHandler) answer(m *dns.Msg) {
	for _, q := range m.Question {
		rrs, err := d.lookup(q)
		if err != nil {
			m.Answer = nil
			m.Rcode = dns.RcodeServerFailure
			if errors.Is(err, errNoSuchHost) {
				m.Rcode = dns.RcodeNameError
			}
			return
		}
		m.Answer = append(m.Answer, rrs...)
	}
}

// lookup answers one question from the host's resolver.
func (d *dnsHandler) lookup(q dns.Question) ([]dns.RR, error) {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET}
	}
	ctx := d.ctx
	var rrs []dns.RR
	switch q.Qtype {
	case dns.TypeA:
		ips, err := d.r.LookupIPAddr(ctx, q.Name)
		for _, ip := range ips {
			if v4 := ip.IP.To4(); v4 != nil {
				rrs = append(rrs, &dns.A{Hdr: hdr(dns.TypeA), A: v4})
			}
		}
		return rrs, err
	case dns.TypeCNAME:
		target, err := d.r.LookupCNAME(ctx, q.Name)
		if err != nil {
			return nil, err
		}
		return []dns.RR{&dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: target}}, nil
	case dns.TypeMX:
		mxs, err := d.r.LookupMX(ctx, q.Name)
		for _, mx := range mxs {
			rrs = append(rrs, &dns.MX{Hdr: hdr(dns.TypeMX), Mx: mx.Host, Preference: mx.Pref})
		}
		return rrs, err
	case dns.TypeNS:
		nss, err := d.r.LookupNS(ctx, q.Name)
		for _, ns := range nss {
			rrs = append(rrs, &dns.NS{Hdr: hdr(dns.TypeNS), Ns: ns.Host})
		}
		return rrs, err
	case dns.TypeSRV:
		_, srvs, err := d.r.LookupSRV(ctx, "", "", q.Name)
		for _, s := range srvs {
			rrs = append(rrs, &dns.SRV{Hdr: hdr(dns.TypeSRV), Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
		}
		return rrs, err
	case dns.TypeTXT:
		txts, err := d.r.LookupTXT(ctx, q.Name)
		for _, t := range txts {
			rrs = append(rrs, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: txtStrings(t)})
		}
		return rrs, err
	}
	return nil, nil
}

// txtStrings cuts a TXT record's text into the character strings of at
// most 255 bytes it is sent as.
func txtStrings(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
