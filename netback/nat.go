package netback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The gateway's NAT of the guests' connections to the outside: each TCP
// connection or UDP flow a guest opens to an address the gateway does not
// serve itself becomes a socket of this process to the same address (the
// gateway's own address standing for the host's loopback), and the bytes
// or datagrams are relayed between the two.
const (
	// natDialsPerGuest bounds one guest's TCP connections being dialled
	// on the host at once, and natDialsPerService those of them to one
	// destination (address and port); its SYNs beyond them wait for a
	// dial to end (natSYNWait), then are dropped, and the guest sends
	// them again. Each holds a goroutine and a half-open socket for up
	// to natDialTimeout. The bound per service
	// is what keeps a guest connecting: a program retrying a service
	// that is down and drops SYNs, with a connect timeout shorter than
	// natDialTimeout, leaves a dial hanging on the host at each try
	// (its guest closes a connection not yet made without a word), and
	// those filled the guest's dials for everything else until they
	// timed out.
	natDialsPerGuest   = 16
	natDialsPerService = 4
	// natHandshakesPerGuest bounds one guest's TCP connections dialled
	// on the host whose handshake with the guest is not over: the
	// gateway sent its SYN-ACK and waits for the ACK, holding the host's
	// connection, a goroutine and a slot of the guest's forwarder for up
	// to gVisor's 127 s of SYN-ACK retransmissions (a fixed schedule:
	// its TCPSynRetriesOption changes nothing). Beyond it the guest's
	// SYNs wait and are dropped as beyond its dials, and it is logged
	// once. A live guest, NetBSD's as gVisor's, answers a SYN-ACK
	// within a round trip on the host, so its handshakes not over are
	// the few of its last dials; 64, four times its dials, leaves room
	// for SYN-ACKs lost in a full queue and sent again a second later.
	// A guest that sends SYNs and never ACKs held up to natTCPPerGuest
	// host connections, and three of them filled the forwarder that
	// every VM of a hub shared (4096): no other VM could connect for
	// two minutes.
	natHandshakesPerGuest = 64
	// natGuestInFlight bounds one guest's SYNs being handled at once by
	// its forwarder (gVisor's drops those beyond it): its dials and
	// handshakes, the SYNs waiting for one to end (natSYNWait), and
	// those being admitted or dropped. Each guest has a forwarder of its
	// own (forwardTCP), so that a guest that fills its own holds up only
	// its own connections.
	natGuestInFlight = 4 * (natDialsPerGuest + natHandshakesPerGuest)
	// natSYNWait is how long at most a guest's SYN that finds its dials
	// or handshakes at their bound waits for one to end, before it is
	// dropped for the guest to send again. Dropped at once, a burst of
	// connections to one service that answers (a load test, a parallel
	// fetch: 200 at once) met the guest's backoff, 1, 3, 7, 15 s..., and
	// half of them timed out, where a host or slirp accepts them all in
	// milliseconds. It is below the guest's first retransmission (1 s on
	// Linux and gVisor): while a SYN waits, the forwarder ignores the
	// connection's SYNs sent again, and the next one, after it is
	// dropped, waits anew.
	natSYNWait = 900 * time.Millisecond
	// natSYNWaitsPerGuest bounds one guest's SYNs waiting (natSYNWait),
	// leaving room in its forwarder for its dials and handshakes twice
	// over, so that a SYN that finds a dial free is never dropped for
	// the waiting ones; natSYNWaitsPerService bounds those to one
	// destination, so that a service that drops SYNs, whose dials end
	// only as the guest gives up (natSYNSilence), leaves some of the
	// waits to the others. Beyond them a SYN is dropped at once.
	natSYNWaitsPerGuest   = natGuestInFlight - 2*(natDialsPerGuest+natHandshakesPerGuest)
	natSYNWaitsPerService = natSYNWaitsPerGuest * 3 / 4
	// natHubSYNWaits bounds a hub's guests' SYNs waiting all together,
	// as the one table every VM shared bounded them before each had a
	// forwarder of its own: each holds a goroutine and a timer (some
	// 13 KiB), and natSYNWaitsPerGuest alone let one user's VMs hold
	// half a GiB, a hub's 1 GiB. One user's VMs have half of them, the
	// users but root and the hub's own three quarters (natShare);
	// beyond, a SYN is dropped at once, counted as delayed.
	natHubSYNWaits = 4096
	// natForwardersMax bounds the guests with a forwarder: a hub's VMs
	// send from their leased addresses only, at most 253 of them; a
	// SYN from any other source beyond it is reset.
	natForwardersMax = 1024
	// natSYNSilence is how long after a guest's last SYN of a connection
	// being dialled, at least, the NAT takes it that the guest gave up
	// and ends the dial (its slot freed), three times the last gap
	// between its SYNs when longer: a guest sends its SYN again with a
	// growing gap until its own timeout (Linux and gVisor after 1 s,
	// then 2, 4...; BSD's first retransmission, 6 s in 4.4BSD, comes
	// sooner), and says nothing when it closes a connection not yet
	// made.
	natSYNSilence = 15 * time.Second
	// natDialTimeout bounds a dial on the host for a guest's SYN: the
	// guest answers a connection that did not come in that long with a
	// reset. NetBSD's own connection-establishment timer is 75 s: the
	// guest has given up by then.
	natDialTimeout = 75 * time.Second
	// natHeldMax bounds the connections whose SYN was held back
	// (natBusy) remembered with the time of their first SYN (nat.held),
	// for all guests: beyond it (older than natDialTimeout pruned first)
	// a connection admitted late is watched as if its first SYN were its
	// last.
	natHeldMax = 16384
	// natTCPPerGuest and natUDPPerGuest bound the TCP connections and
	// UDP flows one guest has through the NAT at once, each holding a
	// socket of this process: on a hub one process serves every VM, and
	// without a bound one guest could use up its file descriptors and
	// cut every other VM off. Beyond them a guest's SYN is answered with
	// a reset, and the first datagram of a new flow is dropped (the
	// flows it has go on), as a NAT with a full table refuses. The other
	// user-mode NATs bound nothing themselves (slirp and gvproxy stop at
	// the process's descriptor limit, which Go raises to the hard one;
	// passt has one table of 128 Ki flows for everything), and a home
	// router's whole table holds a few thousand to 16 Ki entries. A
	// browser keeps a few hundred connections, a parallel build or a
	// crawler one or two thousand; a UDP flow lasts udpIdleTimeout, so
	// 1024 of them allow a guest about 11 new flows a second (a DNS
	// query each to an outside resolver) without end. Together they are
	// about 3 Ki descriptors per guest, far below the usual hard limits
	// (512 Ki with systemd, 1 Mi in containers); a hub bounds each
	// user's guests together, and all of them, too (natBudget).
	natTCPPerGuest = 2048
	natUDPPerGuest = 1024
	// natTCPBuffer is the send and the receive buffer of the gateway's
	// side of each of a guest's first natTCPBufferedConns relayed TCP
	// connections, on a hub only while its guests have fewer than
	// natHubBuffered such (one user's VMs half of them, the users but
	// root and the hub's own three quarters: natShare); the others get
	// natTCPSmallBuffer. gVisor's default is 1 MiB, tuned up to 4 MiB:
	// a guest that opened connections to a host server that sends, and
	// never read them, made a hub hold 1 MiB for each (293 MB for 300),
	// up to GBs for natTCPPerGuest. Now one guest's connections hold at
	// most 64 MiB in the first and 60 MiB in the rest (2 × 16 KiB
	// each), and a hub's 512 MiB in its natHubBuffered, where 240 VMs'
	// first ones could fill 15 GiB. 256 KiB is above the
	// bandwidth-delay product of a host's own connections and most
	// outside ones (1 Gb/s at 2 ms). A connection keeps its buffers, and
	// its count, until the gateway's side is done with its guest, past
	// the relay's end (drainTCP).
	natTCPBuffer        = 256 << 10
	natTCPSmallBuffer   = 16 << 10
	natTCPBufferedConns = 128
	natHubBuffered      = 1024
	// natICMPPerSecond and natICMPBurst are one guest's budget of ICMP
	// port unreachables (portUnreachable), a token bucket of its own
	// checked before the gateway stack's limiter (1000 a second, bursts
	// of 50), which every VM of a hub shares: a guest flooding closed
	// host ports from hundreds of flows drained that one, and its
	// neighbours' datagrams to closed ports went unanswered. It is far
	// above what a program needs to be told (a refusal per datagram
	// sent to a closed port, a DNS client's retries), and far below the
	// shared limit, which takes ten guests flooding at once to reach.
	natICMPPerSecond = 100
	natICMPBurst     = 10
	// natReserveMin and natHubMax size a hub's budget of relays
	// (newNATBudget). A hub keeps a quarter of its RLIMIT_NOFILE, and at
	// least natReserveMin descriptors unless that is above half of it,
	// for what is not a relay: each VM's connection and forwards' ports
	// and connections, the DNS servers' upstream queries, the lease
	// file. Its relays are at most natHubMax, whatever its limit; it is
	// four times a home router's table, half of passt's. An idle UDP
	// flow holds about 11 KiB (20,000 took 225 MB of RSS), 700 MiB for
	// natHubMax; a TCP connection whose buffers are full both ways
	// holds 32 KiB (natTCPSmallBuffer), 2 GiB for natHubMax, but for
	// the hub's natHubBuffered with 512 KiB, 512 MiB more: at most
	// some 2.5 GiB of buffers in all.
	natReserveMin = 1024
	natHubMax     = 64 << 10
	// udpIdleTimeout ends a UDP flow (its host socket and goroutines)
	// after this long without a datagram either way, as a NAT's
	// connection tracking forgets it; a later datagram opens a new flow.
	udpIdleTimeout = 90 * time.Second
	// udpMaxDatagram is the largest UDP payload over IPv4.
	udpMaxDatagram = 65507
)

