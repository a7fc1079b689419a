package netback_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// withOptions gives an IPv4 frame's header the IP options opts (a
// multiple of 4 bytes), its lengths and checksum with them.
func withOptions(f []byte, opts ...byte) []byte {
	g := append(append(bytes.Clone(f[:34]), opts...), f[34:]...)
	ip := g[14:]
	ip[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(ip[2:], binary.BigEndian.Uint16(ip[2:])+uint16(len(opts)))
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20+len(opts)]))
	return g
}

// udpFrom is an IPv4/UDP frame from srcIP:sport to dstIP:dport.
func udpFrom(dstMAC, srcMAC net.HardwareAddr, srcIP, dstIP string, sport, dport uint16, payload []byte) []byte {
	return ipv4Frame(dstMAC, srcMAC, netip.MustParseAddr(srcIP), netip.MustParseAddr(dstIP), 17, udpDatagram(sport, dport, payload)) // frames_test.go
}

// withIPv4 changes an IPv4 frame's protocol and fragment field (flags and
// offset), and its header checksum with them.
func withIPv4(f []byte, proto byte, fragment uint16) []byte {
	f = bytes.Clone(f)
	ip := f[14:34]
	ip[9] = proto
	binary.BigEndian.PutUint16(ip[6:], fragment)
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	return f
}

// ipv6Frame is an IPv6 packet from mac and src to dstMAC and dst, its
// first next header next.
func ipv6Frame(dstMAC, mac net.HardwareAddr, src, dst string, next byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 255
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return ethFrame(dstMAC, mac, 0x86dd, append(h, payload...))
}

// icmp6 is an ICMPv6 message of type typ with body (checksum left 0: the
// hub does not check it).
func icmp6(typ byte, body ...[]byte) []byte {
	m := []byte{typ, 0, 0, 0}
	for _, b := range body {
		m = append(m, b...)
	}
	return m
}

// ndp is a neighbour solicitation's or advertisement's body: flags,
// target, and a link-layer address option (1 source, 2 target) if opt.
func ndp(flags byte, target string, opt byte, mac net.HardwareAddr) []byte {
	b := []byte{flags, 0, 0, 0}
	t := netip.MustParseAddr(target).As16()
	b = append(b, t[:]...)
	if opt != 0 {
		b = append(append(b, opt, 1), mac...)
	}
	return b
}

// hopByHop wraps an upper-layer header of protocol next in an empty
// hop-by-hop options header.
func hopByHop(next byte, payload []byte) []byte {
	return append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, payload...)
}

// udp6 is a UDP header from sport to dport (checksum 0: the hub does not
// check it) and its payload.
func udp6(sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	return append(u, payload...)
}

// fragment6 wraps payload, of protocol next, in a fragment header at
// offset bytes (a multiple of 8), more fragments following.
func fragment6(next byte, offset uint16, payload []byte) []byte {
	h := []byte{next, 0, 0, 0, 0, 0, 0, 7}
	binary.BigEndian.PutUint16(h[2:], offset|1)
	return append(h, payload...)
}

// destOptions wraps payload, of protocol next, in an empty destination
// options header; authHeader in an authentication header with no data.
func destOptions(next byte, payload []byte) []byte {
	return append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, payload...)
}

func authHeader(next byte, payload []byte) []byte {
	return append([]byte{next, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1}, payload...)
}

// dhcpDiscover is a DHCPDISCOVER for mac, broadcast from 0.0.0.0.
func dhcpDiscover(t *testing.T, mac net.HardwareAddr) []byte {
	d, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	return udpBroadcast(mac, 68, 67, d.ToBytes())
}

