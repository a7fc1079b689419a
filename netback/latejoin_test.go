package netback_test

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestLateBackendJoin: a LateBackend joins its shared network only at
// Join: before, the hub has no VM, the card no address and the snapshot
// record none; after, the hub has the VM and the record the address the
// hub leased it. Closed before the join, it joins nothing.
func TestLateBackendJoin(t *testing.T) {
	for _, tt := range []struct {
		name string
		join bool
	}{
		{"joined", true},
		{"closed before the join", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHub(t, testsock.Dir(t))
			spec := "user:" + h.Socket()
			opened := 0
			l := netback.NewLateBackend(func() (netback.Backend, error) {
				opened++
				return netback.Open(spec, nil, testMAC(1))
			})
			defer l.Close()
			record := netback.SnapshotNetwork(spec, l)
			if l.Backend() != nil || l.Addr().IsValid() {
				t.Fatalf("before the join: backend %v, address %v, want none", l.Backend(), l.Addr())
			}
			if n := record(); n.Kind != snapshot.NetShared || n.Name != h.Socket() || n.Addr.IsValid() {
				t.Fatalf("record before the join = %+v, want the shared network %s with no address", n, h.Socket())
			}
			if vms := h.Stats().VMs; vms != 0 {
				t.Fatalf("hub has %d VMs before the join, want 0", vms)
			}
			if !tt.join {
				l.Close()
				if _, err := l.Join(); !errors.Is(err, netback.ErrClosed) || !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Join after Close = %v, want ErrClosed", err)
				}
				if opened != 0 {
					t.Fatalf("Join after Close opened the network %d times, want 0", opened)
				}
				if _, err := l.ReadFrame(make([]byte, netback.MaxFrameSize)); !errors.Is(err, netback.ErrClosed) {
					t.Fatalf("ReadFrame after Close = %v, want ErrClosed", err)
				}
				if err := l.WriteFrame(make([]byte, 60)); !errors.Is(err, netback.ErrClosed) {
					t.Fatalf("WriteFrame after Close = %v, want ErrClosed", err)
				}
				if vms := h.Stats().VMs; vms != 0 {
					t.Fatalf("hub has %d VMs, want 0", vms)
				}
				return
			}
			b, err := l.Join()
			if err != nil {
				t.Fatal(err)
			}
			if b == nil || l.Backend() != b {
				t.Fatalf("Join's backend %v, Backend() %v, want the same", b, l.Backend())
			}
			a := l.Addr()
			if !a.Is4() || a.IsUnspecified() {
				t.Fatalf("address after the join = %v, want a leased IPv4 address", a)
			}
			if n := record(); n.Kind != snapshot.NetShared || n.Name != h.Socket() || n.Addr != a {
				t.Fatalf("record after the join = %+v, want the shared network %s at %v", n, h.Socket(), a)
			}
			if _, err := l.Join(); err == nil {
				t.Fatal("a second Join succeeded")
			}
			deadline := time.Now().Add(20 * time.Second)
			for h.Stats().VMs != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("hub has %d VMs after the join, want 1", h.Stats().VMs)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// closeCounter is a joined network that counts its Close calls.
type closeCounter struct{ closed int }

func (*closeCounter) ReadFrame([]byte) (int, error) { return 0, net.ErrClosed }
func (*closeCounter) WriteFrame([]byte) error       { return nil }
func (c *closeCounter) Close() error                { c.closed++; return nil }

// TestLateBackendClosedWhileJoining: a LateBackend closed while its
// network was being joined (the machine's Close, racing the join) closes
// the backend the join made and keeps none.
func TestLateBackendClosedWhileJoining(t *testing.T) {
	c := &closeCounter{}
	var l *netback.LateBackend
	l = netback.NewLateBackend(func() (netback.Backend, error) {
		l.Close()
		return c, nil
	})
	if _, err := l.Join(); !errors.Is(err, netback.ErrClosed) {
		t.Fatalf("Join = %v, want ErrClosed", err)
	}
	if c.closed != 1 || l.Backend() != nil {
		t.Fatalf("joined backend closed %d times, kept %v; want closed once, none kept", c.closed, l.Backend())
	}
}

// TestLateBackendOpenError: open's error is Join's, as is.
func TestLateBackendOpenError(t *testing.T) {
	want := errors.New("no such network")
	l := netback.NewLateBackend(func() (netback.Backend, error) { return nil, want })
	defer l.Close()
	if _, err := l.Join(); err != want {
		t.Fatalf("Join = %v, want %v", err, want)
	}
}

// TestLateBackendLinkNotify: a restored VM's shared network, joined after
// the device asked for link notices, passes the device's function on to
// the network's backend, whether it was set before the join (as the
// device does, from New) or after: the network lost after the join is
// told (the link down), and nothing is told before. That the function is
// called holding none of LateBackend's locks is
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
			l := netback.NewLateBackend(func() (netback.Backend, error) {
				return netback.Open("user:"+sock, nil, net.HardwareAddr{0x52, 0x54, 0x00, 0x1a, 0x7e, 0x01})
			})
			defer l.Close()
			events := make(chan bool, 10)
			notify := func(up bool) {
				l.Backend() // takes l's lock
				events <- up
			}
			if !tt.afterJoin {
				l.SetLinkNotify(notify)
			}
			if _, err := l.Join(); err != nil {
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
// joined network holding none of LateBackend's locks, by the join and by
// a SetLinkNotify after it: a network that calls it at once (its link
// down already) reaches the device, whose function may take them (here
// through Backend). Handed over under the lock, the join deadlocked,
// which TestLateBackendLinkNotify's network, telling its loss later, did
// not show.
func TestLateBackendLinkNotifyUnlocked(t *testing.T) {
	for _, tt := range []struct {
		name      string
		afterJoin bool
	}{
		{"set before the join", false},
		{"set after the join", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := netback.NewLateBackend(func() (netback.Backend, error) { return eagerLink{}, nil })
			events := make(chan bool, 10)
			notify := func(up bool) {
				l.Backend() // takes l's lock
				events <- up
			}
			done := make(chan error, 1)
			go func() {
				if !tt.afterJoin {
					l.SetLinkNotify(notify)
				}
				_, err := l.Join()
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
				// The lock is held for good: no Close.
				t.Fatal("Join and SetLinkNotify did not return within 20s: the link function was handed over holding the lock")
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

// TestNetworkRecord: what a snapshot records of each network spec, and
// that SnapshotNetwork records nothing of a card on no network it knows.
func TestNetworkRecord(t *testing.T) {
	abs, err := filepath.Abs("dir/net.sock")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec string
		want snapshot.Network
		ok   bool
	}{
		{"user", snapshot.Network{Kind: snapshot.NetUser, Addr: netback.UserGuest}, true},
		{"user:lab", snapshot.Network{Kind: snapshot.NetShared, Name: "lab"}, true},
		{"user:dir/net.sock", snapshot.Network{Kind: snapshot.NetShared, Name: abs}, true},
		{"user:/run/net.sock", snapshot.Network{Kind: snapshot.NetShared, Name: "/run/net.sock"}, true},
		{"tap:tap0", snapshot.Network{Kind: snapshot.NetTap, Name: "tap0"}, true},
		{"none", snapshot.Network{}, false},
		{"vde:x", snapshot.Network{}, false},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			got, ok := netback.NetworkRecord(tt.spec)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("NetworkRecord(%q) = %+v, %v; want %+v, %v", tt.spec, got, ok, tt.want, tt.ok)
			}
			f := netback.SnapshotNetwork(tt.spec, eagerLink{})
			if (f != nil) != tt.ok {
				t.Fatalf("SnapshotNetwork(%q) nil = %v, want %v", tt.spec, f == nil, !tt.ok)
			}
			if f != nil && f() != tt.want {
				t.Fatalf("SnapshotNetwork(%q)() = %+v, want %+v", tt.spec, f(), tt.want)
			}
		})
	}
}
