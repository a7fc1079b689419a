package netback_test

import (
	"encoding/binary"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/smolvmm/smolvmm/netback"
)

// TestDHCPReplyOnTheWire checks the OFFER as NetBSD's dhcpcd takes it off
// BPF: sent to the Ethernet broadcast address (dhcpcd does not set the
// BOOTP broadcast flag and has no address yet) from the gateway's MAC and
// 10.0.2.2:67, and with valid IPv4 header and UDP checksums (dhcpcd drops
// frames whose checksums do not verify; vioif offers no checksum offload).
func TestDHCPReplyOnTheWire(t *testing.T) {
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, f := discoverOffer(t, u, dhcpv4.WithBroadcast(false))
	if got := f[0:6]; string(got) != "\xff\xff\xff\xff\xff\xff" {
		t.Errorf("OFFER sent to %x, want the Ethernet broadcast address", got)
	}
	if got := f[6:12]; string(got) != string(netback.UserGatewayMAC) {
		t.Errorf("OFFER from %x, want the gateway's MAC %s", got, netback.UserGatewayMAC)
	}
	ip := f[14:]
	ihl := int(ip[0]&0xF) * 4
	if ip[0]>>4 != 4 || ihl < 20 {
		t.Fatalf("not an IPv4 header: % x", ip[:20])
	}
	if ipChecksum(ip[:ihl]) != 0 {
		t.Errorf("IPv4 header checksum does not verify: % x", ip[:ihl])
	}
	if src := ip[12:16]; string(src) != string(netback.UserGateway.AsSlice()) {
		t.Errorf("OFFER from IP %v, want %s", src, netback.UserGateway)
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	udp := ip[ihl:total]
	if sport := binary.BigEndian.Uint16(udp[0:]); sport != 67 {
		t.Errorf("OFFER from port %d, want 67", sport)
	}
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		t.Fatal("OFFER has no UDP checksum")
	}
	// The UDP checksum covers a pseudo-header of addresses, protocol and
	// length; a valid one sums (ones' complement) to all ones.
	pseudo := append(append(append([]byte(nil), ip[12:20]...), 0, 17), byte(len(udp)>>8), byte(len(udp)))
	sum := append(pseudo, udp...)
	if len(sum)%2 == 1 {
		sum = append(sum, 0)
	}
	if ipChecksum(sum) != 0 {
		t.Error("UDP checksum of the OFFER does not verify")
	}
}
