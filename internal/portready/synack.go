package portready

import "encoding/binary"

// Ethernet types and the IP protocol number Accepted reads.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86DD
	protoTCP  = 6
)

// TCP flags.
const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Accepted reports whether frame, an Ethernet frame the guest transmits, is
// the guest accepting a TCP connection on port: a SYN-ACK from that port,
// over IPv4 or IPv6 (without extension headers). A forwarder in front of a
// guest accepts on the host before the guest is even asked, so this, not a
// host connection, tells that the guest listens.
func Accepted(frame []byte, port uint16) bool {
	if len(frame) < 14 {
		return false
	}
	var tcp []byte
	switch ip := frame[14:]; binary.BigEndian.Uint16(frame[12:]) {
	case etherIPv4:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != protoTCP {
			return false
		}
		if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return false // a later fragment: no TCP header
		}
		ihl := int(ip[0]&15) * 4
		if ihl < 20 || len(ip) < ihl {
			return false
		}
		tcp = ip[ihl:]
	case etherIPv6:
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != protoTCP {
			return false
		}
		tcp = ip[40:]
	default:
		return false
	}
	if len(tcp) < 20 {
		return false
	}
	flags := tcp[13]
	return binary.BigEndian.Uint16(tcp) == port && flags&(tcpSYN|tcpACK|tcpRST) == tcpSYN|tcpACK
}
