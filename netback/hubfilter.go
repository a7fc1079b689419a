package netback

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// The hub's filter of the frames a VM sends (hubPort.judge): what lets
// one VM pass for another, or for the gateway, is dropped before it is
// switched.

// hubMaxFrame is the largest frame a VM may send: an MTU-sized packet
// (DHCP gives the VMs MTU) with its Ethernet header. A VM's NIC has no
// segmentation offloads, so a larger frame is never its own traffic, and
// frames up to MaxFrameSize would let one VM fill another's queue with
// 43 times the memory of its depth in frames.
const hubMaxFrame = EthernetHeaderSize + MTU

// Ethernet types the filter looks into.
const (
	etherIPv4 = 0x0800
	etherARP  = 0x0806
	etherIPv6 = 0x86dd
)

// linkLocal is the IPv6 link-local address a NIC with MAC mac gives
// itself (modified EUI-64, RFC 4291 appendix A), as NetBSD's kernel does.
func linkLocal(mac [6]byte) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
}

// hubVerdict is what the hub does with a frame from a VM (hubPort.judge).
type hubVerdict uint8

const (
	hubDrop      hubVerdict = iota // dropped, counted as spoofed
	hubSwitch                      // switched as any frame
	hubToGateway                   // given to the gateway only
	hubAnswerARP                   // answered by the hub (gatewayARPReply)
)

// judge says what becomes of a frame from this VM: switched only if no
// larger than hubMaxFrame, from the VM's MAC, with no VLAN tag, and, for
// ARP, IPv4 and IPv6, sent as the VM itself (judgeARP, judgeIPv4,
// allowedIPv6). Other types pass: no other station on the network
// speaks them.
func (p *hubPort) judge(f []byte) hubVerdict {
	if len(f) > hubMaxFrame || !bytes.Equal(f[6:12], p.mac) {
		return hubDrop
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case etherIPv4:
		return p.judgeIPv4(f[0:6], f[EthernetHeaderSize:])
	case etherARP:
		return p.judgeARP(f[EthernetHeaderSize:])
	case etherIPv6:
		return verdict(p.allowedIPv6(f[EthernetHeaderSize:]))
	case 0x8100, 0x88a8: // VLAN tags would hide the rest from these checks
		return hubDrop
	}
	return hubSwitch
}

// verdict is hubSwitch for true, hubDrop for false.
func verdict(ok bool) hubVerdict {
	if ok {
		return hubSwitch
	}
	return hubDrop
}

// judgeARP: IPv4 over Ethernet, the VM's MAC as sender, and its
// address as sender, or 0.0.0.0 in a probe of its own address only (RFC
// 5227): a probe from 0.0.0.0 for another VM's address makes that VM's
// duplicate address detection (NetBSD's, at every boot) mark its address
// duplicated, and each MAC always gets the same address. A request for
// the gateway's address (or the DNS server's) from any other sender is
// answered by the hub (gatewayARPReply): a VM that rejoined at another
// address renews its old one unicast to the gateway, whose address it
// must find again once its ARP entry expired (NetBSD keeps one 20
// minutes), else it is refused (NAK) only when it rebinds. The gateway
// never sees that request, so it learns no MAC for the old address,
// which may be another VM's now.
func (p *hubPort) judgeARP(a []byte) hubVerdict {
	if len(a) < 28 || binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherIPv4 ||
		a[4] != 6 || a[5] != 4 || !bytes.Equal(a[8:14], p.mac) {
		return hubDrop
	}
	op := binary.BigEndian.Uint16(a[6:8])
	sender, target := netip.AddrFrom4([4]byte(a[14:18])), netip.AddrFrom4([4]byte(a[24:28]))
	switch {
	case sender == p.addr:
		return hubSwitch
	case op == 1 && (target == UserGateway || target == UserDNS):
		return hubAnswerARP
	case sender.IsUnspecified():
		return verdict(op == 1 && target == p.addr)
	}
	return hubDrop
}

// gatewayARPReply is the gateway's ARP reply to f, a request judgeARP
// gave hubAnswerARP: the requested address is at the gateway's MAC,
// told to the VM's MAC and the sender address it asked from.
func gatewayARPReply(f []byte) []byte {
	a := f[EthernetHeaderSize:]
	r := make([]byte, EthernetHeaderSize+28)
	copy(r[0:6], a[8:14])
	copy(r[6:12], UserGatewayMAC)
	binary.BigEndian.PutUint16(r[12:14], etherARP)
	b := r[EthernetHeaderSize:]
	copy(b[0:6], a[0:6]) // Ethernet, IPv4, 6, 4
	binary.BigEndian.PutUint16(b[6:8], 2)
	copy(b[8:14], UserGatewayMAC)
	copy(b[14:18], a[24:28])
	copy(b[18:24], a[8:14])
	copy(b[24:28], a[14:18])
	return r
}

