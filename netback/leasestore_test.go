package netback

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// assign plans mac's lease and commits it, as a hub admitting it does.
func assign(s *leaseStore, mac net.HardwareAddr, connected func(netip.Addr) bool, now time.Time) (netip.Addr, bool) {
	p, ok := s.plan(mac, connected, time.Time{})
	if ok {
		s.commit(p, now)
	}
	return p.addr, ok
}

// A full pool gives a newcomer the address of the MAC seen longest ago
// among those not connected, and nothing when all are connected; a file
// that does not parse is an error naming it, not an empty table.
func TestLeaseStorePoolFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.leases")
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(i int) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)} }
	t0 := time.Unix(1e9, 0)
	none := func(netip.Addr) bool { return false }
	for i := 0; i < 240; i++ {
		a, ok := assign(s, mac(i), none, t0.Add(time.Duration(i)*time.Second))
		if want := netip.AddrFrom4([4]byte{10, 0, 2, byte(15 + i)}); !ok || a != want {
			t.Fatalf("lease %d: %s %v, want %s", i, a, ok, want)
		}
	}
	// 10.0.2.17 (MAC 2) is the oldest not connected.
	connected := func(a netip.Addr) bool { return a.As4()[3] < 17 }
	if a, ok := assign(s, mac(1000), connected, t0.Add(time.Hour)); !ok || a.String() != "10.0.2.17" {
		t.Fatalf("full pool: %s %v, want 10.0.2.17", a, ok)
	}
	if _, ok := s.lookup(mac(2)); ok {
		t.Error("the evicted MAC still has a lease")
	}
	if _, ok := assign(s, mac(1001), func(netip.Addr) bool { return true }, t0); ok {
		t.Error("a pool of connected VMs leased an address")
	}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	s.close()
	s2, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.close()
	if a, ok := s2.lookup(mac(1000)); !ok || a.String() != "10.0.2.17" {
		t.Errorf("reloaded: %s %v", a, ok)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadLeases(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt file: %v, want an error naming it", err)
	}
}

// A lease path that is not a regular file is refused by its kind, at
// once: a FIFO blocked the open for good (SIGTERM unheard), /dev/null
// read as a truncated table and /dev/full as one too large.
func TestLoadLeasesNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "l.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, kind string
	}{
		{fifo, "a FIFO"},
		{"/dev/null", "a character device"},
		{"/dev/full", "a character device"},
		{dir, "a directory"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil {
				t.Skip(err)
			}
			_, err := loadLeases(tt.path)
			if err == nil {
				t.Fatal("loaded")
			}
			if want := tt.path + " is " + tt.kind; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to say %q", err, want)
			}
		})
	}
}

// An empty lease file (one created ahead, or by touch) holds no leases:
// it said "unexpected end of JSON input (remove it to start afresh)".
// The table saved over it then loads.
func TestLoadLeasesEmpty(t *testing.T) {
	for _, content := range []string{"", "\n", " \t\n"} {
		path := filepath.Join(t.TempDir(), "l.leases")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := loadLeases(path)
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if len(s.byMAC) != 0 {
			t.Fatalf("%q: %d leases, want none", content, len(s.byMAC))
		}
		mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
		if _, ok := assign(s, mac, func(netip.Addr) bool { return false }, time.Unix(1e9, 0)); !ok {
			t.Fatalf("%q: no lease", content)
		}
		if err := s.save(); err != nil {
			t.Fatal(err)
		}
		s.close()
		s2, err := loadLeases(path)
		if err != nil {
			t.Fatal(err)
		}
		s2.close()
		if a, ok := s2.lookup(mac); !ok || a.String() != "10.0.2.15" {
			t.Errorf("%q: reloaded %s %v, want 10.0.2.15", content, a, ok)
		}
	}
}

