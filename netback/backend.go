// Package netback provides the network backends behind smolvmm's virtio-net
// device: a rootless user-mode network (gVisor's netstack as the gateway,
// with QEMU's 10.0.2.0/24 addresses and host port forwarding), a Linux tap
// device, and "none". Every backend moves whole Ethernet frames, without any
// virtio header.
//
// # The user network
//
// The guest is 10.0.2.15/24 (DHCP leases it to the guest's MAC; a static
// configuration works as well), the gateway 10.0.2.2 and the DNS server
// 10.0.2.3, as with QEMU's "-netdev user". The gateway runs gVisor's netstack
// in this process: the guest's TCP and UDP connections become the host's own
// sockets (NAT without root), and connections to 10.0.2.2 reach the host's
// loopback, as in QEMU. DNS is answered at 10.0.2.3 and 10.0.2.2 (a
// server of miekg/dns; SERVFAIL for any failure but a missing name, a
// share of the queries for each guest) by asking the nameservers of the host's
// /etc/resolv.conf as read by NewUser, so that no file is opened later (a
// VMM under a seccomp filter may not); DHCP names 10.0.2.3 as the DNS
// server, as QEMU does. Forwards (see Forward) listen on the host and connect to
// 10.0.2.15 from the gateway.
//
// # The shared network
//
// A Hub ("smolvmm net") is one user network that several VMs join, each
// from its own process, through a Unix socket (HubSocket: per user under
// $XDG_RUNTIME_DIR/smolvmm/net, /run/smolvmm/net for root). It runs one
// gateway with the same addresses and services and an Ethernet switch
// between the gateway and every VM, so that VMs reach each other by
// address. DHCP leases each MAC its own address from 10.0.2.15 upward,
// stable across restarts of the hub (a lease file next to the socket);
// each VM's port forwards listen on the host while it is connected. A VM
// joins with Join (Open's "user:NAME" or "user:/path/to.sock"): a small
// versioned handshake (see sharedwire.go) gives the hub its MAC and
// forwards and answers with its address or a refusal (RefusedError), then
// frames travel length-prefixed. If the hub goes away the VM keeps running
// and Join's backend reconnects when it returns. The hub treats every VM
// as hostile: see Hub for what it enforces.
//
// The gateway code (stack, NAT, DNS, DHCP, forwards) is the same for User
// and Hub; gvisor-tap-vsock's virtualnetwork was not used because it
// brings its own DHCP, addresses and forwarding API (HTTP), which would
// make the shared network behave differently from the single-VM one, and
// its DNS server was replaced because it shares its queries among all
// VMs and answers every failure NXDOMAIN (see dnsserver.go).
//
// # Back-pressure
//
// Frames towards the guest wait in a queue of 4096 frames while the guest
// has no receive buffers; beyond it they are dropped and counted
// (Stats.Dropped), as a NIC drops them, and TCP recovers. Frames from the
// guest make WriteFrame wait while the gateway is busy (a queue of 256
// frames), which holds back the device's backend writer (a goroutine of
// its own), not its worker nor the vCPU.
package netback

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// Backend is a pipe of Ethernet frames between a guest NIC and the outside.
// Its methods are those of virtio/net's Backend, so every backend here is
// also a virtio-net device's backend.
//
// ReadFrame and WriteFrame may be called concurrently with each other (one
// reader, one writer); Close may be called at any time and unblocks both.
type Backend interface {
	// ReadFrame blocks until a frame for the guest arrives and copies it
	// into buf. A frame longer than buf is discarded and reported with an
	// error wrapping ErrFrameTooLong (the caller should size buf with
	// MaxFrameSize). After Close it returns an error wrapping ErrClosed.
	ReadFrame(buf []byte) (int, error)
	// WriteFrame sends one frame from the guest. It does not keep frame.
	// It may block while the outside is congested (that is the back-pressure
	// the device passes on to the guest's transmit queue), but never after
	// Close, when it returns an error wrapping ErrClosed.
	WriteFrame(frame []byte) error
	// Close releases the backend's resources (file descriptors, listeners,
	// goroutines). It is safe to call more than once.
	Close() error
}

// Sizes of Ethernet frames as the backends see them (no FCS, no VLAN tag
// handling: a tagged frame is just 4 bytes longer).
const (
	// EthernetHeaderSize is the size of the destination, source and type fields.
	EthernetHeaderSize = 14
	// MTU is the IP MTU of the user-mode network and the usual tap MTU.
	MTU = 1500
	// MaxFrameSize is the largest frame a backend delivers: a 64 KiB IP
	// packet plus its Ethernet header and a VLAN tag, so a tap with a large
	// MTU is still served.
	MaxFrameSize = 65535 + EthernetHeaderSize + 4
)

var (
	// ErrClosed is returned (wrapped) by a backend's methods after Close.
	// It also matches the standard library's net.ErrClosed, which is how
	// the virtio-net device (which does not import netback) recognises it.
	ErrClosed error = &stdError{"network backend closed", net.ErrClosed}
	// ErrFrameTooLong is returned (wrapped) by ReadFrame when a frame does
	// not fit the caller's buffer, and by WriteFrame for a frame longer than
	// MaxFrameSize. It also matches io.ErrShortBuffer, for the same reason.
	ErrFrameTooLong error = &stdError{"frame too long", io.ErrShortBuffer}
	// ErrFrameTooShort is returned (wrapped) by WriteFrame for a frame
	// shorter than an Ethernet header.
	ErrFrameTooShort = errors.New("frame shorter than an Ethernet header")
)

