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
// told (the link down), and nothing is told before. That the function is
// called holding none of lateBackend's locks is
// TestLateBackendLinkNotifyUnlocked's.
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
			case <-time.After(20 * time.Second):
				t.Fatal("the network's loss not told within 20s")
			}
		})
	}
}

// eagerLink is a joined network whose link is down already: its
// SetLinkNotify tells the function so at once, from the caller's
// goroutine, as a network lost between the join and the hand-off does.
type eagerLink struct{}

func (eagerLink) ReadFrame([]byte) (int, error) { return 0, net.ErrClosed }
func (eagerLink) WriteFrame([]byte) error       { return nil }
func (eagerLink) Close() error                  { return nil }
func (eagerLink) SetLinkNotify(notify func(up bool)) {
	notify(false)
}

// TestLateBackendLinkNotifyUnlocked: the link function is handed to the
// joined network holding none of lateBackend's locks, by the join and by
// a SetLinkNotify after it: a network that calls it at once (its link
// down already) reaches the device, whose function may take them (here
// l.mu). Handed over under l.mu, the join deadlocked, which
// TestLateBackendLinkNotify's network, telling its loss later, did not
// show.
func TestLateBackendLinkNotifyUnlocked(t *testing.T) {
	for _, tt := range []struct {
		name      string
		afterJoin bool
	}{
		{"set before the join", false},
		{"set after the join", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLateBackend(netConfig{Spec: "user:stub"})
			l.open = func(netConfig) (netback.Backend, error) { return eagerLink{}, nil }
			events := make(chan bool, 10)
			notify := func(up bool) {
				l.backend() // takes l.mu
				events <- up
			}
			done := make(chan error, 1)
			go func() {
				if !tt.afterJoin {
					l.SetLinkNotify(notify)
				}
				_, err := l.join()
				if tt.afterJoin {
					l.SetLinkNotify(notify)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				// l.mu is held for good: no Close.
				t.Fatal("join and SetLinkNotify did not return within 20s: the link function was handed over holding l.mu")
			}
			defer l.Close()
			select {
			case up := <-events:
				if up {
					t.Fatal("told the link up, want down")
				}
			default:
				t.Fatal("the network's link down not told")
			}
		})
	}
}