// The hub switches a VM's frames only as that VM's own: ARP, IPv4 and
// IPv6 that would pass it for another VM or for the gateway (address
// conflicts, DHCP server, router) are dropped and counted, and so are
// frames larger than the MTU; its own traffic passes.
func TestHubFilter(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	victim := joinRaw(t, h, testMAC(1)) // 10.0.2.15, fe80::5054:ff:feab:1
	bad := joinRaw(t, h, testMAC(2))    // 10.0.2.16, fe80::5054:ff:feab:2
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodes := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	me, other := testMAC(2), testMAC(1)
	const myLL, otherLL = "fe80::5054:ff:feab:2", "fe80::5054:ff:feab:1"
	arpOp := func(f []byte, op uint16) []byte {
		f = bytes.Clone(f)
		binary.BigEndian.PutUint16(f[20:], op)
		return f
	}
	arpHW := func(f []byte, hw uint16) []byte {
		f = bytes.Clone(f)
		binary.BigEndian.PutUint16(f[14:], hw)
		return f
	}
	offer, err := dhcpv4.NewReplyFromRequest(&dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: 1, ClientHWAddr: other},
		dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(net.IPv4(10, 0, 2, 15)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 0, 2, 16))))
	if err != nil {
		t.Fatal(err)
	}
	ownProbe := arpRequest(me, netip.IPv4Unspecified(), netip.MustParseAddr("10.0.2.16"))
	// gatewayOnly: the frame reaches the gateway only (or the hub
	// answers it), no VM, and is not counted as spoofed.
	const gatewayOnly = 2
	cases := []struct {
		name  string
		frame []byte
		pass  int8 // 0: dropped and counted, 1: switched, or gatewayOnly
	}{
		{"ARP probe for another VM's address", arpRequest(me, netip.IPv4Unspecified(), netip.MustParseAddr("10.0.2.15")), 0},
		{"ARP probe for its own address", ownProbe, 1},
		{"ARP reply from 0.0.0.0", arpOp(ownProbe, 2), 0},
		{"ARP of another hardware type", arpHW(arpRequest(me, netip.MustParseAddr("10.0.2.16"), netip.MustParseAddr("10.0.2.15")), 6), 0},
		{"ARP request for the gateway from an address not its own: the hub answers", arpRequest(me, netip.MustParseAddr("10.0.2.40"), netback.UserGateway), gatewayOnly},
		{"ARP request for the DNS server from another VM's address: the hub answers", arpRequest(me, netip.MustParseAddr("10.0.2.15"), netback.UserDNS), gatewayOnly},
		{"ARP request for another VM from an address not its own", arpRequest(me, netip.MustParseAddr("10.0.2.40"), netip.MustParseAddr("10.0.2.15")), 0},
		{"ARP reply to the gateway from an address not its own", arpOp(arpRequest(me, netip.MustParseAddr("10.0.2.40"), netback.UserGateway), 2), 0},
		{"ARP request from its address", arpRequest(me, netip.MustParseAddr("10.0.2.16"), netip.MustParseAddr("10.0.2.15")), 1},

		{"UDP from 0.0.0.0 to another port than DHCP's", udpFrom(bcast, me, "0.0.0.0", "255.255.255.255", 68, 9, make([]byte, 8)), 0},
		{"TCP from 0.0.0.0", withIPv4(udpFrom(bcast, me, "0.0.0.0", "255.255.255.255", 68, 67, make([]byte, 8)), 6, 0), 0},
		{"DHCP request naming another MAC", func() []byte { f := dhcpDiscover(t, other); copy(f[6:12], me); return f }(), 0},
		{"DHCP request from 0.0.0.0 in fragments", withIPv4(dhcpDiscover(t, me), 17, 0x2000), 0},
		{"DHCP request naming its own MAC: to the gateway only", dhcpDiscover(t, me), gatewayOnly},
		{"DHCP request from an address not its own, broadcast: to the gateway only", udpFrom(bcast, me, "10.0.2.40", "255.255.255.255", 68, 67, dhcpDiscover(t, me)[42:]), gatewayOnly},
		{"DHCP request from an address not its own with IP options", withOptions(udpFrom(netback.UserGatewayMAC, me, "10.0.2.40", "10.0.2.2", 68, 67, dhcpDiscover(t, me)[42:]), 0x44, 4, 1, 0), 0},
		{"DHCP request from 0.0.0.0 with IP options", withOptions(dhcpDiscover(t, me), 0x44, 4, 1, 0), 0},
		{"DHCP request from another VM's address, broadcast", udpFrom(bcast, me, "10.0.2.15", "255.255.255.255", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from another VM's address to the gateway", udpFrom(netback.UserGatewayMAC, me, "10.0.2.15", "10.0.2.2", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from the gateway's address, broadcast", udpFrom(bcast, me, "10.0.2.2", "255.255.255.255", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from the DNS server's address to the gateway", udpFrom(netback.UserGatewayMAC, me, "10.0.2.3", "10.0.2.2", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from outside the pool, broadcast", udpFrom(bcast, me, "192.0.2.1", "255.255.255.255", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from an address not its own to the gateway's address at a VM's MAC", udpFrom(other, me, "10.0.2.40", "10.0.2.2", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from an address not its own to a VM", udpFrom(other, me, "10.0.2.40", "10.0.2.15", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from an address not its own to a host past the gateway (counted)", udpFrom(netback.UserGatewayMAC, me, "10.0.2.40", "1.2.3.4", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from 0.0.0.0 to a VM", udpFrom(other, me, "0.0.0.0", "10.0.2.15", 68, 67, dhcpDiscover(t, me)[42:]), 0},
		{"UDP to port 67 from an address not its own, not from 68", udpFrom(bcast, me, "10.0.2.40", "255.255.255.255", 1000, 67, dhcpDiscover(t, me)[42:]), 0},
		{"DHCP request from an address not its own naming another MAC", udpFrom(bcast, me, "10.0.2.40", "255.255.255.255", 68, 67, dhcpDiscover(t, other)[42:]), 0},
		{"DHCP offer from a VM", udpFrom(other, me, "10.0.2.16", "255.255.255.255", 67, 68, offer.ToBytes()), 0},
		{"UDP to a DHCP client's port", udpFrom(other, me, "10.0.2.16", "10.0.2.15", 1000, 68, offer.ToBytes()), 0},
		{"UDP from its address", udpFrom(other, me, "10.0.2.16", "10.0.2.15", 1000, 9, make([]byte, 8)), 1},

		{"IPv6 from another VM's link-local address", ipv6Frame(other, me, otherLL, otherLL, 17, make([]byte, 16)), 0},
		{"IPv6 from a global address", ipv6Frame(other, me, "2001:db8::2", otherLL, 17, make([]byte, 16)), 0},
		{"UDP over IPv6 from ::", ipv6Frame(other, me, "::", otherLL, 17, make([]byte, 16)), 0},
		{"IPv6 from its link-local address", ipv6Frame(other, me, myLL, otherLL, 17, make([]byte, 16)), 1},
		{"neighbour advertisement of another VM's address", ipv6Frame(allNodes, me, myLL, "ff02::1", 58, icmp6(136, ndp(0xe0, otherLL, 2, me))), 0},
		{"neighbour advertisement naming another MAC", ipv6Frame(allNodes, me, myLL, "ff02::1", 58, icmp6(136, ndp(0xe0, myLL, 2, other))), 0},
		{"neighbour advertisement of its address", ipv6Frame(allNodes, me, myLL, "ff02::1", 58, icmp6(136, ndp(0x20, myLL, 2, me))), 1},
		{"router advertisement", ipv6Frame(allNodes, me, myLL, "ff02::1", 58, icmp6(134, make([]byte, 12))), 0},
		{"router advertisement after hop-by-hop options", ipv6Frame(allNodes, me, myLL, "ff02::1", 0, hopByHop(58, icmp6(134, make([]byte, 12)))), 0},
		{"fragmented ICMPv6", ipv6Frame(allNodes, me, myLL, "ff02::1", 44, append([]byte{58, 0, 0, 1, 0, 0, 0, 1}, icmp6(134, make([]byte, 12))...)), 0},
		{"redirect", ipv6Frame(other, me, myLL, otherLL, 58, icmp6(137, make([]byte, 36))), 0},
		{"multicast listener query", ipv6Frame(allNodes, me, myLL, "ff02::1", 58, icmp6(130, make([]byte, 20))), 0},
		{"duplicate address probe for another VM's address", ipv6Frame(allNodes, me, "::", "ff02::1:ffab:1", 58, icmp6(135, ndp(0, otherLL, 0, nil))), 0},
		{"duplicate address probe for its address", ipv6Frame(allNodes, me, "::", "ff02::1:ffab:2", 58, icmp6(135, ndp(0, myLL, 0, nil))), 1},
		{"neighbour solicitation naming another MAC", ipv6Frame(allNodes, me, myLL, "ff02::1:ffab:1", 58, icmp6(135, ndp(0, otherLL, 1, other))), 0},
		{"neighbour solicitation", ipv6Frame(allNodes, me, myLL, "ff02::1:ffab:1", 58, icmp6(135, ndp(0, otherLL, 1, me))), 1},
		{"DHCPv6 advertise from a VM", ipv6Frame(other, me, myLL, otherLL, 17, udp6(547, 546, make([]byte, 16))), 0},
		{"DHCPv6 relay reply from a VM", ipv6Frame(other, me, myLL, otherLL, 17, udp6(547, 547, make([]byte, 16))), 0},
		{"UDP over IPv6 to a DHCPv6 client's port", ipv6Frame(other, me, myLL, otherLL, 17, udp6(1000, 546, make([]byte, 16))), 0},
		{"DHCPv6 advertise after destination options", ipv6Frame(other, me, myLL, otherLL, 60, destOptions(17, udp6(547, 546, make([]byte, 16)))), 0},
		{"DHCPv6 advertise after an authentication header", ipv6Frame(other, me, myLL, otherLL, 51, authHeader(17, udp6(547, 546, make([]byte, 16)))), 0},
		{"DHCPv6 advertise in a first fragment", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(17, 0, udp6(547, 546, make([]byte, 16)))), 0},
		{"a first fragment without its UDP header", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(17, 0, make([]byte, 4))), 0},
		{"DHCPv6 advertise after a fragment header and destination options", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(60, 0, destOptions(17, udp6(547, 546, make([]byte, 16))))), 0},
		{"DHCPv6 advertise after a fragment header and AH", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(51, 0, authHeader(17, udp6(547, 546, make([]byte, 16))))), 0},
		{"a first fragment of AH without the UDP header", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(51, 0, authHeader(17, make([]byte, 4)))), 0},
		{"ICMPv6 after a fragment header and destination options", ipv6Frame(allNodes, me, myLL, "ff02::1", 44, fragment6(60, 0, destOptions(58, icmp6(134, make([]byte, 12))))), 0},
		{"a second fragment header", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(44, 0, fragment6(17, 8, make([]byte, 16)))), 0},
		{"ESP after a fragment header from ::", ipv6Frame(other, me, "::", otherLL, 44, fragment6(50, 0, make([]byte, 24))), 0},
		{"DHCPv6 solicit from its link-local address", ipv6Frame(allNodes, me, myLL, "ff02::1:2", 17, udp6(546, 547, make([]byte, 16))), 1},
		{"UDP over IPv6 in a first fragment", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(17, 0, udp6(1000, 9, make([]byte, 16)))), 1},
		{"a later UDP fragment", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(17, 8, make([]byte, 16))), 1},
		// RFC 8200 §4.1's order: AH, ESP and destination options follow
		// the fragment header, all in the first fragment (RFC 7112).
		{"UDP after a fragment header and destination options", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(60, 0, destOptions(17, udp6(1000, 9, make([]byte, 16))))), 1},
		{"UDP after a fragment header and AH", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(51, 0, authHeader(17, udp6(1000, 9, make([]byte, 16))))), 1},
		{"UDP after a fragment header, AH and destination options", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(51, 0, authHeader(60, destOptions(17, udp6(1000, 9, make([]byte, 16)))))), 1},
		{"ESP after a fragment header", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(50, 0, make([]byte, 24))), 1},
		{"a later fragment after AH", ipv6Frame(other, me, myLL, otherLL, 44, fragment6(51, 8, make([]byte, 16))), 1},
		{"UDP over IPv6 after destination options", ipv6Frame(other, me, myLL, otherLL, 60, destOptions(17, udp6(1000, 9, make([]byte, 16)))), 1},
		{"multicast listener report from ::", ipv6Frame(allNodes, me, "::", "ff02::16", 0, hopByHop(58, icmp6(143, make([]byte, 4)))), 1},

		{"a frame of MTU bytes", ethFrame(other, me, 0x88b5, make([]byte, netback.MTU)), 1},
		{"a frame longer than the MTU", ethFrame(other, me, 0x88b5, make([]byte, netback.MTU+1)), 0},
	}
	drops := 0
	for _, c := range cases {
		bad.send(t, c.frame)
		if c.pass == 0 {
			drops++
		}
	}
	// The hub switches one VM's frames in order: once the marker is
	// through, so is every frame before it.
	marker := ethFrame(other, me, 0x88b5, []byte("marker"))
	bad.send(t, marker)
	got := map[int]bool{}
	for f := victim.recv(t); !bytes.Equal(f, marker); f = victim.recv(t) {
		for i, c := range cases {
			if bytes.Equal(f, c.frame) {
				got[i] = true
			}
		}
	}
	for i, c := range cases {
		if want := c.pass == 1; got[i] != want {
			t.Errorf("%s: reached the other VM %v, want %v", c.name, got[i], want)
		}
	}
	if s := h.Stats(); s.Spoofed != uint64(drops) {
		t.Errorf("Spoofed = %d, want %d", s.Spoofed, drops)
	}
}

