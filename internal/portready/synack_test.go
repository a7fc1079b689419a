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

func FuzzAccepted(f *testing.F) {
	f.Add(tcpFrame(false, 80, tcpSYN|tcpACK), uint16(80))
	f.Add(tcpFrame(true, 80, tcpSYN|tcpACK), uint16(80))
	f.Fuzz(func(t *testing.T, frame []byte, port uint16) {
		Accepted(frame, port) // must not panic
	})
}