// natHubLimits are a hub's bounds of its guests' SYNs waiting
// (natHubSYNWaits) and of their TCP connections with natTCPBuffer
// (natHubBuffered), a variable for the tests (read when its budget is
// made).
var natHubLimits = struct{ waits, buffered int }{natHubSYNWaits, natHubBuffered}

// natLimits are the per-guest bounds of a NAT: natTCPPerGuest,
// natUDPPerGuest and natTCPBufferedConns, a variable for the tests (read
// when a NAT is made).
var natLimits = struct{ tcp, udp, buffered int }{natTCPPerGuest, natUDPPerGuest, natTCPBufferedConns}

// udpIdleFor is udpIdleTimeout, a variable for the tests.
var udpIdleFor = udpIdleTimeout

// synSilenceTest replaces natSYNSilence when not 0: a test's, set while
// a NAT may read it (atomic).
var synSilenceTest atomic.Int64

// synWaitTest replaces natSYNWait when not 0, as synSilenceTest does.
var synWaitTest atomic.Int64

// synWaitFor is natSYNWait, or synWaitTest when set.
func synWaitFor() time.Duration {
	if d := time.Duration(synWaitTest.Load()); d != 0 {
		return d
	}
	return natSYNWait
}

// notRelayed are the destinations the NAT refuses: the cloud services
// that answer any process of the host by its address alone, which a guest
// must not reach as the host: 169.254.0.0/16 (the metadata services of
// most clouds), 100.100.100.200 (Alibaba Cloud's metadata),
// 168.63.129.16 (Azure's WireServer) and 192.0.0.192 (Oracle Cloud's
// metadata); the host's loopback 127.0.0.0/8, which a guest reaches as
// 10.0.2.2 only (gVisor drops such packets from a NIC by default, and
// this does not hang on that default); "this network" 0.0.0.0/8,
// multicast 224.0.0.0/4 and the reserved 240.0.0.0/4 with the broadcast
// address, which are not one host to connect to. The user subnet is
// refused apart (newNAT): its addresses are the virtual network's, never
// the host's.
var notRelayed = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("168.63.129.16/32"),
	netip.MustParsePrefix("192.0.0.192/32"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// nat relays the guests' TCP connections and UDP flows to the host's
// sockets. Its goroutines are its own and joined by wait; the gVisor
// forwarders start the TCP handlers, which enter through admitTCP.
type nat struct {
	// outside maps a guest's destination to the host's (gateway to
	// loopback), false for destinations not relayed.
	outside func(tcpip.Address) (netip.Addr, bool)
	// oneGuest makes every source address one guest's (a User's: its
	// guest may send from any address, and only harms itself).
	// Otherwise each source address is a guest's (a hub lets a VM send
	// from its leased address only).
	oneGuest bool
	// maxTCP, maxUDP and maxBuffered are natLimits as they were when
	// the NAT was made.
	maxTCP, maxUDP, maxBuffered int
	dialer                      net.Dialer
	// ctx ends the dials in progress when the gateway closes.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	// guests are the guests with relays, for the per-guest bounds and
	// for ending a guest's relays when it leaves (endGuest); a guest
	// with none has no entry.
	guests map[netip.Addr]*natGuest
	// flows are the UDP flows open, with their guest's entry.
	flows map[*udpFlow]*natGuest
	// openTCP and openUDP count every guest's relays, for Stats.
	openTCP, openUDP int
	wg               sync.WaitGroup
	// running counts the relays' goroutines, as wg does, for the tests.
	running atomic.Int64
	// refusedTCP and refusedUDP count the connections and flows refused
	// for a guest's bound; heldTCP the connections whose SYN was held
	// back (dropped for the guest to send again, after its wait) while
	// it had its most dials or handshakes not over, once each.
	refusedTCP, refusedUDP, heldTCP atomic.Uint64

	// dials are the TCP connections being dialled on the host, by the
	// guest's connection, for its SYNs sent again (watchTCP).
	dialMu sync.Mutex
	dials  map[stack.TransportEndpointID]*natDial
	// stack is the gateway's, which sends the guests the ICMP port
	// unreachables of their flows (portUnreachable); set by newGateway.
	stack *stack.Stack
	// budget, when set (a hub's, before its gateway starts), bounds the
	// relays of each user's guests and of all guests (under mu); userOf
	// says whose a guest is, called under mu as its first relay is
	// admitted (it must not wait on anything that holds mu), and logf
	// is told when a user meets a bound.
	budget *natBudget
	userOf func(netip.Addr) natUser
	logf   func(format string, args ...any)
	// forwarders are the guests' TCP forwarders, by guest (forwardTCP).
	fwdMu      sync.Mutex
	forwarders map[netip.Addr]*tcp.Forwarder
	// held is when the first SYN came of each connection held back
	// (holdSYN), for its dial's watch once admitted (watchDial): it may
	// be late in the guest's backoff, its next SYN far off.
	held       map[stack.TransportEndpointID]time.Time
	heldPruned time.Time // when held was last pruned
}

// natDial is a TCP connection being dialled on the host for a guest's
// SYN: ended (cancel) once the guest has sent none for giveUpAfter the
// last gap between them.
type natDial struct {
	last  time.Time     // the guest's last SYN
	gap   time.Duration // between its last two, 0 before it sent two
	quiet *time.Timer
}

// giveUpAfter is how long after a guest's last SYN, gap after the one
// before (0 for none), its connection is taken as given up.
func giveUpAfter(gap time.Duration) time.Duration {
	silence := time.Duration(synSilenceTest.Load())
	if silence == 0 {
		silence = natSYNSilence
	}
	return max(silence, 3*gap)
}

// watchDial records the dial of the guest's connection id, ended by
// cancel when the guest stops sending its SYN; unwatch forgets it. A
// connection held back first (holdSYN) is given three times as long as
// its guest has been sending its SYN, when longer: its next one may be
// that far off.
func (n *nat) watchDial(id stack.TransportEndpointID, cancel func()) (unwatch func()) {
	now := time.Now()
	d := &natDial{last: now}
	wait := giveUpAfter(0)
	n.dialMu.Lock()
	if first, ok := n.held[id]; ok {
		delete(n.held, id)
		if since := now.Sub(first); since < natDialTimeout {
			wait = max(wait, 3*since)
		}
	}
	d.quiet = time.AfterFunc(wait, cancel)
	n.dials[id] = d
	n.dialMu.Unlock()
	return func() {
		n.dialMu.Lock()
		delete(n.dials, id)
		n.dialMu.Unlock()
		d.quiet.Stop()
	}
}

// watchTCP is the stack's handler of the guests' TCP segments no
// endpoint takes, forward's (the forwarder's) after it notes each SYN
// sent again for a connection being dialled: the forwarder drops those.
func (n *nat) watchTCP(forward func(stack.TransportEndpointID, *stack.PacketBuffer) bool) func(stack.TransportEndpointID, *stack.PacketBuffer) bool {
	return func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if h := header.TCP(pkt.TransportHeader().Slice()); len(h) >= header.TCPMinimumSize &&
			h.Flags().Contains(header.TCPFlagSyn) && !h.Flags().Contains(header.TCPFlagAck) {
			n.dialMu.Lock()
			if d := n.dials[id]; d != nil {
				now := time.Now()
				d.gap, d.last = now.Sub(d.last), now
				d.quiet.Reset(giveUpAfter(d.gap))
			}
			n.dialMu.Unlock()
		}
		return forward(id, pkt)
	}
}

