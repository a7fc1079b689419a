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
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8], ip[9] = 64, 17
	copy(ip[16:20], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(f[42:], payload) // UDP checksum 0: none, allowed for IPv4
	return f
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
	f := make([]byte, 14+20+8+8)
	copy(f[0:6], netback.UserGatewayMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
	ip[8], ip[9] = 64, 1
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	m := f[34:]
	m[0] = 8 // echo request
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], "smolvmm!")
	binary.BigEndian.PutUint16(m[2:], ipChecksum(m))
	return f
}
