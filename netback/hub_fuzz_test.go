package netback

import (
	"bufio"
	"bytes"
	"net/netip"
	"testing"
)

// FuzzHubInput feeds arbitrary bytes to what a hub parses of a VM: the
// handshake (header, JSON, MAC, forwards), then the frame stream and the
// source checks of each frame. Nothing may panic, a parsed hello is
// within the bounds, and a frame read is within the frame limits.
func FuzzHubInput(f *testing.F) {
	f.Add([]byte("SMVN\x01\x00\x00\x1b{\"mac\":\"52:54:00:00:00:01\"}\x00\x00\x00\x0e\xff\xff\xff\xff\xff\xff\x52\x54\x00\x00\x00\x01\x08\x06"))
	f.Add([]byte("SMVN\x01\x00\x00\x37{\"mac\":\"52:54:00:00:00:01\",\"forwards\":[\"udp:[::1]:53:53\"]}\xff\xff\xff\xff"))
	f.Add([]byte("SMVN\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var h hubHello
		ver, _, err := readHubMessage(r, &h)
		if err != nil || ver != hubVersion {
			return
		}
		mac, fwds, err := parseHello(h)
		if err != nil {
			return
		}
		if len(mac) != 6 || mac[0]&1 != 0 || len(fwds) > hubMaxForwards {
			t.Fatalf("accepted MAC %s with %d forwards", mac, len(fwds))
		}
		p := &hubPort{h: &Hub{leases: &leaseStore{}}, mac: mac, addr: netip.MustParseAddr("10.0.2.15")}
		buf := make([]byte, smallFrame)
		for {
			frame, err := readFramed(r, buf)
			if err != nil {
				return
			}
			if len(frame) < EthernetHeaderSize || len(frame) > MaxFrameSize {
				t.Fatalf("read a %d-byte frame", len(frame))
			}
			if p.judge(frame) != hubDrop && !bytes.Equal(frame[6:12], mac) {
				t.Fatalf("allowed a frame from %x", frame[6:12])
			}
			buf = frame[:cap(frame)]
		}
	})
}

// FuzzHubFilter feeds arbitrary frames to the hub's filter of a VM's
// frames and to its reading of the gateway's DHCP replies: nothing may
// panic, and no frame from another MAC or longer than hubMaxFrame passes.
func FuzzHubFilter(f *testing.F) {
	key := [6]byte{0x52, 0x54, 0, 0xab, 0, 2}
	ll := linkLocal(key).As16()
	ipv6 := append([]byte{0x33, 0x33, 0, 0, 0, 1, 0x52, 0x54, 0, 0xab, 0, 2, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 0, 255}, ll[:]...)
	ipv6 = append(ipv6, make([]byte, 16)...)
	f.Add(append(bytes.Clone(ipv6), 0, 0, 1, 4, 0, 0, 0, 0, 136, 0, 0, 0, 0x20, 0, 0, 0))
	ipv6[20] = 58
	ns := append(append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, ll[:]...), 1, 1, 0x52, 0x54, 0, 0xab, 0, 2)
	f.Add(append(bytes.Clone(ipv6), ns...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0xab, 0, 2, 8, 6, 0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0xab, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 2, 16})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0xab, 0, 2, 8, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 68, 0, 67, 0, 0, 0, 0, 1, 1, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < EthernetHeaderSize {
			return
		}
		p := &hubPort{h: &Hub{leases: &leaseStore{}}, mac: key[:], key: key, addr: netip.MustParseAddr("10.0.2.16"), ll: linkLocal(key)}
		if v := p.judge(b); v != hubDrop && (len(b) > hubMaxFrame || !bytes.Equal(b[6:12], key[:])) {
			t.Fatalf("allowed a %d-byte frame from %x", len(b), b[6:12])
		} else if v == hubAnswerARP {
			gatewayARPReply(b)
		}
		dhcpReplyTo(b)
	})
}
