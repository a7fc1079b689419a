package netback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// hostResolver answers the user network's DNS server from the host's
// resolver configuration as it was when the network started: the names of
// /etc/hosts, then the nameservers of /etc/resolv.conf, asked directly.
// Unlike net.Resolver (or libc's, in a cgo build) it opens no file once
// made, so a VMM whose seccomp filter forbids opening files still answers
// DNS; a change to those files on the host is seen by the next VM.
type hostResolver struct {
	hosts    map[string][]net.IPAddr // by hostKey
	servers  []string                // host:port
	timeout  time.Duration           // per query and server
	attempts int
	// slots holds a token for each query being asked of the nameservers
	// (hostDNSMaxQueries of them); refused counts the queries failed at
	// once because it was full, or because their guest had
	// hostDNSPerGuest being answered (dnsHandler).
	slots   chan struct{}
	refused atomic.Uint64
}

// hostDNSMaxQueries bounds the queries the gateway asks the host's
// nameservers at once, for all its guests: each holds a socket of this
// process and a goroutine for up to timeout × attempts, and a guest
// flooding the gateway's DNS with names a silent nameserver never answers
// would otherwise use up the process's file descriptors (on a hub, every
// VM's). Beyond it a query fails at once (the guest is answered SERVFAIL)
// and is counted. Each guest has a share of it (hostDNSPerGuest). dnsmasq, the DNS forwarder of libvirt's NAT networks,
// forwards at most 150 queries at once by default (dns-forward-max).
const hostDNSMaxQueries = 150

// errDNSBusy is a query refused for hostDNSMaxQueries.
var errDNSBusy = errors.New("too many queries to the host's nameservers at once")

// Files the host's resolver reads (variables for the tests).
var (
	hostsPath      = "/etc/hosts"
	resolvConfPath = "/etc/resolv.conf"
	// nameserversFor, when set, replaces the nameservers (host:port)
	// and timeout resolv.conf gives, for the tests: resolv.conf names
	// no port.
	nameserversFor func() ([]string, time.Duration)
)

// newHostResolver reads the host's hosts file and resolver configuration
// now. A missing or unreadable file leaves its part empty: no host names,
// or the local nameserver (as glibc and Go do without resolv.conf).
func newHostResolver() *hostResolver {
	r := &hostResolver{timeout: 5 * time.Second, attempts: 2, slots: make(chan struct{}, hostDNSMaxQueries)}
	if f, err := os.Open(hostsPath); err == nil {
		r.hosts = parseHosts(f)
		f.Close()
	}
	if conf, err := dns.ClientConfigFromFile(resolvConfPath); err == nil {
		for _, s := range conf.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, conf.Port))
		}
		if conf.Timeout > 0 {
			r.timeout = time.Duration(conf.Timeout) * time.Second
		}
		if conf.Attempts > 0 {
			r.attempts = conf.Attempts
		}
	}
	if nameserversFor != nil {
		r.servers, r.timeout = nameserversFor()
	}
	if len(r.servers) == 0 {
		r.servers = []string{"127.0.0.1:53", "[::1]:53"}
	}
	return r
}

// parseHosts reads a hosts file: an address, then its names, per line;
// '#' starts a comment. Lines that do not parse are skipped, as the C
// library does.
func parseHosts(rd io.Reader) map[string][]net.IPAddr {
	hosts := map[string][]net.IPAddr{}
	s := bufio.NewScanner(rd)
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		addr, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		ip := net.IPAddr{IP: net.IP(addr.Unmap().AsSlice()), Zone: addr.Zone()}
		for _, name := range f[1:] {
			key := hostKey(name)
			hosts[key] = append(hosts[key], ip)
		}
	}
	return hosts
}

// hostKey is how a name is looked up in the hosts file: case-insensitive
// and as written, so that "localhost." (a rooted name, as every DNS query
// carries) does not match "localhost", as neither glibc nor Go's resolver
// match it: the guest's answers stay those the host's resolver gives.
func hostKey(name string) string { return strings.ToLower(name) }

// errNoSuchHost is the answer for a name the nameservers do not know.
var errNoSuchHost = errors.New("no such host")

