package netback_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A VM's broadcasts reach the other VMs within its flood limit: a burst,
// then none until the clock moves, and after an idle hour a burst again,
// no more. Beyond the limit they are counted (Limited) and still reach
// the gateway, so the VM's own DHCP goes on; its unicast to another VM
// and the other VMs' broadcasts are not limited.
func TestHubFloodLimit(t *testing.T) {
	clock := newTestClock(leaseT0)
	h := startHubClock(t, testsock.Dir(t), clock)
	victim := joinRaw(t, h, testMAC(1))
	flooder, err := netback.Join(h.Socket(), testMAC(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// 0x88b5 (local experimental): the gateway ignores it.
	flood := ethFrame(bcast, testMAC(2), 0x88b5, make([]byte, 46))
	marker := ethFrame(testMAC(1), testMAC(2), 0x88b5, append([]byte("marker"), make([]byte, 40)...))
	burst := netback.HubFloodBurst / (len(flood) + netback.HubFloodFrameCost)
	sent := 3 * burst
	round := func(when string) {
		t.Helper()
		for range sent {
			if err := flooder.WriteFrame(flood); err != nil {
				t.Fatal(err)
			}
		}
		// The hub switches one VM's frames in order: once the unicast
		// marker is through, so is every broadcast sent before it.
		if err := flooder.WriteFrame(marker); err != nil {
			t.Fatal(err)
		}
		got := 0
		for f := victim.recv(t); !bytes.Equal(f, marker); f = victim.recv(t) {
			if bytes.Equal(f, flood) {
				got++
			}
		}
		if got != burst {
			t.Errorf("%s: %d of %d broadcasts reached the other VM, want a burst of %d", when, got, sent, burst)
		}
	}
	round("at first")
	if s := h.Stats(); s.Limited != uint64(sent-burst) {
		t.Errorf("Limited = %d, want %d", s.Limited, sent-burst)
	}
	if o := dhcpOffer(t, flooder, testMAC(2)); o.YourIPAddr.String() != flooder.Addr().String() {
		t.Errorf("DHCP beyond the flood limit offered %s, want %s", o.YourIPAddr, flooder.Addr())
	}
	other := ethFrame(bcast, testMAC(1), 0x88b5, append([]byte("victim"), make([]byte, 40)...))
	victim.send(t, other)
	readUntil(t, flooder, "the other VM's broadcast", func(f []byte) bool { return bytes.Equal(f, other) })
	clock.set(leaseT0.Add(time.Hour))
	round("an hour later")
	if u := flooder.Stats().Unsent; u != 0 {
		t.Errorf("%d frames unsent", u)
	}
}
