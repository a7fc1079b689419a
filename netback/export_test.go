package netback

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// ResolvConfPath lets the tests give the user network's DNS server
// nameservers of their own.
var ResolvConfPath = &resolvConfPath

// NewHubWithClock is NewHub with a clock of the test's.
func NewHubWithClock(cfg HubConfig, now func() time.Time) (*Hub, error) {
	return newHub(cfg, hubHooks{now: now})
}

// NewHubWithSave is NewHub whose lease file writes go through wrap (which
// calls save to write).
func NewHubWithSave(cfg HubConfig, wrap func(save func() error) error) (*Hub, error) {
	return newHub(cfg, hubHooks{wrapSave: wrap})
}

// The flood limit's bucket, for tests to count what passes it.
const (
	HubFloodBurst     = hubFloodBurst
	HubFloodFrameCost = hubFloodFrameCost
)

// The bounds on port forwards' connections waiting for the guest.
const (
	MaxPendingPerForward = maxPendingPerForward
	MaxPendingPerVM      = maxPendingPerVM
)

// SetForwardFlowLimits sets the bounds on the client flows of one UDP
// forward and of one VM's, and how long a flow lasts without a datagram,
// until the returned function restores them. Set them before starting
// the network.
func SetForwardFlowLimits(forward, vm int, idle time.Duration) (restore func()) {
	old, oldIdle := forwardFlowLimits, udpIdleFor
	forwardFlowLimits.forward, forwardFlowLimits.vm, udpIdleFor = int64(forward), int64(vm), idle
	return func() { forwardFlowLimits, udpIdleFor = old, oldIdle }
}

// SetForwardDialTimeout sets how long a forwarded connection waits for the
// guest, until the returned function restores it. Set it before starting
// the network.
func SetForwardDialTimeout(d time.Duration) (restore func()) {
	old := forwardDialTimeoutFor
	forwardDialTimeoutFor = d
	return func() { forwardDialTimeoutFor = old }
}

// NATRelays is the number of goroutines relaying u's guest connections
// to the host.
func NATRelays(u *User) int64 { return u.gw.nat.running.Load() }

// SetNATLimits sets the NAT's bounds on one guest's TCP connections and
// UDP flows, until the returned function restores them. Set them before
// starting the network.
func SetNATLimits(tcp, udp int) (restore func()) {
	old := natLimits
	natLimits.tcp, natLimits.udp = tcp, udp
	return func() { natLimits = old }
}

// ExpireHubUDPFlows ends up to k of guest's UDP flows through h's NAT as
// their idle timers would.
func ExpireHubUDPFlows(h *Hub, guest netip.Addr, k int) { h.gw.nat.expireUDP(guest, k) }

// NATDialsPerGuest is how many of one guest's TCP connections the NAT
// dials on the host at once.
const NATDialsPerGuest = natDialsPerGuest

// SetSYNSilence sets how long after a guest's last SYN, at least, the
// NAT takes it that the guest gave up its connection, until the returned
// function restores it.
func SetSYNSilence(d time.Duration) (restore func()) {
	old := synSilenceTest.Swap(int64(d))
	return func() { synSilenceTest.Store(old) }
}

// NATDialsPerService is how many of those the NAT dials to one
// destination at once.
const NATDialsPerService = natDialsPerService

// SetRootHubDir makes dir root's HubDir until the returned function
// restores it.
func SetRootHubDir(dir string) (restore func()) {
	old := rootHubDir
	rootHubDir = dir
	return func() { rootHubDir = old }
}

// SetNATBuffered sets how many of one guest's TCP connections the NAT
// gives its larger buffers, until the returned function restores it. Set
// it before starting the network.
func SetNATBuffered(k int) (restore func()) {
	old := natLimits
	natLimits.buffered = k
	return func() { natLimits = old }
}

// NATBuffer and NATSmallBuffer are the buffer sizes of the NAT's
// relayed TCP connections.
const (
	NATBuffer      = natTCPBuffer
	NATSmallBuffer = natTCPSmallBuffer
)

// HubTCPBuffers are the send and receive buffer sizes of the established
// TCP endpoints of h's gateway, each sorted.
func HubTCPBuffers(h *Hub) (send, recv []int64) {
	for _, te := range h.gw.stack.RegisteredEndpoints() {
		ep, ok := te.(tcpip.Endpoint)
		if !ok || ep.State() != uint32(tcp.StateEstablished) {
			continue
		}
		send = append(send, ep.SocketOptions().GetSendBufferSize())
		recv = append(recv, ep.SocketOptions().GetReceiveBufferSize())
	}
	slices.Sort(send)
	slices.Sort(recv)
	return send, recv
}

// SetNameservers makes the networks started until the returned function
// is called ask servers (host:port) with timeout instead of resolv.conf's.
func SetNameservers(servers []string, timeout time.Duration) (restore func()) {
	old := nameserversFor
	nameserversFor = func() ([]string, time.Duration) { return servers, timeout }
	return func() { nameserversFor = old }
}

// DNSPerGuest is how many queries one guest has answered at once.
const DNSPerGuest = hostDNSPerGuest

// DNSConnsPerGuest is how many DNS-over-TCP connections one guest holds
// open at once.
const DNSConnsPerGuest = dnsTCPPerGuest

// SetDNSTCPTimeout makes the networks started until the returned
// function is called keep a DNS-over-TCP connection open for d waiting
// for its first query and each one after.
func SetDNSTCPTimeout(d time.Duration) (restore func()) {
	oldFirst, oldIdle := dnsTCPFirstQueryFor, dnsTCPIdleFor
	dnsTCPFirstQueryFor, dnsTCPIdleFor = d, d
	return func() { dnsTCPFirstQueryFor, dnsTCPIdleFor = oldFirst, oldIdle }
}

