package netback_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// testClock is a hub's clock that only the test moves.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// startHubClock runs a hub on a socket in dir (its leases next to it)
// whose clock is c.
func startHubClock(t *testing.T, dir string, c *testClock) *netback.Hub {
	t.Helper()
	h, err := netback.NewHubWithClock(netback.HubConfig{Socket: filepath.Join(dir, "net.sock"), Logf: t.Logf}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// poolMAC is the MAC of the i-th lease of a lease file from fullPool.
func poolMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i)} }

// testLease is one lease as the lease file holds it.
type testLease struct {
	MAC  string    `json:"mac"`
	Addr string    `json:"addr"`
	Seen time.Time `json:"seen"`
}

// fullPool leases all 240 addresses, 10.0.2.(15+i) to poolMAC(i) seen
// at seen(i).
func fullPool(seen func(i int) time.Time) []testLease {
	ls := make([]testLease, 240)
	for i := range ls {
		ls[i] = testLease{MAC: poolMAC(i).String(), Addr: fmt.Sprintf("10.0.2.%d", 15+i), Seen: seen(i)}
	}
	return ls
}

// writeLeases writes dir's lease file; nil writes none.
func writeLeases(t *testing.T, dir string, ls []testLease) {
	t.Helper()
	if ls == nil {
		return
	}
	b, err := json.Marshal(map[string]any{"version": 1, "leases": ls})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "net.leases"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// readLeaseFile is dir's lease file, "" when there is none.
func readLeaseFile(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "net.leases"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var leaseT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// A VM the hub refuses leaves the leases as they were, in the file and
// in the hub: it takes no free address, evicts no lease on a full pool,
// and refreshes no last-seen time; the next VM gets what it would have
// got without the refused one.
func TestHubRefusalLeavesLeases(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenFwd := fmt.Sprintf(`["tcp:127.0.0.1:%d:80"]`, taken.Addr().(*net.TCPAddr).Port)
	older := func(i int) time.Time { return leaseT0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name     string
		leases   []testLease // the lease file before; nil: none
		mac      net.HardwareAddr
		forwards string
		refusal  netback.Refusal
		next     net.HardwareAddr // the VM joining after the refused one
		want     string           // and the address it must get
	}{
		{"new MAC, host port taken", nil, testMAC(1), takenFwd, netback.RefusedForward, testMAC(2), "10.0.2.15"},
		{"new MAC on a full pool, host port taken", fullPool(older), testMAC(1), takenFwd, netback.RefusedForward, poolMAC(0), "10.0.2.15"},
		{"known MAC, host port taken", fullPool(older)[:1], poolMAC(0), takenFwd, netback.RefusedForward, testMAC(2), "10.0.2.16"},
		{"bad forward", nil, testMAC(1), `["tcp:1:2:3:4"]`, netback.RefusedMalformed, testMAC(2), "10.0.2.15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testsock.Dir(t)
			writeLeases(t, dir, tt.leases)
			before := readLeaseFile(t, dir)
			h := startHubClock(t, dir, newTestClock(leaseT0.Add(time.Hour)))
			c, status, body := rawHello(t, h.Socket(), 1, []byte(`{"mac":"`+tt.mac.String()+`","forwards":`+tt.forwards+`}`))
			c.Close()
			if status != int(tt.refusal) {
				t.Fatalf("status %d %s, want refusal %d (%s)", status, body, tt.refusal, tt.refusal)
			}
			if after := readLeaseFile(t, dir); after != before {
				t.Errorf("the refusal changed the lease file from\n%s\nto\n%s", before, after)
			}
			j, err := netback.Join(h.Socket(), tt.next, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if got := j.Addr().String(); got != tt.want {
				t.Errorf("the next VM, %s, got %s; want %s", tt.next, got, tt.want)
			}
		})
	}
}

// A lease's last-seen time, which picks the lease a full pool gives a
// newcomer (the one seen longest ago), is the MAC's last join or leave,
// saved: after a restart of the hub, a MAC that reconnected, or that
// stayed connected longer, is not the one evicted.
func TestHubLeaseSeenOnJoinAndLeave(t *testing.T) {
	type step struct {
		at   time.Duration // after the hub starts
		vm   int           // poolMAC(vm)
		join bool          // else leave
	}
	tests := []struct {
		name  string
		seen  func(i int) time.Time // of the lease file's leases
		steps []step
		want  string // the newcomer's address after the restart
	}{
		{
			"the oldest lease's MAC reconnects",
			func(i int) time.Time { return leaseT0.Add(time.Duration(i) * time.Second) },
			[]step{{0, 0, true}, {0, 0, false}},
			"10.0.2.16",
		},
		{
			"of two VMs, the one that joined first leaves last",
			func(i int) time.Time { // 0 and 1 are the oldest
				if i < 2 {
					return leaseT0
				}
				return leaseT0.Add(1000 * time.Hour)
			},
			[]step{{0, 0, true}, {time.Second, 1, true}, {2 * time.Second, 1, false}, {3 * time.Second, 0, false}},
			"10.0.2.16",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testsock.Dir(t)
			writeLeases(t, dir, fullPool(tt.seen))
			start := leaseT0.Add(time.Hour)
			clock := newTestClock(start)
			h := startHubClock(t, dir, clock)
			joined := map[int]*netback.Joined{}
			for _, s := range tt.steps {
				clock.set(start.Add(s.at))
				if s.join {
					j, err := netback.Join(h.Socket(), poolMAC(s.vm), nil)
					if err != nil {
						t.Fatal(err)
					}
					joined[s.vm] = j
					continue
				}
				joined[s.vm].Close()
				delete(joined, s.vm)
				waitFor(t, "the hub to see the VM leave", func() bool { return h.Stats().VMs == len(joined) })
			}
			h.Close()
			h = startHubClock(t, dir, clock)
			j, err := netback.Join(h.Socket(), testMAC(1), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if got := j.Addr().String(); got != tt.want {
				t.Errorf("the newcomer got %s, want %s", got, tt.want)
			}
		})
	}
}

// A VM is answered once its address is reserved, not after the lease file
// reaches the disk: with the file's write held up, VMs still join (one
// after another, each waiting for the last). Close waits for the write and
// saves every lease.
func TestHubJoinDoesNotWaitForLeaseFile(t *testing.T) {
	dir := testsock.Dir(t)
	blocked := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	h, err := netback.NewHubWithSave(netback.HubConfig{Socket: filepath.Join(dir, "net.sock"), Logf: t.Logf}, func(save func() error) error {
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-release
		return save()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	want := map[string]string{}
	for i := range byte(3) {
		j, err := netback.Join(h.Socket(), testMAC(i), nil)
		if err != nil {
			unblock()
			t.Fatalf("join %d while the lease file's write is held up: %v", i, err)
		}
		defer j.Close()
		want[testMAC(i).String()] = j.Addr().String()
		if i == 0 {
			<-blocked // the first save has started and waits
		}
	}
	unblock()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "net.leases"))
	if err != nil {
		t.Fatal(err)
	}
	var lf struct{ Leases []testLease }
	if err := json.Unmarshal(b, &lf); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range lf.Leases {
		got[l.MAC] = l.Addr
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lease file after Close: %v, want %v", got, want)
	}
}

// A VM connected when the hub dies (no leave written, its last-seen time
// that of its join, the oldest of a full pool) rejoins the restarted hub
// with its address, which its guest keeps from DHCP, even when a new MAC
// joined first: the new MAC takes another VM's address, that of the
// oldest lease not held.
func TestHubRejoinAfterCrashKeepsAddress(t *testing.T) {
	defer netback.SetHubRejoinGrace(time.Second)()
	dir := testsock.Dir(t)
	// 239 leases of VMs that joined and left after A's join.
	later := func(i int) time.Time { return time.Now().Add(time.Hour + time.Duration(i)*time.Second) }
	writeLeases(t, dir, fullPool(later)[1:])
	h1, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "net.sock"), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	a := testMAC(1)
	ja, err := netback.Join(h1.Socket(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ja.Close()
	if got := ja.Addr().String(); got != "10.0.2.15" {
		t.Fatalf("A got %s, want 10.0.2.15", got)
	}
	// The file as a hub killed now leaves it: A's join saved.
	var crashed string
	for deadline := time.Now().Add(20 * time.Second); ; {
		if crashed = readLeaseFile(t, dir); strings.Contains(crashed, a.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's join was not saved:\n%s", crashed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dir2 := testsock.Dir(t)
	if err := os.WriteFile(filepath.Join(dir2, "net.leases"), []byte(crashed), 0o600); err != nil {
		t.Fatal(err)
	}
	h2 := startHubClock(t, dir2, newTestClock(time.Now()))
	// The newcomer joins, and has its address, before A rejoins: without
	// the hold it would take A's, the oldest lease.
	jn, err := netback.Join(h2.Socket(), testMAC(2), nil)
	if err != nil {
		t.Fatalf("the newcomer: %v", err)
	}
	defer jn.Close()
	if got := jn.Addr().String(); got == "10.0.2.15" {
		t.Errorf("the newcomer got %s, A's address, while A's lease is held", got)
	}
	ja2, err := netback.Join(h2.Socket(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ja2.Close()
	if got := ja2.Addr().String(); got != "10.0.2.15" {
		t.Errorf("A rejoined as %s, want its address 10.0.2.15", got)
	}
}