// DHCP's BOOTP fields the filter reads (RFC 2131): op, htype, hlen at
// the start, chaddr at 28.
const (
	bootRequest    = 1
	bootpChaddr    = 28
	bootpMinLength = bootpChaddr + 16
)

// judgeIPv4 judges an IPv4 packet sent to the Ethernet address dstMAC:
// from the VM's address, or from another only as a DHCP client (UDP 68
// to 67, unfragmented): from 0.0.0.0 before it has an address, and from
// an address the network no longer gives it (it rejoined at another),
// which the gateway must see to refuse (NAK), or the guest stays offline
// until its lease runs out. Such a request goes to the gateway only (the
// other VMs have no use for it, and would take it for the sender's), at
// its MAC or broadcast and its address or broadcast, with no IP options
// (a malformed one would have the gateway send an ICMP error to the
// claimed source), from 0.0.0.0 or an address of the pool that no other
// MAC leases (foreignSourceOK). Nothing from a DHCP server's port 67 or
// to a client's 68 (the gateway is the only DHCP server), and a request
// to port 67 names the VM's own MAC, so that the gateway answers no VM
// about another's lease. A UDP header is always whole in a first
// fragment (a later one starts 8 bytes in at least), so checking first
// fragments covers every datagram.
func (p *hubPort) judgeIPv4(dstMAC, ip []byte) hubVerdict {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return hubDrop
	}
	hl := int(ip[0]&0xf) * 4
	if hl < 20 || len(ip) < hl {
		return hubDrop
	}
	src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	own := verdict(src == p.addr)
	fragment := binary.BigEndian.Uint16(ip[6:8]) & 0x3fff // more fragments and offset
	first := fragment&0x1fff == 0
	if ip[9] != 17 || !first { // not UDP, or a later fragment
		return own
	}
	udp := ip[hl:]
	if len(udp) < 8 {
		return hubDrop
	}
	sport, dport := binary.BigEndian.Uint16(udp[0:2]), binary.BigEndian.Uint16(udp[2:4])
	switch {
	case sport == dhcpServerPort || dport == dhcpClientPort:
		return hubDrop
	case dport == dhcpServerPort:
		b := udp[8:]
		if fragment != 0 || len(b) < bootpMinLength || b[0] != bootRequest || b[1] != 1 || b[2] != 6 ||
			!bytes.Equal(b[bootpChaddr:bootpChaddr+6], p.mac) {
			return hubDrop
		}
		if own == hubSwitch {
			return hubSwitch
		}
		bcast := netip.AddrFrom4([4]byte{255, 255, 255, 255})
		toGateway := (bytes.Equal(dstMAC, UserGatewayMAC) || bytes.Equal(dstMAC, broadcastMAC[:])) &&
			(dst == UserGateway || dst == bcast)
		if sport != dhcpClientPort || hl != 20 || !toGateway || !p.foreignSourceOK(src) {
			return hubDrop
		}
		return hubToGateway
	}
	return own
}

// broadcastMAC is Ethernet's broadcast address.
var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// foreignSourceOK reports whether a DHCP request of this VM's may come
// from src, not its address: 0.0.0.0, or an address of the pool no
// other MAC leases, which may be the one it held before it rejoined.
// Never the gateway's or the DNS server's, nor another VM's.
func (p *hubPort) foreignSourceOK(src netip.Addr) bool {
	return src.IsUnspecified() || inPool(src) && !p.h.leases.leasedToOther(src, p.mac)
}

// dhcpReplyTo is the client MAC of a DHCP reply of the gateway's (IPv4,
// UDP 67 to 68); false for any other frame.
func dhcpReplyTo(f []byte) ([6]byte, bool) {
	if len(f) < EthernetHeaderSize+20 || binary.BigEndian.Uint16(f[12:14]) != etherIPv4 {
		return [6]byte{}, false
	}
	ip := f[EthernetHeaderSize:]
	hl := int(ip[0]&0xf) * 4
	if ip[9] != 17 || hl < 20 || len(ip) < hl+8+bootpMinLength {
		return [6]byte{}, false
	}
	udp := ip[hl:]
	if binary.BigEndian.Uint16(udp[0:2]) != dhcpServerPort || binary.BigEndian.Uint16(udp[2:4]) != dhcpClientPort {
		return [6]byte{}, false
	}
	return [6]byte(udp[8+bootpChaddr : 8+bootpChaddr+6]), true
}

// IPv6 next-header values and ICMPv6 types the filter reads.
const (
	ipv6HopByHop    = 0
	ipv6UDP         = 17
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6AuthHeader  = 51
	ipv6ICMP        = 58
	ipv6DestOptions = 60

	icmp6MLDQuery        = 130
	icmp6MLDReport       = 131
	icmp6MLDDone         = 132
	icmp6RouterSolicit   = 133
	icmp6RouterAdvert    = 134
	icmp6NeighborSolicit = 135
	icmp6NeighborAdvert  = 136
	icmp6Redirect        = 137
	icmp6MLDv2Report     = 143
)

