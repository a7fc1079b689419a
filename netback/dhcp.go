package netback

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// DHCP ports and the lease time offered (clients renew at half of it).
const (
	dhcpServerPort = 67
	dhcpClientPort = 68
	dhcpLeaseTime  = time.Hour
)

// dhcpServer answers DHCPv4 on the gateway: OFFER for DISCOVER, ACK for a
// REQUEST of the client's lease, NAK for a REQUEST of any other address.
// Requests meant for another server, and RELEASE, DECLINE and INFORM, get
// no answer (leases are fixed, so there is nothing to release).
type dhcpServer struct {
	conn  *gonet.UDPConn
	lease leaseFunc
}

// leaseFunc gives the address leased to a MAC; false for none.
type leaseFunc func(mac net.HardwareAddr) (netip.Addr, bool)

// newDHCPServer opens port 67 on the gateway NIC. The socket is bound to
// no address, since clients without one broadcast, and may broadcast its
// replies to them.
func newDHCPServer(s *stack.Stack, lease leaseFunc) (*dhcpServer, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("DHCP socket: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: dhcpServerPort}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("DHCP socket: bind port %d: %s", dhcpServerPort, terr)
	}
	return &dhcpServer{conn: gonet.NewUDPConn(&wq, ep), lease: lease}, nil
}

// serve answers requests until the socket closes.
func (d *dhcpServer) serve() error {
	buf := make([]byte, 1500)
	for {
		n, peer, err := d.conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		reply := d.reply(req)
		if reply == nil {
			continue
		}
		to := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpClientPort}
		if p, ok := peer.(*net.UDPAddr); ok && !p.IP.IsUnspecified() && reply.MessageType() != dhcpv4.MessageTypeNak && p.IP.Equal(reply.YourIPAddr) {
			// A renewing client, which has its address; one asking
			// from another (the hub lets a VM's DHCP requests through
			// from any) is answered by broadcast, not at an address
			// that may be another VM's.
			to.IP = p.IP
		}
		// A failed send is the client's loss, as on a wire: it retries.
		_, _ = d.conn.WriteTo(reply.ToBytes(), to)
	}
}

// reply builds the answer to req, or returns nil for none.
func (d *dhcpServer) reply(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	if req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) != 6 {
		return nil
	}
	server := net.IP(UserGateway.AsSlice())
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if id := req.ServerIdentifier(); id != nil && !id.Equal(server) {
			return nil // the client chose another server's offer
		}
		typ = dhcpv4.MessageTypeAck
	default:
		return nil
	}
	addr, ok := d.lease(req.ClientHWAddr)
	if !ok {
		return nil
	}
	yours := net.IP(addr.AsSlice())
	if typ == dhcpv4.MessageTypeAck {
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr // renewing or rebinding
		}
		if !want.Equal(yours) {
			return d.build(req, dhcpv4.MessageTypeNak, nil)
		}
	}
	return d.build(req, typ, yours,
		dhcpv4.OptIPAddressLeaseTime(dhcpLeaseTime),
		dhcpv4.OptSubnetMask(net.CIDRMask(UserSubnet.Bits(), 32)),
		dhcpv4.OptRouter(server),
		dhcpv4.OptDNS(net.IP(UserDNS.AsSlice())),
		dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(MTU)},
	)
}

// build makes a reply of type typ giving the client address yours.
func (d *dhcpServer) build(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, yours net.IP, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	r, err := dhcpv4.NewReplyFromRequest(req)
	if err != nil {
		return nil
	}
	if yours != nil {
		r.YourIPAddr = yours
	}
	if typ == dhcpv4.MessageTypeAck {
		r.ClientIPAddr = req.ClientIPAddr
	}
	r.UpdateOption(dhcpv4.OptMessageType(typ))
	r.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(UserGateway.AsSlice())))
	for _, o := range opts {
		r.UpdateOption(o)
	}
	return r
}
