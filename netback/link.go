package netback

import (
	"errors"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gatewayLink is the gateway stack's Ethernet NIC: frames the stack sends
// go to out (the queue towards the only guest of a User, or a Hub's
// switch), and frames for the gateway are handed to the stack by run.
type gatewayLink struct {
	out frameSink
	// answers holds the addresses the gateway may claim in ARP replies
	// and answer ping for. In promiscuous mode the stack would answer
	// ARP for any address, the guest's own included (breaking its
	// duplicate address detection), and ping too (foreignEchoReply).
	answers map[tcpip.Address]bool

	mu         sync.RWMutex
	mac        tcpip.LinkAddress
	mtu        uint32
	dispatcher stack.NetworkDispatcher
}

var _ stack.LinkEndpoint = (*gatewayLink)(nil)

// frameSink takes the gateway's frames, each given as the parts of a
// packet, without keeping them and without blocking (a frame that cannot
// be taken is dropped, as on a wire).
type frameSink interface {
	pushParts(parts [][]byte)
}

func newGatewayLink(mac tcpip.LinkAddress, out frameSink, answers ...tcpip.Address) *gatewayLink {
	l := &gatewayLink{out: out, mac: mac, mtu: MTU, answers: map[tcpip.Address]bool{}}
	for _, a := range answers {
		l.answers[a] = true
	}
	return l
}

// run hands the stack each frame from the guest addressed to the gateway
// or broadcast (others have no receiver on this segment), until the queue
// closes. One goroutine runs it, so frames arrive in the guest's order.
func (l *gatewayLink) run(fromGuest *frameQueue) {
	for {
		f, err := fromGuest.popFrame()
		if errors.Is(err, ErrClosed) {
			return
		}
		l.deliver(f)
		releaseFrame(f)
	}
}

// deliver passes one Ethernet frame (at least a header long: WriteFrame
// checks) to the stack.
func (l *gatewayLink) deliver(frame []byte) {
	eth := header.Ethernet(frame)
	// The lock is not held while the stack runs: its replies come back
	// through writePacket, which takes it again.
	l.mu.RLock()
	mac, d := l.mac, l.dispatcher
	l.mu.RUnlock()
	if dst := eth.DestinationAddress(); (dst != mac && dst != header.EthernetBroadcastAddress) || d == nil {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithData(frame[header.EthernetMinimumSize:]),
	})
	d.DeliverNetworkPacket(eth.Type(), pkt)
	pkt.DecRef()
}

// WritePackets implements stack.LinkWriter: each packet gets its Ethernet
// header and goes to the guest's queue, dropped when that is full.
func (l *gatewayLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		l.writePacket(pkt)
		n++
	}
	return n, nil
}

func (l *gatewayLink) writePacket(pkt *stack.PacketBuffer) {
	src := l.LinkAddress()
	if r := pkt.EgressRoute; r.LocalLinkAddress != "" {
		src = r.LocalLinkAddress
	}
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		Type:    pkt.NetworkProtocolNumber,
		SrcAddr: src,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
	})
	parts := pkt.AsSlices()
	switch pkt.NetworkProtocolNumber {
	case header.ARPProtocolNumber:
		a := header.ARP(pkt.NetworkHeader().Slice())
		if a.IsValid() && a.Op() == header.ARPReply && !l.answers[tcpip.AddrFromSlice(a.ProtocolAddressSender())] {
			return
		}
	case header.IPv4ProtocolNumber:
		if l.foreignEchoReply(parts) {
			return
		}
	}
	l.out.pushParts(parts)
}

// foreignEchoReply reports whether parts (an Ethernet frame) is an ICMP
// echo reply from an address that is not the gateway's own. In
// promiscuous mode the stack answers ping for any address it is sent to,
// but no ICMP is relayed to the host: a reply from elsewhere would say a
// host (or the cloud's metadata service) is reachable when it may not be.
func (l *gatewayLink) foreignEchoReply(parts [][]byte) bool {
	var hdr [header.EthernetMinimumSize + 60 + 1]byte // Ethernet, longest IPv4 header, ICMP type
	n := 0
	for _, p := range parts {
		n += copy(hdr[n:], p)
		if n == len(hdr) {
			break
		}
	}
	ip := header.IPv4(hdr[header.EthernetMinimumSize:n])
	if len(ip) < header.IPv4MinimumSize || ip.TransportProtocol() != header.ICMPv4ProtocolNumber ||
		ip.FragmentOffset() != 0 || len(ip) <= int(ip.HeaderLength()) {
		return false
	}
	return header.ICMPv4Type(ip[ip.HeaderLength()]) == header.ICMPv4EchoReply && !l.answers[ip.SourceAddress()]
}

// MTU implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) MTU() uint32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mtu
}

// SetMTU implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) SetMTU(mtu uint32) {
	l.mu.Lock()
	l.mtu = mtu
	l.mu.Unlock()
}

// MaxHeaderLength implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) LinkAddress() tcpip.LinkAddress {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mac
}

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) SetLinkAddress(mac tcpip.LinkAddress) {
	l.mu.Lock()
	l.mac = mac
	l.mu.Unlock()
}

// Capabilities implements stack.NetworkLinkEndpoint: the stack resolves
// the guest's address with ARP, and skips verifying checksums of frames
// that never crossed a wire.
func (l *gatewayLink) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
}

// Attach implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	l.dispatcher = d
	l.mu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher != nil
}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (l *gatewayLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.NetworkLinkEndpoint; writePacket adds it.
func (l *gatewayLink) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint; deliver strips it.
func (l *gatewayLink) ParseHeader(*stack.PacketBuffer) bool { return true }

// Wait, Close and SetOnCloseAction implement stack.NetworkLinkEndpoint:
// the link owns no goroutine or resource; User.Close stops run.
func (l *gatewayLink) Wait()                   {}
func (l *gatewayLink) Close()                  {}
func (l *gatewayLink) SetOnCloseAction(func()) {}