// DHCPv6's UDP ports (RFC 8415 §7.2).
const (
	dhcp6ClientPort = 546
	dhcp6ServerPort = 547
)

// allowedIPv6: the network has no IPv6 router, so a VM's IPv6 is its
// link-local address's, and only the one its MAC makes (linkLocal) is
// its own: from it, or from :: in duplicate address detection of that
// address and in multicast listener reports (RFC 4862 §5.4, RFC 3590).
// Neighbour discovery is checked as ARP is (allowedICMPv6); ICMPv6 in
// fragments is dropped (RFC 6980 forbids fragmented neighbour discovery,
// and a fragment hides the message from these checks). No VM is a
// DHCPv6 server or relay: UDP from port 547 or to 546 is dropped. A
// first fragment holds the whole header chain, UDP header included (RFC
// 7112), so the walk goes on past its fragment header (AH, ESP and
// destination options follow it, RFC 8200 §4.1) to the ports; a later
// fragment starts 8 bytes into the datagram at least, past them. A second
// fragment header could hide a first fragment in a later one, and is
// dropped. ESP's payload is encrypted: no port can be read, and it passes
// from the VM's own address as other protocols do. A VM whose guest makes
// its link-local address otherwise (a stable private one) has no IPv6 on
// the network.
func (p *hubPort) allowedIPv6(ip []byte) bool {
	if len(ip) < 40 || ip[0]>>4 != 6 {
		return false
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	own := src == p.ll
	if !own && !src.IsUnspecified() {
		return false
	}
	next, off, fragmented := ip[6], 40, false
	for {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOptions, ipv6AuthHeader:
			if len(ip) < off+2 {
				return false
			}
			n := (int(ip[off+1]) + 1) * 8
			if next == ipv6AuthHeader { // its length is in 4-byte units, less 2
				n = (int(ip[off+1]) + 2) * 4
			}
			next, off = ip[off], off+n
		case ipv6Fragment:
			if fragmented || len(ip) < off+8 {
				return false
			}
			if binary.BigEndian.Uint16(ip[off+2:off+4])&^7 != 0 {
				// A later fragment: data, not headers, follow.
				return own && ip[off] != ipv6ICMP
			}
			next, off, fragmented = ip[off], off+8, true
		case ipv6ICMP:
			if fragmented || len(ip) < off {
				return false
			}
			return p.allowedICMPv6(ip[off:], own)
		case ipv6UDP:
			if !own || len(ip) < off+8 {
				return false
			}
			sport, dport := binary.BigEndian.Uint16(ip[off:off+2]), binary.BigEndian.Uint16(ip[off+2:off+4])
			return sport != dhcp6ServerPort && dport != dhcp6ClientPort
		default:
			return own
		}
	}
}

// allowedICMPv6 judges an ICMPv6 message of this VM's, own when from its
// link-local address (else from ::). Router advertisements, redirects and
// multicast listener queries are a router's, and dropped; a neighbour
// advertisement must be for the VM's own address, a solicitation from ::
// (duplicate address detection) too, and a link-layer address option
// must be its MAC.
func (p *hubPort) allowedICMPv6(m []byte, own bool) bool {
	if len(m) < 4 {
		return false
	}
	switch m[0] {
	case icmp6MLDReport, icmp6MLDDone, icmp6MLDv2Report:
		return true
	case icmp6RouterSolicit:
		return own && len(m) >= 8 && p.ownLinkOptions(m[8:])
	case icmp6NeighborSolicit:
		if len(m) < 24 || !own && netip.AddrFrom16([16]byte(m[8:24])) != p.ll {
			return false
		}
		return p.ownLinkOptions(m[24:])
	case icmp6NeighborAdvert:
		return own && len(m) >= 24 && netip.AddrFrom16([16]byte(m[8:24])) == p.ll && p.ownLinkOptions(m[24:])
	case icmp6RouterAdvert, icmp6Redirect, icmp6MLDQuery:
		return false
	}
	return own
}

// ownLinkOptions reports whether neighbour discovery options opts are
// well formed and every source or target link-layer address among them
// is this VM's MAC.
func (p *hubPort) ownLinkOptions(opts []byte) bool {
	for len(opts) > 0 {
		if len(opts) < 8 || opts[1] == 0 || len(opts) < int(opts[1])*8 {
			return false
		}
		n := int(opts[1]) * 8
		if (opts[0] == 1 || opts[0] == 2) && !bytes.Equal(opts[2:8], p.mac) {
			return false
		}
		opts = opts[n:]
	}
	return true
}
