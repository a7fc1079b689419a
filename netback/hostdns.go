package netback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// hostResolver answers the user network's DNS server from the host's
// resolver configuration: the names of /etc/hosts, then the nameservers of
// /etc/resolv.conf, asked directly. A VM's own network (in the VMM) reads
// the files when it starts and never again: unlike net.Resolver (or
// libc's, in a cgo build) it opens no file once made, so a VMM whose
// seccomp filter forbids opening files still answers DNS, and a change to
// those files on the host is seen by the VM's next run. A shared network
// (smolvmm net, a daemon running for months while DHCP, NetworkManager or
// a VPN rewrite resolv.conf) reads them again when they change (read):
// itself, or, contained (HubConfig.Contained: its seccomp filter refuses
// open as a VMM's does), through HubConfig.ReadHostFiles.
type hostResolver struct {
	conf atomic.Pointer[hostConf]
	// read, when set, makes config look at the files again, at most
	// every hostConfCheckEvery, and read them again when they changed
	// (their stamps): ReadHostFiles, or HubConfig.ReadHostFiles.
	read func(content bool) (HostFiles, error)
	// logf, when set, is told of a file cut at MaxHostFileSize, of a
	// nameserver left out for its zone, and of a read that failed (once
	// until one succeeds).
	logf    func(format string, args ...any)
	checkMu sync.Mutex
	checked time.Time // when config last looked
	stamps  [2]HostFileStamp
	failed  bool // the last look failed
	// atStart are the files as read at the start, without their
	// content: what setLog tells of.
	atStart HostFiles
	// slots holds a token for each query being asked of the nameservers
	// (hostDNSMaxQueries of them); refused counts the queries failed at
	// once because it was full, or because their guest had
	// hostDNSPerGuest being answered (dnsHandler).
	slots   chan struct{}
	refused atomic.Uint64
}

// hostConf is the host's resolver configuration as read at one time.
type hostConf struct {
	hosts   map[string][]net.IPAddr // by hostKey
	servers []string                // host:port
	// zoned are the servers with a zone (a link-local IPv6 address and
	// its interface, "[fe80::1%eth0]:53"), by server: their socket
	// address, with the zone's interface index (resolveZones).
	zoned map[string]*unix.SockaddrInet6
	// unzoned are the servers left out because their zone named no
	// interface known, each with why, for the log.
	unzoned  []string
	timeout  time.Duration // per query and server
	attempts int
}

// hostConfCheckEvery is how often, at most, a shared network's resolver
// looks whether the files changed (a query's open and fstat of two
// files, or a request to its broker).
const hostConfCheckEvery = time.Second

// MaxHostFileSize is the most that is read of the host's hosts file and
// of resolv.conf, each: a longer file is cut after its last whole line
// within it (a hub logs it), as its reader's memory and a broker's
// answer are bounded. It is far beyond any real file's size: hosts
// files of ad-blocking lists run to a few MiB, and a name cut from one
// would be asked of the nameservers, past the block.
const MaxHostFileSize = 64 << 20

// maxHostFileSize is MaxHostFileSize, lowered by the tests.
var maxHostFileSize = MaxHostFileSize

// HostFileStamp is what tells one of the host's resolver files changed:
// missing (or not a regular file, or unreadable), or its inode, size,
// modification and change times (an editor's rename gives a new inode;
// a rewrite in place within one clock tick, a new size or change time).
type HostFileStamp struct {
	// Present is false for a file missing, unreadable or not regular;
	// the other fields are zero then.
	Present bool
	// Ino is the file's inode number.
	Ino uint64
	// Size is the file's size in bytes, as fstat gave it.
	Size int64
	// Mtime and Ctime are in nanoseconds since 1970.
	Mtime, Ctime int64
}

// HostFile is one of the host's resolver files as read at one time.
type HostFile struct {
	// Stamp is the file's, from the descriptor its content is read
	// through.
	Stamp HostFileStamp
	// Content is the file's content when it was asked for: its first
	// MaxHostFileSize bytes, cut after the last whole line within them
	// when it is longer.
	Content []byte
	// Cut says the file was longer than MaxHostFileSize and Content
	// was cut.
	Cut bool
}