// query asks the nameservers for name's records of type qtype, in order
// and for the configured attempts, over UDP and then TCP when the answer
// was truncated. A name that does not exist is errNoSuchHost; a query
// beyond hostDNSMaxQueries is errDNSBusy.
func (r *hostResolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	default:
		r.refused.Add(1)
		return nil, fmt.Errorf("%s: %w", name, errDNSBusy)
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	var last error
	for a := 0; a < r.attempts; a++ {
		for _, server := range r.servers {
			in, err := r.exchange(ctx, q, server, "udp")
			if err == nil && in.Truncated {
				in, err = r.exchange(ctx, q, server, "tcp")
			}
			switch {
			case err != nil:
				last = err
			case in.Rcode == dns.RcodeNameError:
				return nil, fmt.Errorf("%s: %w", name, errNoSuchHost)
			case in.Rcode != dns.RcodeSuccess:
				last = fmt.Errorf("%s: nameserver %s answered %s", name, server, dns.RcodeToString[in.Rcode])
			default:
				return in.Answer, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return nil, last
}

// exchange asks server q over network. The end of ctx ends it (the
// client library heeds it for the dial only): the gateway's closing does
// not wait for a nameserver's timeout.
func (r *hostResolver) exchange(ctx context.Context, q *dns.Msg, server, network string) (*dns.Msg, error) {
	// No MPTCP whatever GODEBUG says: its first dial probes the kernel
	// (bind, uname), which the seccomp filter refuses.
	d := &net.Dialer{Timeout: r.timeout}
	d.SetMultipathTCP(false)
	c := &dns.Client{Net: network, Timeout: r.timeout, Dialer: d}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	in, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return in, err
}

// LookupIPAddr returns host's addresses: from the hosts file, else its A
// records (and its AAAA records when it has none, so that an IPv6-only
// name exists).
func (r *hostResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ips, ok := r.hosts[hostKey(host)]; ok {
		return ips, nil
	}
	var ips []net.IPAddr
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, qtype)
		if err != nil {
			return nil, err
		}
		for _, rr := range rrs {
			switch rr := rr.(type) {
			case *dns.A:
				ips = append(ips, net.IPAddr{IP: rr.A})
			case *dns.AAAA:
				ips = append(ips, net.IPAddr{IP: rr.AAAA})
			}
		}
		if len(ips) > 0 {
			return ips, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", host, errNoSuchHost)
}

// LookupCNAME returns host's canonical name: its CNAME's target, or host
// itself when it is a name with addresses.
func (r *hostResolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	rrs, err := r.query(ctx, host, dns.TypeCNAME)
	if err != nil {
		return "", err
	}
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok {
			return c.Target, nil
		}
	}
	if _, err := r.LookupIPAddr(ctx, host); err != nil {
		return "", err
	}
	return dns.Fqdn(host), nil
}

// LookupMX returns name's mail exchangers.
func (r *hostResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	var mx []*net.MX
	for _, rr := range rrs {
		if m, ok := rr.(*dns.MX); ok {
			mx = append(mx, &net.MX{Host: m.Mx, Pref: m.Preference})
		}
	}
	return mx, err
}

// LookupNS returns name's nameservers.
func (r *hostResolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	rrs, err := r.query(ctx, name, dns.TypeNS)
	var ns []*net.NS
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NS); ok {
			ns = append(ns, &net.NS{Host: n.Ns})
		}
	}
	return ns, err
}

// LookupSRV returns the SRV records of _service._proto.name, or of name
// when service and proto are empty (as the DNS server asks).
func (r *hostResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	target := name
	if service != "" || proto != "" {
		target = "_" + service + "._" + proto + "." + name
	}
	rrs, err := r.query(ctx, target, dns.TypeSRV)
	var srv []*net.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok {
			srv = append(srv, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
		}
	}
	return dns.Fqdn(target), srv, err
}

// LookupTXT returns name's TXT records, each one's strings joined (as
// net.Resolver does).
func (r *hostResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	var txt []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			txt = append(txt, strings.Join(t.Txt, ""))
		}
	}
	return txt, err
}
