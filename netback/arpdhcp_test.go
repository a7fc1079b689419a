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

// isARPReply matches an Ethernet frame carrying an ARP reply.
func isARPReply(f []byte) bool {
	return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2
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
		f := readUntil(t, u, "ARP reply for "+target.String(), isARPReply)
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

// discoverOffer broadcasts a DHCP DISCOVER from guestMAC and returns it
// with the frame that answers it (UDP to port 68).
func discoverOffer(t *testing.T, u *netback.User, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, []byte) {
	t.Helper()
	disc, err := dhcpv4.NewDiscovery(guestMAC, mods...)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.WriteFrame(udpBroadcast(guestMAC, 68, 67, disc.ToBytes())); err != nil {
		t.Fatal(err)
	}
	return disc, readUntil(t, u, "DHCP offer", func(f []byte) bool {
		return len(f) > 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17 &&
			binary.BigEndian.Uint16(f[36:]) == 68
	})
}

func TestUserAnswersDHCP(t *testing.T) {
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	disc, f := discoverOffer(t, u)
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
		{"DNS", ipsString(offer.DNS()), netback.UserDNS.String()},
		{"lease time", offer.IPAddressLeaseTime(0), time.Hour},
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

// dhcpReply sends msg from mac, then a DISCOVER from the guest as a probe,
// and returns the server's reply to msg, or nil when the first reply is the
// probe's: the server answers in order, so msg got none.
func dhcpReply(t *testing.T, u *netback.User, mac net.HardwareAddr, msg *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	probe, err := dhcpv4.NewDiscovery(guestMAC)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		mac net.HardwareAddr
		d   *dhcpv4.DHCPv4
	}{{mac, msg}, {guestMAC, probe}} {
		if err := u.WriteFrame(udpBroadcast(m.mac, 68, 67, m.d.ToBytes())); err != nil {
			t.Fatal(err)
		}
	}
	var reply *dhcpv4.DHCPv4
	readUntil(t, u, "DHCP reply", func(f []byte) bool {
		if len(f) <= 42 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 || binary.BigEndian.Uint16(f[36:]) != 68 {
			return false
		}
		d, err := dhcpv4.FromBytes(f[42:])
		if err != nil {
			return false
		}
		switch d.TransactionID {
		case msg.TransactionID:
			reply = d
			return true
		case probe.TransactionID:
			return true
		}
		return false
	})
	return reply
}

func TestUserDHCPExchanges(t *testing.T) {
	ip := func(s string) net.IP { return net.ParseIP(s).To4() }
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 7}
	request := func(mods ...dhcpv4.Modifier) []dhcpv4.Modifier {
		return append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, mods...)
	}
	cases := []struct {
		name string
		mac  net.HardwareAddr
		mods []dhcpv4.Modifier
		// want is the reply's type and address; MessageTypeNone for none.
		want     dhcpv4.MessageType
		wantAddr string
	}{
		{"selecting", guestMAC, request(dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.2.2"))), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.2.15")))),
			dhcpv4.MessageTypeAck, "10.0.2.15"},
		{"init-reboot", guestMAC, request(dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.2.15")))),
			dhcpv4.MessageTypeAck, "10.0.2.15"},
		{"renewing", guestMAC, request(dhcpv4.WithClientIP(ip("10.0.2.15"))),
			dhcpv4.MessageTypeAck, "10.0.2.15"},
		{"wrong address", guestMAC, request(dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.2.99")))),
			dhcpv4.MessageTypeNak, "0.0.0.0"},
		{"another server", guestMAC, request(dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.2.99"))), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.0.2.15")))),
			dhcpv4.MessageTypeNone, ""},
		{"other MAC", other, []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover)},
			dhcpv4.MessageTypeOffer, "10.0.2.4"},
		{"release", guestMAC, []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(ip("10.0.2.15"))},
			dhcpv4.MessageTypeNone, ""},
		{"inform", guestMAC, []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(ip("10.0.2.15"))},
			dhcpv4.MessageTypeNone, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := netback.NewUser(guestMAC, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			msg, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(c.mac), dhcpv4.WithBroadcast(true)}, c.mods...)...)
			if err != nil {
				t.Fatal(err)
			}
			r := dhcpReply(t, u, c.mac, msg)
			switch {
			case c.want == dhcpv4.MessageTypeNone && r != nil:
				t.Fatalf("got %s for %s, want no reply", r.MessageType(), msg.MessageType())
			case c.want == dhcpv4.MessageTypeNone:
				return
			case r == nil:
				t.Fatalf("no reply to %s, want %s", msg.MessageType(), c.want)
			}
			if r.MessageType() != c.want || r.YourIPAddr.String() != c.wantAddr {
				t.Errorf("reply %s giving %s, want %s giving %s", r.MessageType(), r.YourIPAddr, c.want, c.wantAddr)
			}
			if !bytes.Equal(r.ClientHWAddr, c.mac) || r.ServerIdentifier().String() != "10.0.2.2" {
				t.Errorf("reply to %s from server %s, want to %s from 10.0.2.2", r.ClientHWAddr, r.ServerIdentifier(), c.mac)
			}
			if c.want != dhcpv4.MessageTypeNak &&
				(ipsString(r.Router()) != "10.0.2.2" || ipsString(r.DNS()) != "10.0.2.3" || net.IP(r.SubnetMask()).String() != "255.255.255.0") {
				t.Errorf("reply options router %v, DNS %v, mask %v; want 10.0.2.2, 10.0.2.3, 255.255.255.0", r.Router(), r.DNS(), r.SubnetMask())
			}
		})
	}
}

