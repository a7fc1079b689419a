package netback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A MAC's lease belongs to the user whose VM joined with it (for root's
// process that said its VM would run as another user, that user): a VM
// of another user but root is refused with that MAC, for good (a
// RefusedMACOwner, Permanent), and the lease stays, even across a
// restart. Before, another user allowed on the socket joined with
// root's VM's MAC while it was away, took its address, and root's VM was
// then refused as "connected already". A lease without a user (a file
// written before uid was kept) goes to the first user that joins.
func TestHubMACOwner(t *testing.T) {
	dir := testsock.Dir(t)
	sock := filepath.Join(dir, "n.sock")
	leases := filepath.Join(dir, "n.leases")
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	old := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 10}
	if err := os.WriteFile(leases, fmt.Appendf(nil, `{"version":1,"leases":[{"mac":%q,"addr":"10.0.2.40","seen":"2026-12-03T19:00:00Z"}]}`, old), 0o600); err != nil {
		t.Fatal(err)
	}
	var uid atomic.Int64 // the user of the next join
	start := func() *Hub {
		h, err := newHub(HubConfig{Socket: sock, Logf: t.Logf}, hubHooks{
			peerUID: func(net.Conn) (int, error) { return int(uid.Load()), nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := start()
	defer func() { h.Close() }()
	// In order: each join sees the users the joins before it recorded.
	steps := []struct {
		name    string
		uid     int
		runsAs  int
		mac     net.HardwareAddr
		restart bool   // the network restarts before the join
		refused string // what the refusal says; "" when let in
	}{
		{name: "root's VM", uid: 0, mac: mac},
		{name: "another user's VM, same MAC", uid: 1000, mac: mac, refused: "MAC 52:54:00:00:00:09 is leased (10.0.2.15) to the VMs of uid 0, and the VM's process runs as uid 1000"},
		{name: "after a restart, another user's VM", uid: 1000, mac: mac, restart: true, refused: "to the VMs of uid 0"},
		{name: "root's VM again", uid: 0, mac: mac},
		{name: "root's VM that drops to 1000", uid: 0, runsAs: 1000, mac: mac},
		{name: "then as 1000, after a restart", uid: 1000, mac: mac, restart: true},
		{name: "another user", uid: 2000, mac: mac, refused: "to the VMs of uid 1000, and the VM's process runs as uid 2000"},
		{name: "a lease of an older file: anyone first", uid: 2000, mac: old},
		{name: "then its user is recorded", uid: 1000, mac: old, refused: "MAC 52:54:00:00:00:0a is leased (10.0.2.40) to the VMs of uid 2000"},
		{name: "root takes any", uid: 0, mac: old},
	}
	for _, tt := range steps {
		if tt.restart {
			h.Close()
			h = start()
		}
		uid.Store(int64(tt.uid))
		j, err := JoinWith(sock, tt.mac, nil, JoinOptions{RunsAs: tt.runsAs})
		var re *RefusedError
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%s: %v, want it let in", tt.name, err)
		case tt.refused != "" && (!errors.As(err, &re) || re.Reason != RefusedMACOwner || !re.Permanent() || !strings.Contains(re.Message, tt.refused)):
			t.Errorf("%s: %v, want a lasting MAC owner refusal saying %q", tt.name, err, tt.refused)
		}
		if j != nil {
			j.Close()
			waitVMsGone(t, h)
		}
	}
}

// A MAC stays its user's when the pool runs out: its address goes to the
// newcomer, but its lease is kept without one, so that another user who
// fills the pool with new MACs still cannot take it, even across a
// restart, and its own user's VM gets an address again. Before, the
// evicted lease was deleted with its user: uid 2000 joined with 240 new
// MACs, then with uid 1000's MAC, which was then refused to uid 1000 for
// good.
func TestHubMACOwnerKeptPastFullPool(t *testing.T) {
	dir := testsock.Dir(t)
	sock := filepath.Join(dir, "n.sock")
	var uid, clock atomic.Int64 // the user of the next join; the seconds of the hub's clock
	start := func() *Hub {
		h, err := newHub(HubConfig{Socket: sock, Logf: t.Logf}, hubHooks{
			peerUID: func(net.Conn) (int, error) { return int(uid.Load()), nil },
			now:     func() time.Time { return time.Unix(clock.Add(1), 0) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := start()
	defer func() { h.Close() }()
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	join := func(u int, m net.HardwareAddr) (netip.Addr, error) {
		t.Helper()
		uid.Store(int64(u))
		j, err := JoinWith(sock, m, nil, JoinOptions{})
		if err != nil {
			return netip.Addr{}, err
		}
		a := j.Addr()
		j.Close()
		waitVMsGone(t, h)
		return a, nil
	}
	refusedTo := func(step string, err error, want string) {
		t.Helper()
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != RefusedMACOwner || !re.Permanent() || !strings.Contains(re.Message, want) {
			t.Errorf("%s: %v, want a lasting MAC owner refusal saying %q", step, err, want)
		}
	}
	if _, err := join(1000, mac); err != nil {
		t.Fatal(err)
	}
	for i := range poolSize() {
		if _, err := join(2000, net.HardwareAddr{0x52, 0x54, 0, 1, byte(i >> 8), byte(i)}); err != nil {
			t.Fatalf("uid 2000's MAC %d: %v", i, err)
		}
	}
	if _, ok := h.leases.lookup(mac); ok {
		t.Fatal("uid 1000's MAC kept its address after 240 newer MACs joined")
	}
	want := "MAC 52:54:00:00:00:09 belongs to the VMs of uid 1000 (its address went to another MAC when the pool ran out), and the VM's process runs as uid 2000"
	_, err := join(2000, mac)
	refusedTo("uid 2000 with uid 1000's MAC, its address gone", err, want)
	h.Close()
	h = start()
	_, err = join(2000, mac)
	refusedTo("the same after a restart", err, want)
	if a, err := join(1000, mac); err != nil || !a.IsValid() {
		t.Errorf("uid 1000 with its MAC: %v %v, want it let in with an address", a, err)
	}
}

// TestHubOwnMACReclaim: a member of the network's group joined with the
// MAC of the network owner's VM (a default MAC is derived from the disk's
// path, which anybody may know) and left: the owner's own VM was then
// refused that MAC for good ("only that user's VMs and root's may join
// with it") on the owner's own network. The network's user takes it back,
// as root may, and it is said in the log; another member still may not.
func TestHubOwnMACReclaim(t *testing.T) {
	const self, member, other = 1000, 2000, 3000
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	var uid atomic.Int64 // the user of the next join
	var logged atomic.Value
	logged.Store("")
	h, err := newHub(HubConfig{Socket: sock, Logf: func(f string, a ...any) {
		logged.Store(logged.Load().(string) + fmt.Sprintf(f, a...) + "\n")
	}}, hubHooks{
		peerUID: func(net.Conn) (int, error) { return int(uid.Load()), nil },
		self:    func() int { return self },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	steps := []struct {
		name    string
		uid     int
		refused string // what the refusal says; "" when let in
	}{
		{"a member takes the owner's MAC", member, ""},
		{"the network's user takes it back", self, ""},
		{"the member may not any more", member, "to the VMs of uid 1000, and the VM's process runs as uid 2000: only that user's VMs, root's and the network's own user's (uid 1000) may join with it"},
		{"nor may another member", other, "to the VMs of uid 1000"},
	}
	for _, tt := range steps {
		uid.Store(int64(tt.uid))
		j, err := JoinWith(sock, mac, nil, JoinOptions{})
		var re *RefusedError
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%s: %v, want it let in", tt.name, err)
		case tt.refused != "" && (!errors.As(err, &re) || re.Reason != RefusedMACOwner || !strings.Contains(re.Message, tt.refused)):
			t.Errorf("%s: %v, want a MAC owner refusal saying %q", tt.name, err, tt.refused)
		}
		if j != nil {
			j.Close()
			waitVMsGone(t, h)
		}
	}
	if want := "VM 52:54:00:12:34:56 of uid 1000, the network's own user, takes the MAC's lease from uid 2000"; !strings.Contains(logged.Load().(string), want) {
		t.Errorf("log:\n%s\nwant a line saying %q", logged.Load(), want)
	}
}

// waitVMsGone waits until no VM is joined to h: a VM that closed its
// connection is gone from the hub once the hub has read its end.
func waitVMsGone(t *testing.T, h *Hub) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n := h.Stats().VMs
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d VMs still joined 20 s after their connections closed", n)
		}
	}
}