// forwardTCP hands a guest's TCP segment that no endpoint takes to the
// guest's own forwarder (made at its first, dropped as it leaves:
// endGuest), which starts handleTCP for
// a SYN of a new connection; false, for the stack to reset, from a
// source that is no guest's or beyond natForwardersMax guests. A
// forwarder's table of SYNs being handled (natGuestInFlight) is the
// guest's alone: one that every guest shared was filled by a few
// guests' handshakes left unfinished, and every other guest's SYNs were
// dropped.
func (n *nat) forwardTCP(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	guest, ok := n.guestOf(id.RemoteAddress)
	if !ok {
		return false
	}
	n.fwdMu.Lock()
	f := n.forwarders[guest]
	if f == nil {
		if len(n.forwarders) >= natForwardersMax {
			n.fwdMu.Unlock()
			return false
		}
		f = tcp.NewForwarder(n.stack, 0, natGuestInFlight, n.handleTCP)
		n.forwarders[guest] = f
	}
	n.fwdMu.Unlock()
	return f.HandlePacket(id, pkt)
}

// holdSYN notes a SYN of the guest's connection id, which came at
// came, dropped while the guest has its most dials or handshakes not
// over: the first of the connection is counted, and its time kept
// (within natHeldMax) for watchDial.
func (n *nat) holdSYN(id stack.TransportEndpointID, came time.Time) {
	now := time.Now()
	n.dialMu.Lock()
	defer n.dialMu.Unlock()
	if first, ok := n.held[id]; ok && now.Sub(first) < natDialTimeout {
		return
	}
	n.heldTCP.Add(1)
	if len(n.held) >= natHeldMax && now.Sub(n.heldPruned) >= time.Second {
		// At most once a second: a scan of the whole map.
		n.heldPruned = now
		for k, first := range n.held {
			if now.Sub(first) >= natDialTimeout {
				delete(n.held, k)
			}
		}
	}
	if len(n.held) < natHeldMax {
		n.held[id] = came
	}
}

// natGuest is one guest's relays. Each relay keeps its guest's entry:
// once the guest has left (endGuest), a guest at the same address starts
// a new one, and the old relays end on the old.
type natGuest struct {
	addr     netip.Addr
	tcp      int // TCP connections, dialling or established
	dialing  int // of which being dialled on the host
	buffered int // of which with natTCPBuffer
	udp      int // UDP flows
	// handshaking counts its connections dialled whose handshake with
	// the guest is not over (natHandshakesPerGuest); handshakesNoted
	// is set once the bound was logged, until the count falls to half.
	handshaking     int
	handshakesNoted bool
	// dialsTo counts the dials by destination (natDialsPerService).
	dialsTo map[netip.AddrPort]int
	// waits counts its SYNs waiting for a dial or handshake to end
	// (natSYNWait), waitsTo those by destination; freed, when set, is
	// closed (and cleared) to wake them as one ends (wakeLocked).
	waits   int
	waitsTo map[netip.AddrPort]int
	freed   chan struct{}
	// ctx ends the guest's dials when it leaves or the NAT stops.
	ctx    context.Context
	cancel context.CancelFunc
	conns  connSet // both sides of the guest's relays
	// wg counts the guest's relays' goroutines but those waiting on
	// the guest's side of a TCP handshake (handleTCP), for endGuest to
	// join; ended (under nat.mu) is set as the guest leaves.
	wg    sync.WaitGroup
	ended bool
	// icmp is the guest's budget of port unreachables.
	icmp tokenBucket
	// user is whose the guest is (nat.userOf), as its entry was made:
	// its relays count against that user's budget until they end.
	user natUser
}

// natUser is the user a guest's relays count against in a hub's budget:
// its VM's owner (-1 when unknown, all such counted together). exempt
// are root's VMs and the hub's own user's, which userLimit does not
// bound either: they are held to the hub's whole budget only, and keep a
// share of it that the other users' VMs cannot take.
type natUser struct {
	uid    int
	exempt bool
}

// natBudget bounds the relays of a hub's guests by user and in all, as
// userLimit bounds the addresses one user's VMs take. Each relay holds a
// host socket: the per-guest bounds alone let one user's userLimit VMs
// hold some 360 Ki of them, more than most processes may open, and a
// user's 21 VMs of 1024 UDP flows each took every descriptor of a hub
// (RLIMIT_NOFILE 20,000) and 225 MB: no other VM could join, root's
// included. Under nat.mu.
type natBudget struct {
	// nofile is the RLIMIT_NOFILE the budget was sized from, reserve
	// the descriptors kept from it for the rest.
	nofile, reserve uint64
	// all bounds every guest's relays; users those of all users but
	// the exempt together (the rest is the exempt's), and perUser one
	// user's: half of all, as userLimit is half the pool.
	all, users, perUser int
	// open counts every relay, usersOpen those of users not exempt,
	// byUser those of each such user.
	open, usersOpen int
	byUser          map[int]int
	// noted are the bounds whose reaching was logged (natBudgetKey),
	// until their count falls to half of them: a user at its bound,
	// its flows ending and new ones refused, makes one line, not one
	// per refusal.
	noted map[natBudgetKey]bool
	// waits counts the guests' SYNs waiting (natHubSYNWaits),
	// buffered their TCP connections with natTCPBuffer
	// (natHubBuffered).
	waits, buffered natShare
}