// The gateway's DHCP replies, broadcast to clients without an address,
// reach their client only: a VM asking again and again (beyond its own
// flood limit) makes the gateway flood no other VM.
func TestHubDHCPRepliesToClientOnly(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	victim := joinRaw(t, h, testMAC(1))
	asker := joinRaw(t, h, testMAC(2))
	isReply := func(f []byte, mac net.HardwareAddr) (*dhcpv4.DHCPv4, bool) {
		if len(f) <= 42 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 || binary.BigEndian.Uint16(f[34:]) != 67 {
			return nil, false
		}
		r, err := dhcpv4.FromBytes(f[42:])
		return r, err == nil && (mac == nil || bytes.Equal(r.ClientHWAddr, mac))
	}
	asker.send(t, dhcpDiscover(t, testMAC(2)))
	for {
		if _, ok := isReply(asker.recv(t), testMAC(2)); ok {
			break
		}
	}
	// The gateway switches its frames in order: the victim's own offer
	// comes after anything the hub made of the other's.
	victim.send(t, dhcpDiscover(t, testMAC(1)))
	for {
		r, ok := isReply(victim.recv(t), nil)
		if !ok {
			continue
		}
		if !bytes.Equal(r.ClientHWAddr, testMAC(1)) {
			t.Fatalf("the victim received the gateway's %s for %s", r.MessageType(), r.ClientHWAddr)
		}
		break
	}
}