// stdError is a sentinel of this package that errors.Is also matches
// against a standard library sentinel with the same meaning.
type stdError struct {
	msg string
	std error
}

func (e *stdError) Error() string { return e.msg }

// Is reports whether target is the standard sentinel e stands for.
func (e *stdError) Is(target error) bool { return target == e.std }

// Stats counts frames a backend handled. Backends that keep counters
// implement StatsReporter.
type Stats struct {
	// ToGuest and FromGuest count frames delivered in each direction.
	ToGuest, FromGuest uint64
	// Dropped counts frames for the guest that were discarded because the
	// guest did not take them fast enough (a full receive queue).
	Dropped uint64
	// Unsent counts frames from the guest discarded because the backend
	// had nowhere to send them (a shared network's hub was away).
	Unsent uint64
	// GatewayStats are the counters of the network's gateway: its
	// forwards, its NAT and its DNS server.
	GatewayStats
}

// GatewayStats counts what the gateway of a user network did for its
// VMs: the one guest's of a User (Stats), every VM's of a Hub (HubStats).
// Each VM has bounds of its own; each user's VMs on a hub share a budget
// sized from the process's RLIMIT_NOFILE, as do all its VMs.
type GatewayStats struct {
	// ForwardsPending is the number of host connections of the TCP port
	// forwards waiting for their guest to accept, now; ForwardsRefused
	// counts those closed at once because too many were waiting (for
	// that forward or that VM).
	ForwardsPending, ForwardsRefused uint64
	// ForwardFlows is the number of client flows of the UDP port
	// forwards, now; ForwardFlowsRefused counts the datagrams of new
	// clients dropped because the forward or its VM had its most flows.
	ForwardFlows, ForwardFlowsRefused uint64
	// NATConns and NATFlows are the guests' TCP connections and UDP
	// flows relayed to the host now; NATRefusedConns and NATRefusedFlows
	// count those refused because their VM had its most already, or
	// its user's VMs or all VMs had (a TCP SYN reset; a new flow's
	// datagram dropped).
	NATConns, NATFlows, NATRefusedConns, NATRefusedFlows uint64
	// NATHeldConns counts the guests' TCP connections whose SYN was held
	// back (dropped, for the guest to send again) while too many of its
	// VM's connections were being dialled, or waited for it to finish
	// their handshake, once each: delayed, not refused, so not counted
	// by Stats.Lost.
	NATHeldConns uint64
	// DNSRefused counts the guests' DNS queries answered SERVFAIL at
	// once because too many were being asked of the host's nameservers,
	// for all VMs or for that VM.
	DNSRefused uint64
	// DNSConns is the guests' DNS-over-TCP connections to the network
	// open now; DNSRefusedConns counts those reset at once because their
	// VM had its most open already.
	DNSConns, DNSRefusedConns uint64
}

// Lost is how many frames, connections, flows and queries the backend
// dropped or refused (every counter of them but the frames moved and
// those open now).
func (s Stats) Lost() uint64 {
	return s.Dropped + s.Unsent + s.ForwardsRefused + s.ForwardFlowsRefused +
		s.NATRefusedConns + s.NATRefusedFlows + s.DNSRefused + s.DNSRefusedConns
}

// String gives the frames moved each way, then each non-zero count of
// those dropped, refused or delayed, and why.
func (s Stats) String() string {
	out := fmt.Sprintf("%d frames to the guest, %d from it", s.ToGuest, s.FromGuest)
	for _, c := range []struct {
		n    uint64
		what string
	}{
		{s.Dropped, "frames for the guest dropped, not taken fast enough"},
		{s.Unsent, "frames from the guest dropped while the shared network was away"},
		{s.ForwardsRefused, "forwarded TCP connections closed at once, too many waiting for the guest"},
		{s.ForwardFlowsRefused, "forwarded UDP datagrams of new clients dropped, at a forward's or the VM's most flows"},
		{s.NATRefusedConns, "outgoing TCP connections refused, at the VM's most"},
		{s.NATRefusedFlows, "outgoing UDP flows refused, at the VM's most"},
		{s.NATHeldConns, "outgoing TCP connections delayed (SYN held back), too many being dialled or left unanswered by the guest"},
		{s.DNSRefused, "DNS queries answered SERVFAIL at once, too many being asked"},
		{s.DNSRefusedConns, "DNS TCP connections reset, at the VM's most"},
	} {
		if c.n != 0 {
			out += fmt.Sprintf("; %d %s", c.n, c.what)
		}
	}
	return out
}

// StatsReporter is implemented by backends that count frames.
type StatsReporter interface {
	// Stats returns a snapshot of the counters.
	Stats() Stats
}

// checkOutgoing validates a frame given to WriteFrame.
func checkOutgoing(frame []byte) error {
	var err error
	switch {
	case len(frame) < EthernetHeaderSize:
		err = ErrFrameTooShort
	case len(frame) > MaxFrameSize:
		err = ErrFrameTooLong
	default:
		return nil
	}
	return fmt.Errorf("%w: %d bytes (limits %d..%d)", err, len(frame), EthernetHeaderSize, MaxFrameSize)
}
