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
		case <-time.After(20 * time.Second):
			t.Fatalf("no link change to up=%v within 20s", want)
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

// The backend tells the link's changes holding none of its locks
// (virtio/net.LinkBackend's contract), in order: while one notice is being
// told (the device's handler still running), SetLinkNotify returns at
// once, and the new function is told the link down, then up, in that
// order. Before, the notices were told under the backend's link lock, so
// SetLinkNotify waited for the handler, and it called notify on its
// caller's goroutine with that lock held.
func TestJoinedLinkNotifyOutsideLocks(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	mac := testMAC(2)
	j, err := netback.Join(h.Socket(), mac, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	first, release := make(chan bool, 10), make(chan struct{})
	j.SetLinkNotify(func(up bool) {
		first <- up
		<-release
	})
	var key [6]byte
	copy(key[:], mac)
	if !netback.HubDropVM(h, key) {
		t.Fatal("no such VM")
	}
	select {
	case up := <-first:
		if up {
			t.Fatal("link up, want down first")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no link change within 20s")
	}
	// The first handler is still running.
	second := make(chan bool, 10)
	set := make(chan struct{})
	go func() {
		j.SetLinkNotify(func(up bool) { second <- up })
		close(set)
	}()
	select {
	case <-set:
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("SetLinkNotify waited for the handler of an earlier notice: it holds the backend's lock")
	}
	close(release)
	for _, want := range []bool{false, true} {
		select {
		case up := <-second:
			if up != want {
				t.Fatalf("the second function told up=%v, want %v", up, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the second function not told up=%v within 20s", want)
		}
	}
	select {
	case up := <-first:
		t.Errorf("the replaced function told up=%v", up)
	default:
	}
}