// natShare bounds what a hub's guests hold of one thing as natBudget
// bounds their relays: all in all, users for the users but the exempt
// together, perUser for one user. Under nat.mu.
type natShare struct {
	all, users, perUser int
	// held counts every guest's, usersHeld those of users not exempt,
	// byUser those of each such user.
	held, usersHeld int
	byUser          map[int]int
}

// newNATShare is a natShare of all: three quarters for the users but the
// exempt, half for one.
func newNATShare(all int) natShare {
	return natShare{all: all, users: all - all/4, perUser: all / 2, byUser: map[int]int{}}
}

// take counts one more of u's guests'; false, counting nothing, when
// that is over a bound.
func (s *natShare) take(u natUser) bool {
	if s.held >= s.all {
		return false
	}
	if !u.exempt {
		if s.usersHeld >= s.users || s.byUser[u.uid] >= s.perUser {
			return false
		}
		s.usersHeld++
		s.byUser[u.uid]++
	}
	s.held++
	return true
}

// give ends one of u's guests' that take counted.
func (s *natShare) give(u natUser) {
	s.held--
	if u.exempt {
		return
	}
	s.usersHeld--
	if s.byUser[u.uid]--; s.byUser[u.uid] == 0 {
		delete(s.byUser, u.uid)
	}
}

// natBudgetKey names a bound of a natBudget: one user's, all users'
// together (natBudgetUsers) or the hub's (natBudgetAll).
type natBudgetKey struct {
	users, all bool
	uid        int
}

// newNATBudget sizes a hub's budget from its RLIMIT_NOFILE, nofile: what
// is left once a quarter (at least natReserveMin, unless that is above
// half) is kept for the rest, at most natHubMax. The users but root and
// the hub's own may have three quarters of it together, one user half.
func newNATBudget(nofile uint64) *natBudget {
	reserve := max(nofile/4, min(natReserveMin, nofile/2))
	all := int(min(nofile-reserve, natHubMax))
	return &natBudget{nofile: nofile, reserve: reserve, all: all, users: all - all/4, perUser: all / 2,
		byUser: map[int]int{}, noted: map[natBudgetKey]bool{},
		waits: newNATShare(natHubLimits.waits), buffered: newNATShare(natHubLimits.buffered)}
}

// check says why one more relay of u's guests is over a bound, "" if it
// is not; note is set the first time since that bound was last half
// used, for the log.
func (b *natBudget) check(u natUser) (why string, note bool) {
	var key natBudgetKey
	switch {
	case b.open >= b.all:
		key = natBudgetKey{all: true}
		why = fmt.Sprintf("the network's VMs have %d connections and flows through the NAT, the most it relays at once (its RLIMIT_NOFILE %d less %d descriptors kept for joins, DNS and forwards, at most %d)", b.open, b.nofile, b.reserve, natHubMax)
	case u.exempt:
		return "", false
	case b.byUser[u.uid] >= b.perUser:
		key = natBudgetKey{uid: u.uid}
		who := fmt.Sprintf("uid %d's VMs have", u.uid)
		if u.uid < 0 {
			who = "the VMs whose user is unknown have"
		}
		why = fmt.Sprintf("%s %d connections and flows through the NAT, the most one user's VMs may have at once (half of the network's %d, so that no user takes them all)", who, b.byUser[u.uid], b.all)
	case b.usersOpen >= b.users:
		key = natBudgetKey{users: true}
		why = fmt.Sprintf("the VMs of users other than root and the network's own have %d connections and flows through the NAT together, the most they may have at once (three quarters of the network's %d; the rest is kept for root's VMs and the network's own user's)", b.usersOpen, b.all)
	default:
		return "", false
	}
	note = !b.noted[key]
	b.noted[key] = true
	return why, note
}

// add counts a relay of u's guests.
func (b *natBudget) add(u natUser) {
	b.open++
	if !u.exempt {
		b.usersOpen++
		b.byUser[u.uid]++
	}
}

// remove ends a relay of u's guests that add counted.
func (b *natBudget) remove(u natUser) {
	b.open--
	if b.open <= b.all/2 {
		delete(b.noted, natBudgetKey{all: true})
	}
	if u.exempt {
		return
	}
	b.usersOpen--
	if b.usersOpen <= b.users/2 {
		delete(b.noted, natBudgetKey{users: true})
	}
	n := b.byUser[u.uid] - 1
	if n <= b.perUser/2 {
		delete(b.noted, natBudgetKey{uid: u.uid})
	}
	if n == 0 {
		delete(b.byUser, u.uid)
	} else {
		b.byUser[u.uid] = n
	}
}

// tokenBucket is a rate limit of rate events a second in bursts of
// burst; the zero value starts full.
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time // when tokens was last topped up; zero before the first
}

