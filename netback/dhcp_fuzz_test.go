package netback

import (
	"bytes"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzDHCPReply feeds the DHCP server any datagram a guest could send: it
// must not panic, and any reply must be an OFFER, ACK or NAK to the same
// client and transaction, from the gateway.
func FuzzDHCPReply(f *testing.F) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}
	for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease} {
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(typ),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(UserGuest.AsSlice()))))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.ToBytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		d := &dhcpServer{lease: newLeaseTable(mac).lease}
		r := d.reply(req)
		if r == nil {
			return
		}
		switch r.MessageType() {
		case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak:
		default:
			t.Fatalf("reply of type %s to %s", r.MessageType(), req.MessageType())
		}
		if r.TransactionID != req.TransactionID || !bytes.Equal(r.ClientHWAddr, req.ClientHWAddr) ||
			r.OpCode != dhcpv4.OpcodeBootReply || !r.ServerIdentifier().Equal(net.IP(UserGateway.AsSlice())) {
			t.Fatalf("reply %v does not answer request %v from the gateway", r, req)
		}
		if _, err := dhcpv4.FromBytes(r.ToBytes()); err != nil {
			t.Fatalf("reply does not parse back: %v", err)
		}
	})
}
