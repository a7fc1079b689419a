package portready

import (
	"encoding/binary"
	"testing"
)

// tcpFrame builds an Ethernet frame holding a TCP header from port src
// with flags, over IPv4 (v6 false) or IPv6.
func tcpFrame(v6 bool, src uint16, flags byte) []byte {
	f := make([]byte, 14)
	var ip []byte
	if v6 {
		binary.BigEndian.PutUint16(f[12:], etherIPv6)
		ip = make([]byte, 40)
		ip[0], ip[6] = 6<<4, protoTCP
	} else {
		binary.BigEndian.PutUint16(f[12:], etherIPv4)
		ip = make([]byte, 20)
		ip[0], ip[9] = 0x45, protoTCP
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp, src)
	binary.BigEndian.PutUint16(tcp[2:], 40000)
	tcp[12], tcp[13] = 5<<4, flags
	return append(append(f, ip...), tcp...)
}

func TestAccepted(t *testing.T) {
	fragment := tcpFrame(false, 80, tcpSYN|tcpACK)
	binary.BigEndian.PutUint16(fragment[14+6:], 10) // fragment offset 10
	udp := tcpFrame(false, 80, tcpSYN|tcpACK)
	udp[14+9] = 17
	options := tcpFrame(false, 80, tcpSYN|tcpACK) // IPv4 header of 24 bytes
	options = append(options[:14+20], append(make([]byte, 4), options[14+20:]...)...)
	options[14] = 0x46
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"SYN-ACK over IPv4", tcpFrame(false, 80, tcpSYN|tcpACK), true},
		{"SYN-ACK over IPv6", tcpFrame(true, 80, tcpSYN|tcpACK), true},
		{"SYN-ACK after IPv4 options", options, true},
		{"SYN-ACK from another port", tcpFrame(false, 81, tcpSYN|tcpACK), false},
		{"a refusal (RST-ACK)", tcpFrame(false, 80, tcpRST|tcpACK), false},
		{"the guest's own SYN", tcpFrame(false, 80, tcpSYN), false},
		{"a plain ACK", tcpFrame(false, 80, tcpACK), false},
		{"UDP", udp, false},
		{"a later fragment", fragment, false},
		{"truncated TCP header", tcpFrame(false, 80, tcpSYN|tcpACK)[:14+20+12], false},
		// Ports and flags are there, but a TCP header has 20 bytes.
		{"TCP header of 19 bytes", tcpFrame(false, 80, tcpSYN|tcpACK)[:14+20+19], false},
		{"TCP header of 14 bytes", tcpFrame(false, 80, tcpSYN|tcpACK)[:14+20+14], false},
		{"TCP header of 19 bytes over IPv6", tcpFrame(true, 80, tcpSYN|tcpACK)[:14+40+19], false},
		{"TCP header of 19 bytes after IPv4 options", options[:14+24+19], false},
		{"ARP", append(make([]byte, 12), 0x08, 0x06), false},
		{"runt", []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Accepted(tt.frame, 80); got != tt.want {
				t.Errorf("Accepted = %v, want %v", got, tt.want)
			}
		})
	}
}

// synAck is what Accepted must report, worked out from the frame's bytes
// on their own: an IPv4 header of at least 20 bytes (the first fragment)
// or an IPv6 one of 40, carrying TCP, then a whole 20-byte TCP header from
// port with SYN and ACK set and RST clear.
func synAck(frame []byte, port uint16) bool {
	be := binary.BigEndian
	var tcpAt int
	switch {
	case len(frame) >= 14+20 && be.Uint16(frame[12:]) == 0x0800:
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[0]>>4 != 4 || ihl < 20 || ip[9] != 6 || be.Uint16(ip[6:])&0x1fff != 0 {
			return false
		}
		tcpAt = 14 + ihl
	case len(frame) >= 14+40 && be.Uint16(frame[12:]) == 0x86dd:
		if frame[14]>>4 != 6 || frame[14+6] != 6 {
			return false
		}
		tcpAt = 14 + 40
	default:
		return false
	}
	if len(frame) < tcpAt+20 {
		return false
	}
	flags := frame[tcpAt+13]
	return be.Uint16(frame[tcpAt:]) == port && flags&0x02 != 0 && flags&0x10 != 0 && flags&0x04 == 0
}

// FuzzAccepted: on any frame Accepted says what synAck does, and never
// panics: in particular it takes no truncated TCP header for a SYN-ACK.
func FuzzAccepted(f *testing.F) {
	f.Add(tcpFrame(false, 80, tcpSYN|tcpACK), uint16(80))
	f.Add(tcpFrame(true, 80, tcpSYN|tcpACK), uint16(80))
	// A TCP header one byte short, and as short as still holds the flags.
	f.Add(tcpFrame(false, 80, tcpSYN|tcpACK)[:14+20+19], uint16(80))
	f.Add(tcpFrame(false, 80, tcpSYN|tcpACK)[:14+20+14], uint16(80))
	f.Add(tcpFrame(true, 80, tcpSYN|tcpACK)[:14+40+19], uint16(80))
	f.Fuzz(func(t *testing.T, frame []byte, port uint16) {
		if got, want := Accepted(frame, port), synAck(frame, port); got != want {
			t.Errorf("Accepted(% x, %d) = %v, want %v", frame, port, got, want)
		}
	})
}