// allow takes a token at now, if there is one.
func (b *tokenBucket) allow(now time.Time, rate, burst float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// natStats are a NAT's counters.
type natStats struct {
	tcp, udp               uint64 // open now
	refusedTCP, refusedUDP uint64
	heldTCP                uint64
}

// newNAT relays to the host the guests' connections to anything but the
// gateway's own services, gateway (whose address stands for the host's
// loopback, as in QEMU) included. The rest of subnet (the DNS server's
// address on other ports than its own, the guests, the broadcast) is
// refused: the host would dial those addresses on its own networks.
// oneGuest counts every source address as one guest's.
func newNAT(gateway netip.Addr, subnet netip.Prefix, oneGuest bool) *nat {
	n := &nat{outside: func(a tcpip.Address) (netip.Addr, bool) {
		addr, ok := netip.AddrFromSlice(a.AsSlice())
		if !ok || !addr.Is4() {
			return netip.Addr{}, false
		}
		if addr == gateway {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
		}
		if subnet.Contains(addr) {
			return netip.Addr{}, false
		}
		for _, p := range notRelayed {
			if p.Contains(addr) {
				return netip.Addr{}, false
			}
		}
		return addr, true
	}, oneGuest: oneGuest, maxTCP: natLimits.tcp, maxUDP: natLimits.udp, maxBuffered: natLimits.buffered,
		guests: map[netip.Addr]*natGuest{}, flows: map[*udpFlow]*natGuest{},
		dials: map[stack.TransportEndpointID]*natDial{}, held: map[stack.TransportEndpointID]time.Time{},
		forwarders: map[netip.Addr]*tcp.Forwarder{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// Under the seccomp filter: GODEBUG=multipathtcp=1 would make the
	// first dial probe the kernel (bind, uname), which the filter refuses.
	n.dialer.SetMultipathTCP(false)
	return n
}

// guestOf is the guest a connection from source belongs to; false for a
// source no guest may use (0.0.0.0, which a hub lets any VM send from).
func (n *nat) guestOf(source tcpip.Address) (netip.Addr, bool) {
	addr, ok := netip.AddrFromSlice(source.AsSlice())
	if !ok || !addr.Is4() || addr.IsUnspecified() {
		return netip.Addr{}, false
	}
	if n.oneGuest {
		return netip.Addr{}, true
	}
	return addr, true
}

// natAdmission is what admitTCP and admitUDP decide.
type natAdmission int

const (
	natAdmitted natAdmission = iota
	natClosing               // the NAT is closing
	natFull                  // the guest, or its user (natBudget), has its most relays
	natBusy                  // the guest has its most TCP dials, or handshakes not over
)

// synWait is a SYN waiting for its guest's dial or handshake to end
// (awaitTCP): c is the entry that counts it (in waits), nil when none.
type synWait struct {
	c *natGuest
}

// awaitTCP is admitTCP for a SYN that came at came: one that finds its
// guest's dials or handshakes at their bound waits for one to end, up
// to natSYNWait (within natSYNWaitsPerGuest, natSYNWaitsPerService
// and a hub's natHubSYNWaits),
// and is natBusy only then or beyond those bounds. The forwarder's slot
// it holds meanwhile is its guest's (natGuestInFlight).
func (n *nat) awaitTCP(guest netip.Addr, dest netip.AddrPort, came time.Time) (c *natGuest, a natAdmission, buffered bool) {
	var w synWait
	c, a, buffered, wake := n.admitTCP(guest, dest, &w)
	if wake == nil {
		return c, a, buffered
	}
	timer := time.NewTimer(time.Until(came.Add(synWaitFor())))
	defer timer.Stop()
	for wake != nil {
		select {
		case <-wake:
			c, a, buffered, wake = n.admitTCP(guest, dest, &w)
		case <-timer.C:
			n.unwait(&w, dest)
			return nil, natBusy, false
		}
	}
	return c, a, buffered
}

// admitTCP counts a TCP connection of guest to dest, being dialled, and
// its goroutine, unless the guest is at a bound or the NAT is closing,
// and says whether it is one of the guest's first maxBuffered and, on a
// hub, within natHubBuffered (natTCPBuffer, else natTCPSmallBuffer). An admitted connection ends
// with dialed (once its dial is over), shaken (once its handshake with
// the guest is, if the dial succeeded) and releaseTCP. When the guest
// has its most dials or handshakes, w counts the SYN as waiting (if
// there is room: natSYNWaitsPerGuest, natSYNWaitsPerService, a hub's
// natHubSYNWaits) and wake
// is closed when one ends, for the SYN to try again with the same w;
// otherwise wake is nil, and w counts nothing. A waiting SYN of a guest
// that has left is natClosing.
func (n *nat) admitTCP(guest netip.Addr, dest netip.AddrPort, w *synWait) (c *natGuest, a natAdmission, buffered bool, wake <-chan struct{}) {
	var note bool
	busy := func(c *natGuest) natAdmission {
		if w.c != c { // not waiting yet, or on an entry since forgotten
			n.unwaitLocked(w, dest)
			if c.waits >= natSYNWaitsPerGuest || c.waitsTo[dest] >= natSYNWaitsPerService ||
				n.budget != nil && !n.budget.waits.take(c.user) {
				return natBusy
			}
			c.waits++
			if c.waitsTo == nil {
				c.waitsTo = map[netip.AddrPort]int{}
			}
			c.waitsTo[dest]++
			w.c = c
			// Joined by wait: stop wakes it.
			n.wg.Add(1)
		}
		if c.freed == nil {
			c.freed = make(chan struct{})
		}
		wake = c.freed
		return natBusy
	}
	c, a = n.admit(guest, 1, func(c *natGuest) natAdmission {
		switch {
		case w.c != nil && w.c.ended:
			return natClosing
		case c.tcp >= n.maxTCP:
			return natFull
		case c.handshaking >= natHandshakesPerGuest:
			note = !c.handshakesNoted
			c.handshakesNoted = true
			return busy(c)
		case c.dialing >= natDialsPerGuest, c.dialsTo[dest] >= natDialsPerService:
			return busy(c)
		}
		c.tcp++
		c.dialing++
		if c.dialsTo == nil {
			c.dialsTo = map[netip.AddrPort]int{}
		}
		c.dialsTo[dest]++
		n.openTCP++
		if buffered = c.buffered < n.maxBuffered && (n.budget == nil || n.budget.buffered.take(c.user)); buffered {
			c.buffered++
		}
		return natAdmitted
	})
	if note && n.logf != nil {
		who := "the guest"
		if guest.IsValid() {
			who = "the VM at " + guest.String()
		}
		n.logf("NAT: %s has %d TCP handshakes it has not finished (SYN-ACKs unanswered); its new connections' SYNs are dropped (counted as delayed) until they finish or time out, in up to 127 s", who, natHandshakesPerGuest)
	}
	if wake == nil && w.c != nil {
		n.unwait(w, dest)
	}
	return c, a, buffered, wake
}

// unwait ends the wait w counts, if any.
func (n *nat) unwait(w *synWait, dest netip.AddrPort) {
	n.mu.Lock()
	n.unwaitLocked(w, dest)
	n.mu.Unlock()
}

// unwaitLocked is unwait under n.mu.
func (n *nat) unwaitLocked(w *synWait, dest netip.AddrPort) {
	c := w.c
	if c == nil {
		return
	}
	w.c = nil
	if n.budget != nil {
		n.budget.waits.give(c.user)
	}
	c.waits--
	if c.waitsTo[dest]--; c.waitsTo[dest] == 0 {
		delete(c.waitsTo, dest)
	}
	n.wg.Done()
}

// wakeLocked wakes c's SYNs waiting (n.mu held): a dial or handshake
// ended, or the entry did.
func (c *natGuest) wakeLocked() {
	if c.freed != nil {
		close(c.freed)
		c.freed = nil
	}
}

// dialed ends the dial to dest of a connection admitTCP admitted; one
// that succeeded (ok) starts its handshake with the guest, which shaken
// ends.
func (n *nat) dialed(c *natGuest, dest netip.AddrPort, ok bool) {
	n.mu.Lock()
	c.dialing--
	if c.dialsTo[dest]--; c.dialsTo[dest] == 0 {
		delete(c.dialsTo, dest)
	}
	if ok {
		c.handshaking++
	}
	c.wakeLocked()
	n.mu.Unlock()
}

// shaken ends the handshake with the guest that dialed started.
func (n *nat) shaken(c *natGuest) {
	n.mu.Lock()
	c.handshaking--
	if c.handshaking <= natHandshakesPerGuest/2 {
		c.handshakesNoted = false
	}
	c.wakeLocked()
	n.mu.Unlock()
}

// releaseTCP ends a connection admitTCP admitted.
func (n *nat) releaseTCP(c *natGuest, buffered bool) {
	n.mu.Lock()
	c.tcp--
	if buffered {
		c.buffered--
		if n.budget != nil {
			n.budget.buffered.give(c.user)
		}
	}
	n.openTCP--
	if n.budget != nil {
		n.budget.remove(c.user)
	}
	n.forgetLocked(c)
	n.mu.Unlock()
}

// admitUDP counts a UDP flow of guest and its two goroutines, unless the
// guest is at its bound or the NAT is closing. An admitted flow ends
// with releaseUDP, its goroutines with done.
func (n *nat) admitUDP(guest netip.Addr) (*natGuest, natAdmission) {
	return n.admit(guest, 2, func(c *natGuest) natAdmission {
		if c.udp >= n.maxUDP {
			return natFull
		}
		c.udp++
		n.openUDP++
		return natAdmitted
	})
}

// admit is admitTCP's and admitUDP's common part: under n.mu, unless the
// NAT is closing or the guest's user is over its budget (natFull, the
// first time logged), count decides on guest's entry (and counts what it
// admits), and an admission keeps the entry and counts its k goroutines
// and, in the budget, its relay.
func (n *nat) admit(guest netip.Addr, k int, count func(*natGuest) natAdmission) (*natGuest, natAdmission) {
	c, a, note := n.admitLocked(guest, k, count)
	if note != "" && n.logf != nil {
		// Not under n.mu: a log line may take its time.
		n.logf("NAT: %s; their new ones are refused (TCP reset, UDP dropped, counted) until some end", note)
	}
	return c, a
}

// admitLocked is admit's work under n.mu; note is the budget's bound met,
// to log.
func (n *nat) admitLocked(guest netip.Addr, k int, count func(*natGuest) natAdmission) (c *natGuest, a natAdmission, note string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, natClosing, ""
	}
	c = n.guests[guest]
	if c == nil {
		c = &natGuest{addr: guest}
		if n.userOf != nil {
			c.user = n.userOf(guest)
		}
	}
	if n.budget != nil {
		if why, first := n.budget.check(c.user); why != "" {
			if first {
				note = why
			}
			return nil, natFull, note
		}
	}
	if a = count(c); a != natAdmitted {
		return nil, a, ""
	}
	if n.budget != nil {
		n.budget.add(c.user)
	}
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(n.ctx)
		n.guests[guest] = c
	}
	n.wg.Add(k)
	c.wg.Add(k)
	n.running.Add(int64(k))
	return c, natAdmitted, ""
}

// releaseUDP ends a flow admitUDP admitted (f, once it has one).
func (n *nat) releaseUDP(c *natGuest, f *udpFlow) {
	n.mu.Lock()
	c.udp--
	n.openUDP--
	if n.budget != nil {
		n.budget.remove(c.user)
	}
	n.forgetLocked(c)
	if f != nil {
		delete(n.flows, f)
	}
	n.mu.Unlock()
}

// forgetLocked drops c's entry once it has no relay (n.mu held).
func (n *nat) forgetLocked(c *natGuest) {
	if c.tcp == 0 && c.udp == 0 {
		if n.guests[c.addr] == c {
			delete(n.guests, c.addr)
		}
		c.wakeLocked()
		c.cancel()
	}
}

// done ends k goroutines of c admitted.
func (n *nat) done(c *natGuest, k int) {
	c.wg.Add(-k)
	n.running.Add(-int64(k))
	n.wg.Add(-k)
}

// endGuest ends the relays of the guest at guest, which has left (a hub's
// VM gone): its dials end, both sides of its TCP connections and its UDP
// flows close (the host's side of a handshake still waiting on the guest
// too), and their goroutines are joined, but for those handshakes, which
// end alone (handleTCP) and count against the hub's budget until then.
// A guest at that address from now on has relays and a forwarder of its
// own, counted from none.
func (n *nat) endGuest(guest netip.Addr) {
	// The next guest at the address gets a forwarder of its own: this
	// one's table holds the ended guest's handshakes for up to 127 s,
	// and a VM started again five times with 64 each found it full and
	// every SYN of its dropped, uncounted. Its requests keep it to the
	// end.
	n.fwdMu.Lock()
	delete(n.forwarders, guest)
	n.fwdMu.Unlock()
	n.mu.Lock()
	c := n.guests[guest]
	if c == nil {
		n.mu.Unlock()
		return
	}
	delete(n.guests, guest)
	c.ended = true
	c.wakeLocked()
	var fs []*udpFlow
	for f, fc := range n.flows {
		if fc == c {
			fs = append(fs, f)
		}
	}
	n.mu.Unlock()
	c.cancel()
	c.conns.closeAll()
	for _, f := range fs {
		f.close()
	}
	c.wg.Wait()
}

// rejoin counts again, in c.wg, a goroutine that left it for a TCP
// handshake; false once the guest has ended.
func (n *nat) rejoin(c *natGuest) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.ended {
		return false
	}
	c.wg.Add(1)
	return true
}