// The gateway answers ARP for its own addresses only: in promiscuous mode
// its stack would also claim the guest's address (failing the guest's
// duplicate address check) and any other.
func TestUserARPOnlyForGateway(t *testing.T) {
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, target := range []netip.Addr{netback.UserGuest, netip.MustParseAddr("10.0.2.99"), netback.UserGateway} {
		if err := u.WriteFrame(arpRequest(guestMAC, netback.UserGuest, target)); err != nil {
			t.Fatal(err)
		}
	}
	f := readUntil(t, u, "ARP reply", isARPReply)
	if g4 := netback.UserGateway.As4(); !bytes.Equal(f[28:32], g4[:]) {
		t.Fatalf("first ARP reply claims %v, want only the gateway %s answered", net.IP(f[28:32]), netback.UserGateway)
	}
}

// isEchoReply matches an Ethernet frame carrying an ICMP echo reply.
func isEchoReply(f []byte) bool {
	return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 1 && f[14+int(f[14]&0xf)*4] == 0
}

// The gateway answers ping for its own addresses only: in promiscuous
// mode its stack would answer for any (the cloud metadata address, the
// Internet with the host offline), though the host relays no ICMP.
func TestUserPingOnlyGateway(t *testing.T) {
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// The gateway learns the guest's MAC from its ARP request.
	if err := u.WriteFrame(arpRequest(guestMAC, netback.UserGuest, netback.UserGateway)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, u, "ARP reply", isARPReply)
	for _, own := range []netip.Addr{netback.UserGateway, netback.UserDNS} {
		others := []string{"1.2.3.4", "169.254.169.254", "8.8.8.8", "10.0.2.99", "127.0.0.1"}
		for i, a := range others {
			if err := u.WriteFrame(icmpEcho(guestMAC, netback.UserGuest, netip.MustParseAddr(a), 7, uint16(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := u.WriteFrame(icmpEcho(guestMAC, netback.UserGuest, own, 7, 99)); err != nil {
			t.Fatal(err)
		}
		f := readUntil(t, u, "echo reply from "+own.String(), isEchoReply)
		if o4 := own.As4(); !bytes.Equal(f[26:30], o4[:]) || binary.BigEndian.Uint16(f[40:]) != 99 {
			t.Errorf("first echo reply is from %v (seq %d), want only %s (seq 99) to answer, not any of %v",
				net.IP(f[26:30]), binary.BigEndian.Uint16(f[40:]), own, others)
		}
	}
}