// SetHubRejoinGrace sets how long a starting hub holds the leases of the
// VMs connected at its lease file's last write, until the returned
// function restores it. Set it before starting the network.
func SetHubRejoinGrace(d time.Duration) (restore func()) {
	old := hubRejoinGraceFor
	hubRejoinGraceFor = d
	return func() { hubRejoinGraceFor = old }
}

// SetHubNATGrace sets how long a hub keeps the NAT connections of a VM
// that left for it to rejoin, until the returned function restores it.
// Set it before starting the network.
func SetHubNATGrace(d time.Duration) (restore func()) {
	old := hubNATGraceFor
	hubNATGraceFor = d
	return func() { hubNATGraceFor = old }
}

// SetHubWriteTimeout sets how long a VM's connection may take no frame
// before the hub drops it, until the returned function restores it; a
// running hub may read it meanwhile.
func SetHubWriteTimeout(d time.Duration) (restore func()) {
	old := hubWriteTimeoutTest.Swap(int64(d))
	return func() { hubWriteTimeoutTest.Store(old) }
}

// HubPortBytes bounds the bytes queued towards one VM.
const HubPortBytes = hubPortBytes

// HubSendTo queues frame towards the VM of mac as the switch does; false
// when no such VM is joined.
func HubSendTo(h *Hub, mac [6]byte, frame []byte) bool {
	h.mu.RLock()
	p := h.ports[mac]
	h.mu.RUnlock()
	if p == nil {
		return false
	}
	h.push(p, frame)
	return true
}

// HubFillQueue queues frame towards the VM of mac as the switch does
// until its queue drops one (at most a queue's depth and one more
// frames); false when no such VM is joined.
func HubFillQueue(h *Hub, mac [6]byte, frame []byte) bool {
	h.mu.RLock()
	p := h.ports[mac]
	h.mu.RUnlock()
	if p == nil {
		return false
	}
	before := p.out.dropped.Load()
	for range hubPortDepth + 1 {
		if h.push(p, frame); p.out.dropped.Load() != before {
			break
		}
	}
	return true
}

// HubQueuedBytes is the bytes of buffers queued towards the VM of mac.
func HubQueuedBytes(h *Hub, mac [6]byte) int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if p := h.ports[mac]; p != nil {
		return p.out.bytes.Load()
	}
	return 0
}

// UserARPRequests returns how many ARP requests u's gateway has sent.
func UserARPRequests(u *User) uint64 {
	return u.gw.stack.Stats().ARP.OutgoingRequestsSent.Value()
}

// NewHostQuery reads the host's resolver configuration now, as a user
// network does when it starts, and returns its query of a name's A
// records (their addresses).
func NewHostQuery() func(ctx context.Context, name string) ([]string, error) {
	r := newHostResolver(false)
	return func(ctx context.Context, name string) ([]string, error) {
		rrs, err := r.query(ctx, name, dns.TypeA)
		var addrs []string
		for _, rr := range rrs {
			if a, ok := rr.(*dns.A); ok {
				addrs = append(addrs, a.A.String())
			}
		}
		return addrs, err
	}
}

// HubDropVM closes the hub's side of the VM's connection, as the hub does
// for a VM whose queue stayed full for the write timeout (push); false
// when no VM has mac.
func HubDropVM(h *Hub, mac [6]byte) bool {
	h.mu.RLock()
	p := h.ports[mac]
	h.mu.RUnlock()
	if p == nil {
		return false
	}
	_ = p.conn.Close()
	return true
}

// HubSettleNAT decides the pending end of the NAT relays at addr as the
// join of the VM of mac there does, with its hello's rejoin.
func HubSettleNAT(h *Hub, mac [6]byte, addr netip.Addr, rejoin bool) {
	h.settleNAT(mac, addr, rejoin)
}

// HubDialGaps is, for each TCP connection h's NAT is dialling on the
// host, the gap between the last two SYNs of the guest's it has seen
// since the dial began: 0 until the guest sent its SYN again.
func HubDialGaps(h *Hub) []time.Duration {
	n := h.gw.nat
	n.dialMu.Lock()
	defer n.dialMu.Unlock()
	var gaps []time.Duration
	for _, d := range n.dials {
		gaps = append(gaps, d.gap)
	}
	return gaps
}

// HubDialPorts is the guests' ports of h's NAT's connections being
// dialled.
func HubDialPorts(h *Hub) []uint16 {
	n := h.gw.nat
	n.dialMu.Lock()
	defer n.dialMu.Unlock()
	var ports []uint16
	for id := range n.dials {
		ports = append(ports, id.RemotePort)
	}
	return ports
}

// query asks the nameservers (forward) for name's records of type qtype
// and returns those answered. A name that does not exist is
// errNoSuchHost.
func (r *hostResolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	in, err := r.forward(ctx, q)
	switch {
	case err != nil:
		return nil, err
	case in.Rcode == dns.RcodeNameError:
		return nil, fmt.Errorf("%s: %w", name, errNoSuchHost)
	}
	return in.Answer, nil
}

// count is how many connections of uid are counted, and of all users.
func (s *pendingSet) count(uid int) (n, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[uid], s.total
}

// expireUDP ends up to k UDP flows of guest as their idle timers would,
// for the tests.
func (n *nat) expireUDP(guest netip.Addr, k int) {
	var fs []*udpFlow
	n.mu.Lock()
	for f, c := range n.flows {
		if c.addr == guest && len(fs) < k {
			fs = append(fs, f)
		}
	}
	n.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
}