// stats returns the NAT's counters.
func (n *nat) stats() natStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return natStats{tcp: uint64(n.openTCP), udp: uint64(n.openUDP),
		refusedTCP: n.refusedTCP.Load(), refusedUDP: n.refusedUDP.Load(), heldTCP: n.heldTCP.Load()}
}

// stop refuses new relays, ends the dials in progress and closes both
// sides of every relay, so that their goroutines end.
func (n *nat) stop() error {
	n.mu.Lock()
	n.closed = true
	guests := make([]*natGuest, 0, len(n.guests))
	for _, c := range n.guests {
		guests = append(guests, c)
		c.wakeLocked()
	}
	n.mu.Unlock()
	n.cancel()
	for _, c := range guests {
		c.conns.closeAll()
	}
	return nil
}

// wait joins the relays' goroutines. A TCP handler may be waiting for the
// guest to finish its handshake: call it after the stack has closed.
func (n *nat) wait() error {
	n.wg.Wait()
	return nil
}

// handleTCP is the TCP forwarder's handler, on a goroutine of its own for
// each SYN of a new connection: the guest's connection is accepted once
// the host's is established, and refused (reset) when it is not or when
// the guest has natTCPPerGuest already (or its user its budget's most:
// natBudget); a SYN beyond the guest's natDialsPerGuest dials, or its
// natDialsPerService to that destination, or its natHandshakesPerGuest
// handshakes not over, waits for one to end (awaitTCP), and is dropped
// after natSYNWait, for the guest to send again. A dial ends when the
// guest stops sending its SYN (watchTCP): it gave up. A connection ends
// once its relay is over and the gateway's side is done with the guest
// (drainTCP).
func (n *nat) handleTCP(r *tcp.ForwarderRequest) {
	came := time.Now()
	id := r.ID()
	to, ok := n.outside(id.LocalAddress)
	guest, known := n.guestOf(id.RemoteAddress)
	if !ok || !known {
		r.Complete(true)
		return
	}
	dest := netip.AddrPortFrom(to, id.LocalPort)
	c, admission, buffered := n.awaitTCP(guest, dest, came)
	switch admission {
	case natClosing:
		r.Complete(true)
		return
	case natFull:
		n.refusedTCP.Add(1)
		r.Complete(true)
		return
	case natBusy: // dropped: the guest sends its SYN again
		n.holdSYN(id, came)
		r.Complete(false)
		return
	}
	joined := true // counted in c.wg
	defer func() {
		if joined {
			c.wg.Done()
		}
		n.running.Add(-1)
		n.wg.Done()
	}()
	defer n.releaseTCP(c, buffered)
	ctx, cancel := context.WithTimeout(c.ctx, natDialTimeout)
	unwatch := n.watchDial(id, cancel)
	host, err := n.dialer.DialContext(ctx, "tcp", dest.String())
	unwatch()
	cancel()
	n.dialed(c, dest, err == nil)
	if err != nil {
		r.Complete(true)
		return
	}
	// The handshake waits on the guest, for a minute or more of
	// retransmissions if it has gone: endGuest does not wait for it, but
	// closes the host's side at once (it holds a descriptor), and an
	// ended guest's connection is closed once it is over. It holds the
	// request's slot of the guest's forwarder until then (gVisor frees
	// it in Complete, which must come after CreateEndpoint), and counts
	// against natHandshakesPerGuest.
	if !c.conns.add(host) { // the guest has ended
		_ = host.Close()
		n.shaken(c)
		r.Complete(true)
		return
	}
	defer c.conns.remove(host)
	c.wg.Done()
	joined = false
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	r.Complete(false)
	n.shaken(c)
	if tcpErr != nil { // the guest gave up, or reset
		return
	}
	if joined = n.rejoin(c); !joined {
		ep.Close()
		return
	}
	size := int64(natTCPSmallBuffer)
	if buffered {
		size = natTCPBuffer
	}
	ep.SocketOptions().SetSendBufferSize(size, true)
	ep.SocketOptions().SetReceiveBufferSize(size, true)
	gc := gonet.NewTCPConn(&wq, ep)
	if !c.conns.add(gc) {
		_ = gc.Close()
		return
	}
	defer c.conns.remove(gc)
	// A guest that ended its stream waits for the gateway's side to
	// drain, whatever the host's side did (a reset after its reply
	// included: closed with data for the guest, the endpoint went on
	// probing a window that stays shut, uncounted). One still sending
	// when the host's side failed (a server that answered early and
	// closed, or restarted) is reset at once, its writes failing, as its
	// peer is gone.
	if splice(host, gc) {
		drainTCP(c.ctx, ep, &wq)
	} else {
		ep.Abort()
	}
}

