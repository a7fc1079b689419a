package main

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// TestLateBackendLinkNotify: a restored VM's shared network, joined after
// the device asked for link notices, passes the device's function on to
// the network's backend, whether it was set before the join (as the
// device does, from New) or after: the network lost after the join is
// told (the link down), and nothing is told before. The function may call
// back into the backend: it is called holding none of its locks.
func TestLateBackendLinkNotify(t *testing.T) {
	for _, tt := range []struct {
		name      string
		afterJoin bool
	}{
		{"set before the join", false},
		{"set after the join", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(testsock.Dir(t), "n.sock")
			h, err := netback.NewHub(netback.HubConfig{Socket: sock, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			l := newLateBackend(netConfig{Spec: "user:" + sock, MAC: net.HardwareAddr{0x52, 0x54, 0x00, 0x1a, 0x7e, 0x01}})
			defer l.Close()
			events := make(chan bool, 10)
			notify := func(up bool) {
				l.backend() // takes l.mu
				events <- up
			}
			if !tt.afterJoin {
				l.SetLinkNotify(notify)
			}
			if _, err := l.join(); err != nil {
				t.Fatal(err)
			}
			if tt.afterJoin {
				l.SetLinkNotify(notify)
			}
			select {
			case up := <-events:
				t.Fatalf("told up=%v before the link changed", up)
			default:
			}
			h.Close() // the network lost
			select {
			case up := <-events:
				if up {
					t.Fatal("told the link up, want down")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the network's loss not told within 5s")
			}
		})
	}
}