// A VM that rejoined the network at another address renews (unicast to
// the gateway) and rebinds (broadcast) from the address it had: the hub
// lets those DHCP requests through, and the gateway refuses the old
// address with a NAK (broadcast, from server 10.0.2.2, as a client
// without a valid address takes it) so that the guest starts over and
// gets its new address, instead of staying offline until its lease ends.
func TestHubNaksOldAddress(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	mac := testMAC(1) // 10.0.2.15
	vm := joinRaw(t, h, mac)
	const old = "10.0.2.40"
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	cases := []struct {
		name    string
		dstMAC  net.HardwareAddr
		dst     string
		request []dhcpv4.Modifier
		want    dhcpv4.MessageType
	}{
		{"renewing", netback.UserGatewayMAC, "10.0.2.2", nil, dhcpv4.MessageTypeNak},
		{"rebinding", bcast, "255.255.255.255", nil, dhcpv4.MessageTypeNak},
		{"requesting the old address", bcast, "255.255.255.255", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(old)))}, dhcpv4.MessageTypeNak},
		// Its lease, asked from another address: the ACK is broadcast
		// too, not sent to an address that may be another VM's.
		{"requesting its lease", bcast, "255.255.255.255", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.0.2.15")))}, dhcpv4.MessageTypeAck},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mods := append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, c.request...)
			if c.request == nil {
				mods = append(mods, dhcpv4.WithClientIP(net.ParseIP(old)))
			}
			req, err := dhcpv4.New(mods...)
			if err != nil {
				t.Fatal(err)
			}
			vm.send(t, udpFrom(c.dstMAC, mac, old, c.dst, 68, 67, req.ToBytes()))
			for {
				f := vm.recv(t)
				if len(f) <= 42 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 || binary.BigEndian.Uint16(f[34:]) != 67 {
					continue
				}
				r, err := dhcpv4.FromBytes(f[42:])
				if err != nil || r.TransactionID != req.TransactionID {
					continue
				}
				if r.MessageType() != c.want || !bytes.Equal(f[:6], bcast) || !bytes.Equal(f[30:34], []byte{255, 255, 255, 255}) ||
					!r.ServerIdentifier().Equal(net.IPv4(10, 0, 2, 2)) {
					t.Errorf("reply %s to %x %v from server %v, want %s broadcast from server 10.0.2.2",
						r.MessageType(), f[:6], net.IP(f[30:34]), r.ServerIdentifier(), c.want)
				}
				break
			}
		})
	}
}

