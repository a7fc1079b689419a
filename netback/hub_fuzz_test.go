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
		p := &hubPort{mac: mac, addr: netip.MustParseAddr("10.0.2.15")}
		buf := make([]byte, smallFrame)
		for {
			frame, err := readFramed(r, buf)
			if err != nil {
				return
			}
			if len(frame) < EthernetHeaderSize || len(frame) > MaxFrameSize {
				t.Fatalf("read a %d-byte frame", len(frame))
			}
			if p.allowed(frame) && !bytes.Equal(frame[6:12], mac) {
				t.Fatalf("allowed a frame from %x", frame[6:12])
			}
			buf = frame[:cap(frame)]
		}
	})
}
