package netback_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/smolvmm/smolvmm/netback"
)

// readUntil reads frames from b until match accepts one or time runs out.
func readUntil(t *testing.T, b netback.Backend, what string, match func([]byte) bool) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, netback.MaxFrameSize)
		for {
			n, err := b.ReadFrame(buf)
			if err != nil {
				close(got)
				return
			}
			if match(buf[:n]) {
				got <- append([]byte(nil), buf[:n]...)
				return
			}
		}
	}()
	select {
	case f, ok := <-got:
		if !ok {
			t.Fatalf("backend closed while waiting for %s", what)
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	return nil
}

func TestUserAnswersARP(t *testing.T) {
	for _, target := range []netip.Addr{netback.UserGateway, netback.UserDNS} {
		u, err := netback.NewUser(guestMAC, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.WriteFrame(arpRequest(guestMAC, netback.UserGuest, target)); err != nil {
			t.Fatal(err)
		}
		f := readUntil(t, u, "ARP reply for "+target.String(), func(f []byte) bool {
			return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2
		})
		u.Close()
		t4, g4 := target.As4(), netback.UserGuest.As4()
		switch {
		case !bytes.Equal(f[0:6], guestMAC):
			t.Errorf("ARP reply for %s sent to %x, want the guest %s", target, f[0:6], guestMAC)
		case !bytes.Equal(f[22:28], netback.UserGatewayMAC):
			t.Errorf("ARP reply says %s is at %x, want %s", target, f[22:28], netback.UserGatewayMAC)
		case !bytes.Equal(f[28:32], t4[:]) || !bytes.Equal(f[38:42], g4[:]):
			t.Errorf("ARP reply addresses %v -> %v, want %s -> %s", f[28:32], f[38:42], target, netback.UserGuest)
		}
	}
}

func TestUserAnswersDHCP(t *testing.T) {
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	disc, err := dhcpv4.NewDiscovery(guestMAC)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.WriteFrame(udpBroadcast(guestMAC, 68, 67, disc.ToBytes())); err != nil {
		t.Fatal(err)
	}
	f := readUntil(t, u, "DHCP offer", func(f []byte) bool {
		return len(f) > 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17 &&
			binary.BigEndian.Uint16(f[36:]) == 68
	})
	offer, err := dhcpv4.FromBytes(f[42:])
	if err != nil {
		t.Fatalf("DHCP reply does not parse: %v", err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"message type", offer.MessageType(), dhcpv4.MessageTypeOffer},
		{"transaction", offer.TransactionID, disc.TransactionID},
		{"your address", offer.YourIPAddr.String(), netback.UserGuest.String()},
		{"router", ipsString(offer.Router()), netback.UserGateway.String()},
		{"netmask", net.IP(offer.SubnetMask()).String(), "255.255.255.0"},
		{"server", offer.ServerIdentifier().String(), netback.UserGateway.String()},
		{"DNS", ipsString(offer.DNS()), netback.UserGateway.String()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("DHCP offer %s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func ipsString(ips []net.IP) string {
	if len(ips) != 1 {
		return "?"
	}
	return ips[0].String()
}