// A VM that rejoined at another address asks for the gateway's MAC from
// its old address before it renews there (its ARP entry expired): the
// hub answers it, to that VM only, and nothing learns from it. Here the
// old address is another VM's now: that VM sees neither the request nor
// the answer, and the gateway's reply to its ping still comes to it, not
// to the asker.
func TestHubAnswersGatewayARPFromOldAddress(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	victim := joinRaw(t, h, testMAC(1)) // 10.0.2.15
	asker := joinRaw(t, h, testMAC(2))  // 10.0.2.16, was 10.0.2.15
	victimAddr := netip.MustParseAddr("10.0.2.15")
	for _, target := range []netip.Addr{netback.UserGateway, netback.UserDNS} {
		asker.send(t, arpRequest(testMAC(2), victimAddr, target))
		f := asker.recv(t)
		want := ethFrame(testMAC(2), netback.UserGatewayMAC, 0x0806, nil)
		want = append(want, 0, 1, 8, 0, 6, 4, 0, 2)
		want = append(append(want, netback.UserGatewayMAC...), target.AsSlice()...)
		want = append(append(want, testMAC(2)...), victimAddr.AsSlice()...)
		if !bytes.Equal(f, want) {
			t.Fatalf("asked for %s from %s, received\n% x\nwant\n% x", target, victimAddr, f, want)
		}
	}
	// The victim pings the gateway from its address: the gateway asks
	// for it (or knows it) and replies to the victim's MAC.
	victim.send(t, icmpEcho(testMAC(1), victimAddr, netback.UserGateway, 7, 1))
	for {
		f := victim.recv(t)
		if isEchoReply(f) {
			if !bytes.Equal(f[:6], testMAC(1)) {
				t.Errorf("echo reply to %x", f[:6])
			}
			break
		}
		if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0806 {
			continue
		}
		if bytes.Equal(f[22:28], testMAC(2)) || bytes.Equal(f[32:38], testMAC(2)) {
			t.Fatalf("the victim saw ARP of the asker's: % x", f)
		}
		if binary.BigEndian.Uint16(f[20:]) == 1 && bytes.Equal(f[38:42], victimAddr.AsSlice()) {
			r := ethFrame(netback.UserGatewayMAC, testMAC(1), 0x0806, []byte{0, 1, 8, 0, 6, 4, 0, 2})
			r = append(append(r, testMAC(1)...), victimAddr.AsSlice()...)
			r = append(append(r, f[22:28]...), f[28:32]...)
			victim.send(t, r)
		}
	}
	// Everything switched to the asker before the marker came before it.
	marker := ethFrame(testMAC(2), testMAC(1), 0x88b5, []byte("marker"))
	victim.send(t, marker)
	for f := asker.recv(t); !bytes.Equal(f, marker); f = asker.recv(t) {
		if len(f) >= 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && bytes.Equal(f[30:34], victimAddr.AsSlice()) {
			t.Errorf("the asker received a packet to %s: % x", victimAddr, f)
		}
	}
	if s := h.Stats(); s.Spoofed != 0 {
		t.Errorf("Spoofed = %d, want 0", s.Spoofed)
	}
}
