package netback_test

import (
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
)

// A shared network's backend tells the device its link went down when
// the connection to the network is lost, and up once it has rejoined, so
// that the guest sees its carrier drop and return (its DHCP client then
// asks again for its lease, which may have changed). Before, the link
// said up throughout.
func TestJoinedLinkNotify(t *testing.T) {
	var _ vnet.LinkBackend = (*netback.Joined)(nil)
	h := startHub(t, testsock.Dir(t))
	mac := testMAC(1)
	j, err := netback.Join(h.Socket(), mac, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	events := make(chan bool, 10)
	j.SetLinkNotify(func(up bool) { events <- up })
	var key [6]byte
	copy(key[:], mac)
	if !netback.HubDropVM(h, key) {
		t.Fatal("no such VM")
	}
	for _, want := range []bool{false, true} {
		select {
		case up := <-events:
			if up != want {
				t.Fatalf("link up %v, want %v", up, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no link change to up=%v within 5s", want)
		}
	}
	if j.Connects() != 2 {
		t.Errorf("%d connects, want 2", j.Connects())
	}
	select {
	case up := <-events:
		t.Errorf("a further link change, up=%v", up)
	case <-time.After(50 * time.Millisecond):
	}
}