// HostFiles are the host's resolver files: the hosts file (/etc/hosts)
// and resolv.conf (/etc/resolv.conf).
type HostFiles struct {
	// Hosts is /etc/hosts.
	Hosts HostFile
	// ResolvConf is /etc/resolv.conf.
	ResolvConf HostFile
	// Zones are, with ResolvConf's content, the interface index of
	// each zone its nameservers name ("nameserver fe80::1%wlp2s0"), by
	// the interface's name, as /sys/class/net gave them when the files
	// were read: a contained process, whose filter refuses the netlink
	// socket through which the net package finds an interface, is given
	// them with the files. A zone that is a number is an index already
	// and is not in it, nor is one that names no interface. At most
	// MaxHostZones.
	Zones map[string]int
}

// MaxHostZones bounds HostFiles.Zones: resolvers use 3 nameservers.
const MaxHostZones = 16

// MaxInterfaceName is the longest name of a network interface, IFNAMSIZ
// less its NUL.
const MaxInterfaceName = 15

func (f HostFiles) stamps() [2]HostFileStamp {
	return [2]HostFileStamp{f.Hosts.Stamp, f.ResolvConf.Stamp}
}

// ReadHostFiles stats the host's resolver files, /etc/hosts and
// /etc/resolv.conf, paths no caller chooses, and reads them when content
// is true, each through one descriptor (its stamp and content agree),
// and then the index of each zone resolv.conf names (HostFiles.Zones). A
// file missing, unreadable or not regular (opened without blocking: a
// FIFO there is no hang) is a zero HostFile. It opens files for reading
// and nothing else.
func ReadHostFiles(content bool) HostFiles {
	f := HostFiles{Hosts: readHostFile(hostsPath, content), ResolvConf: readHostFile(resolvConfPath, content)}
	if content {
		f.Zones = readZones(f.ResolvConf)
	}
	return f
}

// sysClassNet is where an interface's index is read, by its name (a
// variable for the tests).
var sysClassNet = "/sys/class/net"

// readZones reads, from sysClassNet, the index of each interface that a
// nameserver of resolv.conf names as its zone, up to MaxHostZones of
// them; a zone that is a number, or not a plain interface name (no
// path: no '/', not "." or ".."), or naming no interface, is not looked
// up.
func readZones(resolvConf HostFile) map[string]int {
	var zones map[string]int
	for _, zone := range resolvConfZones(resolvConf) {
		if _, err := strconv.Atoi(zone); err == nil || !interfaceName(zone) || len(zones) == MaxHostZones {
			continue
		}
		if _, ok := zones[zone]; ok {
			continue
		}
		if index, ok := readIfIndex(zone); ok {
			if zones == nil {
				zones = map[string]int{}
			}
			zones[zone] = index
		}
	}
	return zones
}

// interfaceName reports whether name may be a network interface's name,
// as Linux allows one: 1 to MaxInterfaceName bytes, no '/', ':', NUL or
// space, not "." or "..".
func interfaceName(name string) bool {
	return name != "" && len(name) <= MaxInterfaceName && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/:\x00 \t\n\v\f\r")
}

// resolvConfZones are the zones of resolv.conf's nameservers, in order.
func resolvConfZones(resolvConf HostFile) []string {
	if !resolvConf.Stamp.Present {
		return nil
	}
	conf, err := dns.ClientConfigFromReader(bytes.NewReader(resolvConf.Content))
	if err != nil {
		return nil
	}
	var zones []string
	for _, s := range conf.Servers {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() != "" {
			zones = append(zones, a.Zone())
		}
	}
	return zones
}

// readIfIndex reads the index of the interface name from sysClassNet:
// an open for reading, as a filter that refuses sockets allows.
func readIfIndex(name string) (int, bool) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(sysClassNet+"/"+name+"/ifindex", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var buf [32]byte
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, false
		}
		if m == 0 {
			break
		}
		n += m
	}
	index, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || index <= 0 || index > math.MaxInt32 {
		return 0, false
	}
	return index, true
}

