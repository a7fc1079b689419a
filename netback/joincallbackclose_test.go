package netback_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
)

// A shared network backend's callbacks (JoinOptions' Logf, Notef and
// Lasting, SetLinkNotify's function) may Close it: "stop the VM when its
// network is lost" is a natural Notef, and a machine's Close reaches the
// backend's through its network card (the card's Close case). Close
// called from one returns
// (the callbacks run on the goroutine Close otherwise waits for), the
// backend stops, and one called after a rejoin still waits for the hub
// to take the VM out. Before, each of these hung for ever in Close's wait
// for its own goroutine.
func TestJoinedCloseFromCallback(t *testing.T) {
	for i, tc := range []struct {
		name string
		// when says whether a callback's call is the one to close from:
		// what Logf or Notef was told, the link's state, or "lasting".
		when func(kind, msg string, up bool) bool
		// hubGone stops the hub instead of dropping the VM, so that
		// rejoining fails (and Lasting is asked).
		hubGone bool
		// rejoined: Close is called once the VM rejoined, so its return
		// must mean the hub took the VM out.
		rejoined bool
		// card: the backend is a virtio-net card's, whose Close (as a
		// machine's Close makes it) the callback calls.
		card bool
	}{
		{name: "Notef lost", when: func(kind, msg string, _ bool) bool { return kind == "notef" && strings.Contains(msg, "lost") }},
		{name: "Logf lost", when: func(kind, msg string, _ bool) bool { return kind == "logf" && strings.Contains(msg, "lost") }},
		{name: "link down", when: func(kind, _ string, up bool) bool { return kind == "link" && !up }},
		{name: "Notef rejoined", when: func(kind, msg string, _ bool) bool { return kind == "notef" && strings.HasPrefix(msg, "rejoined") }, rejoined: true},
		{name: "Logf rejoined", when: func(kind, msg string, _ bool) bool { return kind == "logf" && strings.HasPrefix(msg, "rejoined") }, rejoined: true},
		{name: "link up", when: func(kind, _ string, up bool) bool { return kind == "link" && up }, rejoined: true},
		{name: "Lasting", when: func(kind, _ string, _ bool) bool { return kind == "lasting" }, hubGone: true},
		{name: "card's Close from Notef", when: func(kind, msg string, _ bool) bool { return kind == "notef" && strings.Contains(msg, "lost") }, card: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHub(t, testsock.Dir(t))
			mac := testMAC(byte(20 + i))
			var j *netback.Joined
			var closeIt func() error
			ready := make(chan struct{})
			closed := make(chan struct{})
			var once sync.Once
			seen := func(kind, msg string, up bool) {
				<-ready
				if tc.when(kind, msg, up) {
					once.Do(func() {
						closeIt()
						close(closed)
					})
				}
			}
			opts := netback.JoinOptions{
				Logf: func(f string, a ...any) { seen("logf", fmt.Sprintf(f, a...), false) },
				Notef: func(f string, a ...any) {
					t.Logf("notef: "+f, a...)
					seen("notef", fmt.Sprintf(f, a...), false)
				},
				Lasting: func(error) bool { seen("lasting", "", false); return false },
			}
			var err error
			j, err = netback.JoinWith(h.Socket(), mac, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			closeIt = j.Close
			if tc.card {
				dev, err := vnet.New(j, mac)
				if err != nil {
					t.Fatal(err)
				}
				pd, err := virtio.NewPCIDevice(guestmem.New(make([]byte, 1<<20)), dev, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				dev.SetKick(pd.KickQueue)
				closeIt = pd.Close
			} else {
				j.SetLinkNotify(func(up bool) { seen("link", "", up) })
			}
			close(ready)
			var key [6]byte
			copy(key[:], mac)
			if tc.hubGone {
				h.Close()
			} else if !netback.HubDropVM(h, key) {
				t.Fatal("no such VM")
			}
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close called from the callback did not return within 10s")
			}
			if tc.rejoined {
				if n := h.Stats().VMs; n != 0 {
					t.Errorf("Close from the callback returned with %d VMs joined to the hub, want 0", n)
				}
			}
			// Close from elsewhere now returns too: the backend's
			// goroutine has ended.
			done := make(chan struct{})
			go func() { j.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("a second Close did not return within 10s")
			}
		})
	}
}