// drainTCP waits, once a relay is over and the guest has ended its
// stream, until the gateway's endpoint ep (wq its queue) of the guest's
// connection has nothing more for the guest: closed (or failed: a guest
// gone silent runs out its retransmissions), or in TIME-WAIT, all its
// data and its end of stream acknowledged. As ctx ends (the guest has
// left, the NAT stops) it is reset instead. Its caller's connection
// stays counted meanwhile, with its buffer share: freed with the relay,
// the endpoint of a guest that never read (a zero window) and shut down
// its side went on probing for ever, holding up to its send buffer
// outside every bound, and 3,000 such connections took a hub 775 MB.
// There is no deadline: a guest reading slowly gets all of its reply,
// and one that never reads holds its slot as an open connection it
// never reads does (gVisor's user timeout would cut the first, and a
// deadline too).
//
// An endpoint in TIME-WAIT (the host closed first) is reset at once,
// its guest closed already: gVisor kept it 60 s and dropped the SYNs of
// a guest connecting again from that port to that server (it hands them
// to a listener only; the NAT has a forwarder), whose connect stalled a
// minute. A shorter TIME-WAIT for the whole stack
// (TCPTimeWaitTimeoutOption) would still drop them until the guest's
// next retransmission, seconds later. The wait guards against a late
// segment of the old connection, and the link to the guest delivers in
// order with nothing late; the host's socket keeps its own TIME-WAIT
// with the server. The guest ignores the reset, as one for no
// connection, or takes it as the end of one waiting for the gateway's
// last ACK.
func drainTCP(ctx context.Context, ep tcpip.Endpoint, wq *waiter.Queue) {
	// Registered before the state is first read: gVisor reports each
	// move to CLOSED, an error or TIME-WAIT as a hang-up.
	we, ended := waiter.NewChannelEntry(waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	for {
		switch tcp.EndpointState(ep.State()) {
		case tcp.StateClose, tcp.StateError:
			return
		case tcp.StateTimeWait:
			ep.Abort()
			return
		}
		select {
		case <-ended:
		case <-ctx.Done():
			ep.Abort()
			return
		}
	}
}

// splice copies both ways between a and b until both directions have
// ended, passing each end of stream on as a half close, and reports
// whether b ended its stream: all b sent was read to its end and written
// to a, whatever became of a's stream.
func splice(a, b net.Conn) (bEnded bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(b, a)
		closeWrite(b)
	}()
	_, err := io.Copy(a, b)
	closeWrite(a)
	<-done
	return err == nil
}

// closeWrite half-closes c where it can.
func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}

// handleUDP is the UDP forwarder's handler, called by the stack for a
// datagram that no endpoint takes (the first of a new flow): it opens the
// flow's host socket and relays its datagrams until the flow is idle, or
// drops the datagram when the guest has natUDPPerGuest flows already (or
// its user its budget's most relays: natBudget).
// It runs on the stack's delivery path and does not block: a UDP dial
// sends nothing.
func (n *nat) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	to, ok := n.outside(id.LocalAddress)
	guest, known := n.guestOf(id.RemoteAddress)
	if !ok || !known {
		return
	}
	c, admission := n.admitUDP(guest)
	switch admission {
	case natClosing:
		return
	case natFull: // dropped: the guest's other flows go on
		n.refusedUDP.Add(1)
		return
	}
	fail := func() {
		n.releaseUDP(c, nil)
		n.done(c, 2)
	}
	host, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, id.LocalPort)))
	if err != nil {
		fail()
		return
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	if tcpErr != nil {
		_ = host.Close()
		fail()
		return
	}
	gc := gonet.NewUDPConn(&wq, ep)
	if !c.conns.add(host) || !c.conns.add(gc) {
		c.conns.remove(host)
		c.conns.remove(gc)
		fail()
		return
	}
	var f *udpFlow
	f = newUDPFlow(host, func(b []byte) error { _, err := gc.Write(b); return err }, func() {
		c.conns.remove(host)
		c.conns.remove(gc)
		n.releaseUDP(c, f)
	})
	var last atomic.Int64 // the length of the guest's last datagram
	f.refused = func() { n.portUnreachable(c, id, int(last.Load())) }
	n.mu.Lock()
	if !f.ended.Load() { // else its end has been and gone
		n.flows[f] = c
	}
	n.mu.Unlock()
	go func() {
		defer n.done(c, 1)
		f.readFar()
	}()
	go func() {
		defer n.done(c, 1)
		defer f.close()
		readEndpoint(ep, &wq, func(b []byte) error {
			last.Store(int64(len(b)))
			f.send(b)
			return nil
		})
	}()
}

// portUnreachable sends the guest of the UDP flow id (its remote end)
// an ICMP port unreachable from the address it sent to, as a router
// passes on the refusal of a host: its socket is told at once that
// nothing listens there (connection refused), as under QEMU's slirp.
// The datagram quoted, its IP header and UDP header (RFC 792's header
// and 8 bytes), is rebuilt from the flow's addresses and ports and the
// length of the guest's last datagram (size): the gonet endpoint keeps
// no headers, and a guest matches the quote to its socket by those
// alone. The guest's own budget (c.icmp, natICMPPerSecond) bounds them
// first, so that one guest cannot use up the stack's ICMP rate limit
// (1000 a second, in bursts of 50) that bounds them and its own for
// every guest; a refusal over either is dropped before anything is
// built, as a flood's are.
func (n *nat) portUnreachable(c *natGuest, id stack.TransportEndpointID, size int) {
	if n.stack == nil || !c.icmp.allow(time.Now(), natICMPPerSecond, natICMPBurst) || !n.stack.AllowICMPMessage() {
		return
	}
	r, err := n.stack.FindRoute(nicID, id.LocalAddress, id.RemoteAddress, header.IPv4ProtocolNumber, false)
	if err != nil {
		return
	}
	defer r.Release()
	quote := make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize)
	ip := header.IPv4(quote)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(min(len(quote)+size, 0xffff)),
		TTL:         r.DefaultTTL(),
		Protocol:    uint8(header.UDPProtocolNumber),
		SrcAddr:     id.RemoteAddress,
		DstAddr:     id.LocalAddress,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	header.UDP(quote[header.IPv4MinimumSize:]).Encode(&header.UDPFields{
		SrcPort: id.RemotePort,
		DstPort: id.LocalPort,
		Length:  uint16(min(header.UDPMinimumSize+size, 0xffff)),
	})
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: int(r.MaxHeaderLength()) + header.ICMPv4MinimumSize,
		Payload:            buffer.MakeWithData(quote),
	})
	defer pkt.DecRef()
	pkt.TransportProtocolNumber = header.ICMPv4ProtocolNumber
	icmp := header.ICMPv4(pkt.TransportHeader().Push(header.ICMPv4MinimumSize))
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(header.ICMPv4PortUnreachable)
	icmp.SetChecksum(header.ICMPv4Checksum(icmp, pkt.Data().Checksum()))
	_ = r.WritePacket(stack.NetworkHeaderParams{Protocol: header.ICMPv4ProtocolNumber, TTL: r.DefaultTTL(), TOS: stack.DefaultTOS}, pkt)
}