// readHostFile is ReadHostFiles' reading of one file at path.
func readHostFile(path string, content bool) HostFile {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return HostFile{}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return HostFile{}
	}
	f := HostFile{Stamp: HostFileStamp{Present: true, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}}
	if !content {
		return f
	}
	// One byte past the bound tells a longer file, grown since the
	// stat or not.
	limit := maxHostFileSize
	buf := make([]byte, 0, min(max(st.Size, 0), int64(limit))+1)
	for len(buf) <= limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):min(cap(buf), limit+1)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return HostFile{}
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	if len(buf) > limit {
		buf = buf[:limit]
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[:i+1]
		} else {
			buf = buf[:0]
		}
		f.Cut = true
	}
	f.Content = buf
	return f
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

// readHostFilesHere is ReadHostFiles as a hostResolver's read.
func readHostFilesHere(content bool) (HostFiles, error) { return ReadHostFiles(content), nil }

// interfaceIndex finds an interface's index by its name through the net
// package, which asks a netlink socket: only at a resolver's start,
// before any seccomp filter, for a zone HostFiles.Zones lacks (no
// /sys). A variable for the tests.
var interfaceIndex = func(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

// newHostResolver reads the host's hosts file and resolver configuration
// now; reread makes it read them again when they change (hostResolver),
// itself until read is replaced.
func newHostResolver(reread bool) *hostResolver {
	r := &hostResolver{slots: make(chan struct{}, hostDNSMaxQueries)}
	files := ReadHostFiles(true)
	if reread {
		r.read = readHostFilesHere
		r.checked = time.Now()
		r.stamps = files.stamps()
	}
	r.conf.Store(readHostConf(files, interfaceIndex))
	files.Hosts.Content, files.ResolvConf.Content, files.Zones = nil, nil, nil
	r.atStart = files
	return r
}

// setLog sets r's logf and tells it of the files read at the start that
// were cut, and of the nameservers left out for their zone.
func (r *hostResolver) setLog(logf func(format string, args ...any)) {
	r.logf = logf
	r.logRead(r.atStart, r.conf.Load())
}

// logRead logs each of files cut at MaxHostFileSize, and each of conf's
// nameservers left out for its zone.
func (r *hostResolver) logRead(files HostFiles, conf *hostConf) {
	if r.logf == nil {
		return
	}
	for _, u := range conf.unzoned {
		r.logf("DNS: %s", u)
	}
	for _, f := range []struct {
		path string
		HostFile
	}{{hostsPath, files.Hosts}, {resolvConfPath, files.ResolvConf}} {
		if f.Cut {
			r.logf("DNS: %s is %d bytes long; only its lines within the first %d bytes are read", f.path, f.Stamp.Size, maxHostFileSize)
		}
	}
}

// config is the configuration to answer a query with: for a resolver
// that rereads, the files are looked at first, unless they were less
// than hostConfCheckEvery ago, and read again if they changed.
func (r *hostResolver) config() *hostConf {
	if r.read != nil {
		r.checkMu.Lock()
		if now := time.Now(); now.Sub(r.checked) >= hostConfCheckEvery || now.Before(r.checked) {
			r.checked = now
			r.recheck()
		}
		r.checkMu.Unlock()
	}
	return r.conf.Load()
}

// recheck reads the files again if their stamps changed; one that cannot
// be looked at keeps the configuration as it was. Zones are found from
// the files' Zones alone: a contained process may be under its filter
// now, which refuses interfaceIndex's netlink socket (and kills it).
func (r *hostResolver) recheck() {
	files, err := r.read(false)
	if err == nil && files.stamps() != r.stamps {
		files, err = r.read(true)
	}
	if err != nil {
		if !r.failed && r.logf != nil {
			r.logf("DNS: the host's %s and %s not looked at again: %v", hostsPath, resolvConfPath, err)
		}
		r.failed = true
		return
	}
	r.failed = false
	if files.stamps() == r.stamps {
		return
	}
	r.stamps = files.stamps()
	conf := readHostConf(files, nil)
	r.logRead(files, conf)
	r.conf.Store(conf)
}

// readHostConf is the host's hosts file and resolver configuration from
// files. A missing or unreadable file leaves its part empty: no host
// names, or the local nameserver (as glibc and Go do without
// resolv.conf). A nameserver's zone is found in files.Zones, or else,
// when lookup is set, through it (resolveZones).
func readHostConf(files HostFiles, lookup func(name string) (int, error)) *hostConf {
	c := &hostConf{timeout: 5 * time.Second, attempts: 2}
	if files.Hosts.Stamp.Present {
		c.hosts = parseHosts(files.Hosts.Content)
	}
	if files.ResolvConf.Stamp.Present {
		if conf, err := dns.ClientConfigFromReader(bytes.NewReader(files.ResolvConf.Content)); err == nil {
			for _, s := range conf.Servers {
				c.servers = append(c.servers, net.JoinHostPort(s, conf.Port))
			}
			if conf.Timeout > 0 {
				c.timeout = time.Duration(conf.Timeout) * time.Second
			}
			if conf.Attempts > 0 {
				c.attempts = conf.Attempts
			}
		}
	}
	if nameserversFor != nil {
		c.servers, c.timeout = nameserversFor()
	}
	c.servers = c.resolveZones(c.servers, files.Zones, lookup)
	if len(c.servers) == 0 {
		c.servers = []string{"127.0.0.1:53", "[::1]:53"}
	}
	return c
}

// resolveZones finds the interface index of each server's zone
// (NetworkManager writes "nameserver fe80::1%wlp2s0"), for exchange to
// dial without the net package: given a zone, its dials and its
// connections' addresses turn it into an index (or back) through a cache
// refreshed from a netlink socket at most a minute old, a socket the
// seccomp filter refuses. A zone that is a number is the index; a name
// is looked up in zones (HostFiles.Zones), then, when set, through
// lookup, which a process under its filter must not have. A server
// whose zone is found nowhere is left out, and said in r.unzoned: no
// packet could be sent to it.
func (r *hostConf) resolveZones(servers []string, zones map[string]int, lookup func(name string) (int, error)) []string {
	var kept []string
	for _, server := range servers {
		ap, err := netip.ParseAddrPort(server)
		if err != nil || ap.Addr().Zone() == "" {
			kept = append(kept, server)
			continue
		}
		zone := ap.Addr().Zone()
		index, err := zoneIndex(zone, zones, lookup)
		if err != nil {
			r.unzoned = append(r.unzoned, fmt.Sprintf("nameserver %s of %s left out: %v", server, resolvConfPath, err))
			continue
		}
		if r.zoned == nil {
			r.zoned = map[string]*unix.SockaddrInet6{}
		}
		r.zoned[server] = &unix.SockaddrInet6{Port: int(ap.Port()), ZoneId: uint32(index), Addr: ap.Addr().As16()}
		kept = append(kept, server)
	}
	return kept
}

// zoneIndex is resolveZones' index of zone.
func zoneIndex(zone string, zones map[string]int, lookup func(name string) (int, error)) (int, error) {
	if n, err := strconv.Atoi(zone); err == nil {
		if n <= 0 || n > math.MaxInt32 {
			return 0, fmt.Errorf("its zone %s is no interface index", zone)
		}
		return n, nil
	}
	if n, ok := zones[zone]; ok {
		return n, nil
	}
	if lookup == nil {
		return 0, fmt.Errorf("its zone %q names no interface", zone)
	}
	n, err := lookup(zone)
	if err != nil {
		return 0, fmt.Errorf("its zone %q: %w", zone, err)
	}
	return n, nil
}

// parseHosts reads a hosts file: an address, then its names, per line;
// '#' starts a comment. Lines that do not parse are skipped, as the C
// library does. A line is read whatever its length, as glibc reads it
// (content is bounded by MaxHostFileSize): a line of thousands of
// aliases loses neither its names nor those of the lines after it.
func parseHosts(content []byte) map[string][]net.IPAddr {
	hosts := map[string][]net.IPAddr{}
	for rest := content; len(rest) > 0; {
		var text []byte
		text, rest, _ = bytes.Cut(rest, []byte{'\n'})
		line, _, _ := strings.Cut(string(text), "#")
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

// hostDNSUpstreamSize is the EDNS size the gateway gives the nameservers
// for a guest's EDNS query: the size DNS Flag Day 2020 settled on, which
// passes without fragments on any path; a longer answer comes over TCP.
const hostDNSUpstreamSize = 1232

// forward asks the nameservers q's question, in order and for the
// configured attempts, over UDP and then TCP when the answer was
// truncated; the first answer NOERROR or NXDOMAIN is returned whole.
// The query asks recursion whatever q's RD says (one without would read
// the nameservers' cache: which names the host and other VMs looked up),
// and only class IN is asked (CH would read their version and names).
// It has q's CD and AD flags and, when q has EDNS, an OPT
// record of the gateway's with q's DO bit (q's EDNS options are its
// client's business with the gateway). A nameserver that answers it
// FORMERR is asked again without OPT, as one that knows no EDNS does.
// Any other reply code, or an answer to another question, is tried on
// the next; once all are tried, the last failure is returned. A query
// beyond hostDNSMaxQueries is errDNSBusy.
func (r *hostResolver) forward(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, fmt.Errorf("a query of %d questions, not 1", len(q.Question))
	}
	name := q.Question[0].Name
	if c := q.Question[0].Qclass; c != dns.ClassINET {
		return nil, fmt.Errorf("%s: a question of class %s, not IN", name, dns.Class(c))
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	default:
		r.refused.Add(1)
		return nil, fmt.Errorf("%s: %w", name, errDNSBusy)
	}
	fq := new(dns.Msg)
	fq.Id = dns.Id()
	fq.Question = []dns.Question{q.Question[0]}
	fq.RecursionDesired = true
	fq.CheckingDisabled = q.CheckingDisabled
	fq.AuthenticatedData = q.AuthenticatedData
	if e := q.IsEdns0(); e != nil {
		fq.SetEdns0(hostDNSUpstreamSize, e.Do())
	}
	plain := fq.Copy()
	plain.Extra = nil
	conf := r.config()
	var last error
	for a := 0; a < conf.attempts; a++ {
		for _, server := range conf.servers {
			in, err := conf.ask(ctx, fq, server)
			if err == nil && in.Rcode == dns.RcodeFormatError && fq.IsEdns0() != nil {
				in, err = conf.ask(ctx, plain, server)
			}
			switch {
			case err != nil:
				last = err
			case in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError:
				last = fmt.Errorf("%s: nameserver %s answered %s", name, server, dns.RcodeToString[in.Rcode])
			case len(in.Question) != 1 || !sameQuestion(in.Question[0], fq.Question[0]):
				last = fmt.Errorf("%s: nameserver %s answered another question (%v)", name, server, in.Question)
			default:
				return in, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return nil, last
}

// sameQuestion reports whether a and b ask the same, names compared
// without case (a nameserver may answer in the case of its zone).
func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// ask asks server q over UDP, then over TCP when the answer is truncated.
func (r *hostConf) ask(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	in, err := r.exchange(ctx, q, server, "udp")
	if err == nil && in.Truncated {
		in, err = r.exchange(ctx, q, server, "tcp")
	}
	return in, err
}

// exchange asks server q over network. The end of ctx ends it (the
// client library heeds it for the dial only): the gateway's closing does
// not wait for a nameserver's timeout.
func (r *hostConf) exchange(ctx context.Context, q *dns.Msg, server, network string) (in *dns.Msg, err error) {
	// No MPTCP whatever GODEBUG says: its first dial probes the kernel
	// (bind, uname), which the seccomp filter refuses.
	d := &net.Dialer{Timeout: r.timeout}
	d.SetMultipathTCP(false)
	c := &dns.Client{Net: network, Timeout: r.timeout, Dialer: d}
	var conn *dns.Conn
	if sa, ok := r.zoned[server]; ok {
		zc, err := dialZoned(ctx, network, server, sa, r.timeout)
		if err != nil {
			return nil, err
		}
		conn = &dns.Conn{Conn: zc}
	} else if conn, err = c.DialContext(ctx, server); err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	in, _, err = c.ExchangeWithConnContext(ctx, q, conn)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return in, err
}

// dialZoned connects to server, whose socket address sa has a zone, over
// network ("udp" or "tcp") with the socket calls themselves: no zone is
// turned into an index, nor back (resolveZones). The connection is an
// *os.File in the runtime's poller, so its deadlines and Close work as a
// net.Conn's; a UDP one is a net.PacketConn, which the DNS client needs
// to send each message as a datagram.
func dialZoned(ctx context.Context, network, server string, sa *unix.SockaddrInet6, timeout time.Duration) (net.Conn, error) {
	typ := unix.SOCK_DGRAM
	if network == "tcp" {
		typ = unix.SOCK_STREAM
	}
	// Flags set after the socket is made, as on systems without
	// SOCK_CLOEXEC; ForkLock keeps an exec from inheriting it meanwhile.
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_INET6, typ, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: zonedAddr{network, server}, Err: os.NewSyscallError("socket", err)}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: network, Addr: zonedAddr{network, server}, Err: os.NewSyscallError("fcntl", err)}
	}
	cerr := unix.Connect(fd, sa)
	f := os.NewFile(uintptr(fd), server)
	fail := func(err error) (net.Conn, error) {
		f.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: zonedAddr{network, server}, Err: err}
	}
	if cerr == unix.EINPROGRESS {
		// A TCP connection being made: wait until the socket is
		// writable and has no error (a wake-up before it is
		// connected waits again).
		stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
		f.SetWriteDeadline(time.Now().Add(timeout))
		rc, err := f.SyscallConn()
		if err != nil {
			return fail(err)
		}
		cerr = nil
		werr := rc.Write(func(fd uintptr) bool {
			n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case err != nil:
				cerr = err
			case n != 0:
				cerr = unix.Errno(n)
			default:
				return connected(fd)
			}
			return true
		})
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		if werr != nil {
			return fail(werr)
		}
		f.SetWriteDeadline(time.Time{})
	}
	if cerr != nil {
		return fail(os.NewSyscallError("connect", cerr))
	}
	c := zonedConn{File: f, network: network, server: server}
	if network == "tcp" {
		return &c, nil
	}
	return &zonedPacketConn{c}, nil
}