// The lease of a user's MAC whose address goes to a newcomer is kept
// without one (its user and grants), in the file too, and the MAC gets
// an address again at its next join; one of no user and no grant is
// dropped. At most maxKept are kept: beyond, the user with the most
// loses the one seen longest ago, so that one user's new MACs cannot push
// out another's.
func TestLeaseStoreKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.leases")
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.close() }()
	t0 := time.Unix(1e9, 0)
	none := func(netip.Addr) bool { return false }
	n := 0 // the joins so far, each seen a second after the last
	join := func(mac net.HardwareAddr, uid int) {
		t.Helper()
		p, ok := s.plan(mac, none, time.Time{})
		if !ok {
			t.Fatalf("%s: no address", mac)
		}
		p.uid = uid
		n++
		s.commit(p, t0.Add(time.Duration(n)*time.Second))
	}
	mac := func(user, i int) net.HardwareAddr {
		return net.HardwareAddr{2, byte(user >> 8), byte(user), 0, byte(i >> 8), byte(i)}
	}
	owned, anon, granted := mac(1000, 0), mac(0, 1), mac(0, 2)
	join(owned, 1000)
	join(anon, -1)
	join(granted, -1)
	s.grant(granted, []string{"tcp:127.0.0.1:80:80"}, 1000)
	for i := range maxKept + poolSize() + 10 {
		join(mac(2000, i), 2000)
	}
	tests := []struct {
		name string
		mac  net.HardwareAddr
		kept bool // still in the table, without an address
		uid  int  // its user, when kept with one; -1 none
	}{
		{"user's MAC", owned, true, 1000},
		{"MAC of no user", anon, false, -1},
		{"MAC of no user with a grant", granted, true, -1},
		{"newcomer's user's oldest", mac(2000, 0), false, -1},
		{"newcomer's user's newest kept", mac(2000, maxKept+9), true, 2000},
	}
	check := func(s *leaseStore, when string) {
		t.Helper()
		if s.kept != maxKept {
			t.Errorf("%s: %d kept leases, want %d", when, s.kept, maxKept)
		}
		for _, tt := range tests {
			l := s.byMAC[tt.mac.String()]
			switch {
			case (l != nil) != tt.kept:
				t.Errorf("%s: %s: in the table %v, want %v", when, tt.name, l != nil, tt.kept)
			case l == nil:
			case l.Addr.IsValid():
				t.Errorf("%s: %s: kept with address %s", when, tt.name, l.Addr)
			case tt.uid >= 0 && (l.UID == nil || *l.UID != tt.uid):
				t.Errorf("%s: %s: kept with uid %v, want %d", when, tt.name, l.UID, tt.uid)
			}
		}
		if !s.granted(granted, "tcp:127.0.0.1:80:80", 1000) {
			t.Errorf("%s: the kept grant is lost", when)
		}
	}
	check(s, "kept")
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	s.close()
	if s, err = loadLeases(path); err != nil {
		t.Fatal(err)
	}
	check(s, "reloaded")
	join(owned, 1000)
	if a, ok := s.lookup(owned); !ok || s.kept != maxKept {
		t.Errorf("the kept MAC joins again: address %s %v, %d kept, want an address and %d kept (another's lease kept instead)", a, ok, s.kept, maxKept)
	}
}

// The leases of VMs connected at the last save are held, once read
// again, until the rejoin grace ends: a new MAC on a full pool gets none
// of them meanwhile (and is told when to ask again), their own MACs get
// them back, and a VM that left is not held.
func TestLeaseStoreHoldsConnected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.leases")
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	none := func(netip.Addr) bool { return false }
	for i := range 240 {
		if _, ok := assign(s, net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}, none, t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("lease %d refused", i)
		}
	}
	// The VM of the last lease left; the others stay connected.
	left := net.HardwareAddr{2, 0, 0, 0, 1, 239}
	s.touch(left, t0.Add(time.Hour))
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	s.close()
	if s, err = loadLeases(path); err != nil {
		t.Fatal(err)
	}
	defer s.close()
	restart := t0.Add(2 * time.Hour)
	grace := restart.Add(3 * time.Second)
	s.holdConnected(grace)
	newMAC := net.HardwareAddr{2, 0, 0, 0, 2, 0}
	tests := []struct {
		name  string
		mac   net.HardwareAddr
		at    time.Time
		ok    bool
		addr  string
		wait  time.Time
		evict string
	}{
		{"new MAC: the one that left", newMAC, restart, true, "10.0.2.254", time.Time{}, left.String()},
		{"held VM rejoins", net.HardwareAddr{2, 0, 0, 0, 1, 0}, restart, true, "10.0.2.15", time.Time{}, ""},
		{"new MAC while all are held", net.HardwareAddr{2, 0, 0, 0, 2, 1}, restart.Add(time.Second), false, "invalid IP", grace, ""},
		{"new MAC after the grace", net.HardwareAddr{2, 0, 0, 0, 2, 1}, grace.Add(time.Second), true, "10.0.2.16", time.Time{}, "02:00:00:00:01:01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every address but the first two is connected to nobody
			// in this hub yet: only holds keep them.
			connected := func(a netip.Addr) bool { return a.String() == "10.0.2.254" || a.String() == "10.0.2.15" }
			if tt.name == "new MAC: the one that left" || tt.name == "held VM rejoins" {
				connected = none
			}
			p, ok := s.plan(tt.mac, connected, tt.at)
			if ok != tt.ok || p.addr.String() != tt.addr || !p.wait.Equal(tt.wait) || p.evict != tt.evict {
				t.Fatalf("plan = %s ok %v wait %v evict %q; want %s ok %v wait %v evict %q", p.addr, ok, p.wait, p.evict, tt.addr, tt.ok, tt.wait, tt.evict)
			}
			if ok {
				s.commit(p, tt.at)
			}
		})
	}
}