// datagramPool holds the buffers of the NAT's UDP flows, each taken only
// while a datagram is moved: a flow waiting for its next datagram holds
// none. Before, each flow's two goroutines held a buffer of
// udpMaxDatagram for its life: 128 KiB a flow, 128 MiB for a guest's
// natUDPPerGuest flows of one datagram each, waiting out udpIdleFor.
var datagramPool = sync.Pool{New: func() any {
	b := make([]byte, udpMaxDatagram)
	return &b
}}

// readUDPConn calls got with each datagram c receives, in a buffer of
// datagramPool taken once the socket is readable, until c closes or got
// fails. A refusal (an ICMP port unreachable for an earlier datagram:
// nothing listens there yet) is no reason to end: refused is called.
func readUDPConn(c *net.UDPConn, got func([]byte) error, refused func()) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var bp *[]byte
		var k int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			bp = datagramPool.Get().(*[]byte)
			for {
				k, rerr = unix.Read(int(fd), *bp)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				datagramPool.Put(bp)
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		if rerr == nil {
			rerr = got((*bp)[:k])
		} else if rerr == unix.ECONNREFUSED {
			refused()
			rerr = nil
		}
		datagramPool.Put(bp)
		if rerr != nil {
			return rerr
		}
	}
}

// readEndpoint calls got with each datagram the gateway's endpoint ep
// (wq its queue) receives, in a buffer of datagramPool taken once one
// is there, until ep closes or got fails.
func readEndpoint(ep tcpip.Endpoint, wq *waiter.Queue, got func([]byte) error) {
	// Registered before the first read: a datagram arriving after a
	// read found none leaves its wake-up in ready.
	we, ready := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	for {
		bp := datagramPool.Get().(*[]byte)
		w := tcpip.SliceWriter(*bp)
		res, err := ep.Read(&w, tcpip.ReadOptions{})
		if _, wait := err.(*tcpip.ErrWouldBlock); wait {
			datagramPool.Put(bp)
			<-ready
			continue
		}
		var gerr error
		if err == nil {
			gerr = got((*bp)[:res.Count])
		}
		datagramPool.Put(bp)
		if err != nil || gerr != nil {
			return
		}
	}
}

// udpFlow is one UDP flow between a near side, which hands its datagrams
// to send, and a far connection, whose datagrams go to deliver. It ends
// (close) when idle for udpIdleFor, or when either side fails.
type udpFlow struct {
	far     net.Conn
	deliver func([]byte) error
	idle    *time.Timer
	once    sync.Once
	end     func()
	// ended is set as the flow ends, before end is called.
	ended atomic.Bool
	// refused, when set, is called when the far side refused a
	// datagram (an ICMP port unreachable came for it). Set before
	// readFar runs.
	refused func()
}

// newUDPFlow starts a flow's idle timer; end, called once when the flow
// ends, closes what the flow's goroutines read from.
func newUDPFlow(far net.Conn, deliver func([]byte) error, end func()) *udpFlow {
	f := &udpFlow{far: far, deliver: deliver, end: end}
	f.idle = time.AfterFunc(udpIdleFor, f.close)
	return f
}

// send passes a datagram of the near side to the far one. A datagram that
// cannot be sent is lost, as UDP loses datagrams; the flow goes on.
func (f *udpFlow) send(b []byte) {
	f.idle.Reset(udpIdleFor)
	_, _ = f.far.Write(b)
}

// readFar delivers the far side's datagrams until the flow ends. A
// refusal (an ICMP port unreachable for an earlier datagram: nothing
// listens there yet) is no reason to end it.
func (f *udpFlow) readFar() {
	defer f.close()
	if c, ok := f.far.(*net.UDPConn); ok { // a NAT flow's host socket
		refused := f.refused
		if refused == nil {
			refused = func() {}
		}
		_ = readUDPConn(c, func(b []byte) error {
			f.idle.Reset(udpIdleFor)
			return f.deliver(b)
		}, refused)
		return
	}
	buf := make([]byte, udpMaxDatagram)
	for {
		k, err := f.far.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue
		}
		if err != nil {
			return
		}
		f.idle.Reset(udpIdleFor)
		if f.deliver(buf[:k]) != nil {
			return
		}
	}
}

// close ends the flow, once. The idle timer is left to fire (a no-op
// then): its callback may run before newUDPFlow has stored it.
func (f *udpFlow) close() {
	f.once.Do(func() {
		f.ended.Store(true)
		_ = f.far.Close()
		if f.end != nil {
			f.end()
		}
	})
}

// udpForward relays the datagrams that arrive on a forwarded host UDP port
// to the guest: each client address has a flow of its own, from a port of
// the gateway to the guest's, so that the guest's replies go back to that
// client.
type udpForward struct {
	ln   udpHostPort
	dial func() (net.Conn, error) // a connection to the guest's port
	// lim counts the flows, bounded by maxFlows for this forward and
	// maxVMFlows for its VM's (forwardFlowLimits when made).
	lim                  forwardLimits
	maxFlows, maxVMFlows int64

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	wg     sync.WaitGroup // the flows' readers
}

func newUDPForward(ln udpHostPort, lim forwardLimits, dial func() (net.Conn, error)) *udpForward {
	return &udpForward{ln: ln, dial: dial, lim: lim, maxFlows: forwardFlowLimits.forward,
		maxVMFlows: forwardFlowLimits.vm, flows: map[netip.AddrPort]*udpFlow{}}
}

// serve relays the host port's datagrams until close.
func (p *udpForward) serve() error {
	buf := make([]byte, udpMaxDatagram)
	for {
		k, from, err := p.ln.readFrom(buf)
		if err != nil {
			return err
		}
		if f := p.flow(from); f != nil {
			f.send(buf[:k])
		}
	}
}

// flow is the flow of client from, started if it has none; nil once the
// forward is closed, when the forward or its VM has its most flows
// (counted), or when the guest cannot be dialled.
func (p *udpForward) flow(from netip.AddrPort) *udpFlow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if f, ok := p.flows[from]; ok {
		return f
	}
	if !p.lim.reserveFlow(int64(len(p.flows)), p.maxFlows, p.maxVMFlows) {
		return nil
	}
	c, err := p.dial()
	if err != nil {
		p.lim.releaseFlow()
		return nil
	}
	var f *udpFlow
	f = newUDPFlow(c, func(b []byte) error {
		return p.ln.writeTo(b, from)
	}, func() {
		p.mu.Lock()
		if p.flows[from] == f {
			delete(p.flows, from)
		}
		p.mu.Unlock()
		p.lim.releaseFlow()
	})
	p.flows[from] = f
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f.readFar()
	}()
	return f
}

// close stops the host port and every flow, and joins the flows'
// readers (serve is its caller's to join).
func (p *udpForward) close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	flows := make([]*udpFlow, 0, len(p.flows))
	for _, f := range p.flows {
		flows = append(flows, f)
	}
	p.mu.Unlock()
	for _, f := range flows {
		f.close()
	}
	p.wg.Wait()
	return err
}
