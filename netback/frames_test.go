package netback_test

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/smolvmm/smolvmm/netback"
)

// arpRequest builds "who has target? tell sender" from mac.
func arpRequest(mac net.HardwareAddr, sender, target netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	binary.BigEndian.PutUint16(f[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], 1) // request
	copy(f[22:28], mac)
	s4, t4 := sender.As4(), target.As4()
	copy(f[28:32], s4[:])
	copy(f[38:42], t4[:])
	return f
}

// udpBroadcast wraps a UDP payload from 0.0.0.0:sport to
// 255.255.255.255:dport in IPv4 and Ethernet broadcast headers, as a DHCP
// client sends before it has an address.
func udpBroadcast(mac net.HardwareAddr, sport, dport uint16, payload []byte) []byte {
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	return ipv4Frame(broadcast, mac, netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255}), 17, udpDatagram(sport, dport, payload))
}

// ipv4Frame wraps payload, of IP protocol proto, in an IPv4 header from
// src to dst (no options, TTL 64) and an Ethernet header from srcMAC to
// dstMAC.
func ipv4Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, proto byte, payload []byte) []byte {
	f := make([]byte, 14+20+len(payload))
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
	ip[8], ip[9] = 64, proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	copy(f[34:], payload)
	return f
}

// udpDatagram is a UDP header from sport to dport and payload, with no
// checksum (0: none, allowed for IPv4).
func udpDatagram(sport, dport uint16, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return udp
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// icmpEcho builds an ICMP echo request (id, seq) from mac and src to dst
// through the gateway's MAC.
func icmpEcho(mac net.HardwareAddr, src, dst netip.Addr, id, seq uint16) []byte {
	m := make([]byte, 8+8)
	m[0] = 8 // echo request
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], "smolvmm!")
	binary.BigEndian.PutUint16(m[2:], ipChecksum(m))
	return ipv4Frame(netback.UserGatewayMAC, mac, src, dst, 1, m)
}