// connected reports whether the socket fd has a peer. Its own call of
// getpeername(2): unix.Getpeername asks for the socket's protocol too
// (SO_PROTOCOL), which the seccomp filter refuses.
func connected(fd uintptr) bool {
	var sa unix.RawSockaddrAny
	n := uint32(unsafe.Sizeof(sa))
	_, _, errno := unix.Syscall(unix.SYS_GETPEERNAME, fd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	return errno == 0
}

// zonedAddr is a zoned server's address as resolv.conf gave it.
type zonedAddr struct{ network, server string }

func (a zonedAddr) Network() string { return a.network }
func (a zonedAddr) String() string  { return a.server }

// zonedConn is a connection dialZoned made.
type zonedConn struct {
	*os.File
	network, server string
}

// LocalAddr is unknown: asking the socket would turn its zone back into
// a name (dialZoned).
func (c *zonedConn) LocalAddr() net.Addr  { return zonedAddr{c.network, ""} }
func (c *zonedConn) RemoteAddr() net.Addr { return zonedAddr{c.network, c.server} }

// zonedPacketConn is a connected UDP socket dialZoned made: a datagram
// is read from and written to its server only.
type zonedPacketConn struct{ zonedConn }

func (c *zonedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.Read(p)
	return n, c.RemoteAddr(), err
}

func (c *zonedPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) { return c.Write(p) }
