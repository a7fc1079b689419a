package netback

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// The hub's filter of the frames a VM sends (hubPort.allowed): what lets
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

// allowed reports whether a frame from this VM may be switched: no
// larger than hubMaxFrame, from the VM's MAC, no VLAN tag, and, for ARP,
// IPv4 and IPv6, sent as the VM itself (allowedARP, allowedIPv4,
// allowedIPv6). Other types pass: no other station on the network speaks
// them.
func (p *hubPort) allowed(f []byte) bool {
	if len(f) > hubMaxFrame || !bytes.Equal(f[6:12], p.mac) {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case etherIPv4:
		return p.allowedIPv4(f[EthernetHeaderSize:])
	case etherARP:
		return p.allowedARP(f[EthernetHeaderSize:])
	case etherIPv6:
		return p.allowedIPv6(f[EthernetHeaderSize:])
	case 0x8100, 0x88a8: // VLAN tags would hide the rest from these checks
		return false
	}
	return true
}

// allowedARP: IPv4 over Ethernet, the VM's MAC as sender, and its
// address as sender, or 0.0.0.0 in a probe of its own address only (RFC
// 5227): a probe from 0.0.0.0 for another VM's address makes that VM's
// duplicate address detection (NetBSD's, at every boot) mark its address
// duplicated, and each MAC always gets the same address.
func (p *hubPort) allowedARP(a []byte) bool {
	if len(a) < 28 || binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherIPv4 ||
		a[4] != 6 || a[5] != 4 || !bytes.Equal(a[8:14], p.mac) {
		return false
	}
	sender, target := netip.AddrFrom4([4]byte(a[14:18])), netip.AddrFrom4([4]byte(a[24:28]))
	switch {
	case sender == p.addr:
		return true
	case sender.IsUnspecified():
		return binary.BigEndian.Uint16(a[6:8]) == 1 && target == p.addr
	}
	return false
}

// DHCP's BOOTP fields the filter reads (RFC 2131): op, htype, hlen at
// the start, chaddr at 28.
const (
	bootRequest    = 1
	bootpChaddr    = 28
	bootpMinLength = bootpChaddr + 16
)

// allowedIPv4: from the VM's address, or from any other only as a DHCP
// client (UDP 68 to 67, unfragmented) to the gateway or broadcast: from
// 0.0.0.0 before it has an address, and from an address the network no
// longer gives it (it rejoined at another), which the gateway must see to
// refuse (NAK), or the guest stays offline until its lease runs out.
// Nothing from a DHCP server's port 67 or to a client's 68 (the gateway is
// the only DHCP server), and a request to port 67 names the VM's own MAC,
// so that the gateway answers no VM about another's lease. A UDP header is
// always whole in a first fragment (a later one starts 8 bytes in at
// least), so checking first fragments covers every datagram.
func (p *hubPort) allowedIPv4(ip []byte) bool {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return false
	}
	hl := int(ip[0]&0xf) * 4
	if hl < 20 || len(ip) < hl {
		return false
	}
	src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	own := src == p.addr
	fragment := binary.BigEndian.Uint16(ip[6:8]) & 0x3fff // more fragments and offset
	first := fragment&0x1fff == 0
	if ip[9] != 17 || !first { // not UDP, or a later fragment
		return own
	}
	udp := ip[hl:]
	if len(udp) < 8 {
		return false
	}
	sport, dport := binary.BigEndian.Uint16(udp[0:2]), binary.BigEndian.Uint16(udp[2:4])
	switch {
	case sport == dhcpServerPort || dport == dhcpClientPort:
		return false
	case dport == dhcpServerPort:
		b := udp[8:]
		client := sport == dhcpClientPort && (dst == UserGateway || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
		return fragment == 0 && (own || client) &&
			len(b) >= bootpMinLength && b[0] == bootRequest && b[1] == 1 && b[2] == 6 &&
			bytes.Equal(b[bootpChaddr:bootpChaddr+6], p.mac)
	}
	return own
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
