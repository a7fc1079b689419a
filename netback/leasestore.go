package netback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// leaseStore holds a hub's leases: one address per MAC, from UserGuest
// (10.0.2.15) up to 10.0.2.254, kept in a file so that a MAC gets the
// same address after the hub restarts. A MAC keeps its address for good
// unless the pool runs out, when the address of the MAC seen longest ago
// among those not connected goes to the newcomer. The lease that loses
// its address is kept without one when it names a user or privileged
// forwards (kept): its MAC stays its user's, so that another user cannot
// take it by filling the pool, and gets an address again at its next
// join.
type leaseStore struct {
	path string // "" keeps the leases in memory only
	// dir is path's directory, which the file is read and written
	// through; lock holds the file's lock (lockLeases). Both nil for
	// leases in memory, and once closed.
	dir, lock *os.File
	// write, when set, replaces writeLeases' own (HubConfig.WriteLeases).
	write func(table []byte) error

	// saveMu orders the file's writes, which happen outside mu (so that
	// a slow disk holds up no lookup): each write's snapshot is taken
	// after the previous write's.
	saveMu sync.Mutex
	mu     sync.Mutex
	byMAC  map[string]*storedLease // every lease, kept ones too
	byAddr map[netip.Addr]*storedLease
	kept   int // the leases without an address
}

// maxKept bounds the leases kept without an address (leaseStore). Beyond
// it, the user with the most of them loses the one seen longest ago, its
// MAC then free for anyone: one user's new MACs push out that user's own,
// and another user's only once that user keeps as many.
const maxKept = 2048

// storedLease is one lease as the file holds it.
type storedLease struct {
	MAC string `json:"mac"`
	// Addr is invalid (absent from the file) in a kept lease, whose
	// address went to another MAC.
	Addr netip.Addr `json:"addr,omitzero"`
	// Seen is when the MAC was last connected: its VM's last join or
	// leave.
	Seen time.Time `json:"seen"`
	// Privileged are the forwards of privileged host ports (as
	// Forward.String writes them) last granted to the MAC's VM when
	// root's process joined with them: the same VM may rejoin with them
	// after dropping root to PrivilegedUID (a VM told to run as a user
	// joins as root once, then as its user after the hub restarts).
	Privileged []string `json:"privileged,omitempty"`
	// PrivilegedUID is the uid root's process said its VM would run as
	// (hubHello.RunsAs), the only one besides root's that Privileged
	// lets in; 0 (or absent, as files written before it have it) means
	// root's alone.
	PrivilegedUID int `json:"privileged_uid,omitempty"`
	// UID is the user whose VM last joined with the MAC (for a root
	// process that said its VM would run as another user, that user):
	// no other user but root may join with it (owner). nil where it
	// was not known: in files written before it, and where peer
	// credentials cannot be read; the next join records it.
	UID *int `json:"uid,omitempty"`
	// Connected says the MAC's VM was connected when the file was
	// written: a hub restarted after dying holds the lease for that VM
	// (held), whose last-seen time is that of its join, however long
	// it stayed.
	Connected bool `json:"connected,omitempty"`
	// held is until when no other MAC may take the address (holdConnected);
	// not in the file.
	held time.Time
}

// leaseFile is the lease file's content.
type leaseFile struct {
	Version int            `json:"version"`
	Leases  []*storedLease `json:"leases"`
}

// leaseFileVersion is the version of the lease file's layout that save
// writes. Version 2 has the fields of version 1 files written since the
// leases got owners ("uid", "connected", kept leases without "addr"),
// which the builds before those fields read as theirs and dropped on
// their next save, leaving each MAC to the next user: raised so that
// those builds refuse it. A layout that adds a field whose loss matters
// must raise it again.
const leaseFileVersion = 2

// oldestLeaseFileVersion is the oldest version parseLeases reads, alike:
// a version 1 file without owners loads as one whose leases have no
// user recorded (storedLease.UID).
const oldestLeaseFileVersion = 1

// maxLeaseFile bounds the lease file read (240 leases take about 20 KiB,
// maxKept kept ones about 200 KiB more).
const maxLeaseFile = 1 << 20

// leasePool is the first and the last address a hub leases.
var leasePool = [2]netip.Addr{UserGuest, netip.MustParseAddr("10.0.2.254")}

// loadLeases opens path's leases for a network's life (close ends it); a
// missing file is an empty table. The file's directory must be safe from
// other users and the file neither another user's symlink nor their file
// (ErrLeasesUnsafe), and no other network may have it (ErrLeasesInUse:
// an exclusive lock beside it is held until close). A path that is not a
// regular file, or a file that does not parse (any bad lease too), is an
// error naming it and where, rather than a table that hands the
// addresses out again; so is a file of a newer layout (ErrLeasesNewer),
// which would be saved without the fields this code does not know.
func loadLeases(path string) (*leaseStore, error) {
	s := &leaseStore{path: path, byMAC: map[string]*storedLease{}, byAddr: map[netip.Addr]*storedLease{}}
	if path == "" {
		return s, nil
	}
	b, err := s.openLeases()
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		// Made ahead (touch, a service manager's tmpfiles): no
		// leases yet, as no file would be. The first save fills it.
		return s, nil
	}
	ls, err := parseLeases(path, b)
	if err != nil {
		s.close()
		if errors.Is(err, ErrLeasesNewer) {
			// Nothing to correct: the file is good for its writer.
			return nil, err
		}
		return nil, fmt.Errorf("%w (correct it, or remove it to start afresh)", err)
	}
	for _, l := range ls {
		s.byMAC[l.MAC] = l
		if l.Addr.IsValid() {
			s.byAddr[l.Addr] = l
		} else {
			s.kept++
		}
	}
	return s, nil
}

func inPool(a netip.Addr) bool {
	return a.Is4() && a.Compare(leasePool[0]) >= 0 && a.Compare(leasePool[1]) <= 0
}

// leasePlan is the address plan chose for a MAC, and what commit must
// change in the table to give it.
type leasePlan struct {
	mac   string
	addr  netip.Addr
	evict string // the MAC whose address goes to mac; "" when none
	fresh bool   // mac has no address yet (no lease, or a kept one)
	// uid is the user commit records as the lease's (storedLease.UID);
	// below 0 when unknown, which leaves the record as it was.
	uid int
	// wait, in a plan that found no address, is when the first held
	// lease (holdConnected) may go to another MAC; zero when none is held.
	wait time.Time
}

// holdConnected holds, until until, the leases whose VMs were connected
// when the file was last written (a hub that died wrote no leave): each
// such VM rejoins on its own, and must get its address back, which its
// guest keeps from DHCP, rather than lose it to a MAC that joined first.
func (s *leaseStore) holdConnected(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.byAddr {
		if l.Connected {
			l.held = until
		}
	}
}

// plan returns the address mac gets, without leasing it: its own, else
// the lowest free one of the pool, else that of the MAC seen longest ago
// among those whose address is neither connected nor held at now
// (holdConnected); false when every address is connected or held, with
// the plan's wait set to when the first hold ends if one is. The table is left as it was, so that a VM refused after
// plan (its forwards cannot be bound) costs no lease; commit applies the
// plan, which holds as long as no other commit comes in between.
func (s *leaseStore) plan(mac net.HardwareAddr, connected func(netip.Addr) bool, now time.Time) (leasePlan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := mac.String()
	if l := s.byMAC[key]; l != nil && l.Addr.IsValid() {
		return leasePlan{mac: key, addr: l.Addr}, true
	}
	for a := leasePool[0]; inPool(a); a = a.Next() {
		if s.byAddr[a] == nil {
			return leasePlan{mac: key, addr: a, fresh: true}, true
		}
	}
	var old *storedLease
	var wait time.Time
	for _, l := range s.byAddr {
		switch {
		case connected(l.Addr):
		case l.held.After(now):
			if wait.IsZero() || l.held.Before(wait) {
				wait = l.held
			}
		case old == nil || l.Seen.Before(old.Seen):
			old = l
		}
	}
	if old == nil {
		return leasePlan{wait: wait}, false
	}
	return leasePlan{mac: key, addr: old.Addr, evict: old.MAC, fresh: true}, true
}

// commit leases p's address to its MAC, seen at now (a MAC that had the
// lease already is seen again: it stays the newest for eviction). The
// table has changed: save writes it.
func (s *leaseStore) commit(p leasePlan, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byMAC[p.evict]; p.evict != "" && old != nil {
		delete(s.byAddr, old.Addr)
		old.Connected, old.held = false, time.Time{}
		if old.UID != nil || len(old.Privileged) > 0 {
			old.Addr = netip.Addr{}
			s.kept++
		} else {
			// Nothing to keep it for.
			delete(s.byMAC, p.evict)
		}
	}
	l := s.byMAC[p.mac]
	if p.fresh {
		if l == nil {
			l = &storedLease{MAC: p.mac}
			s.byMAC[p.mac] = l
		} else {
			s.kept--
		}
		l.Addr = p.addr
		s.byAddr[p.addr] = l
	}
	for s.kept > maxKept {
		s.forgetKeptLocked()
	}
	l.Seen, l.Connected, l.held = now, true, time.Time{}
	if p.uid >= 0 {
		uid := p.uid
		l.UID = &uid
	}
}

// forgetKeptLocked removes a kept lease (maxKept): of the user (or the
// leases of no user) with the most, the one seen longest ago.
func (s *leaseStore) forgetKeptLocked() {
	count := map[int]int{}
	who := func(l *storedLease) int {
		if l.UID == nil {
			return -1
		}
		return *l.UID
	}
	for _, l := range s.byMAC {
		if !l.Addr.IsValid() {
			count[who(l)]++
		}
	}
	var old *storedLease
	for _, l := range s.byMAC {
		if l.Addr.IsValid() {
			continue
		}
		if old == nil || count[who(l)] > count[who(old)] || count[who(l)] == count[who(old)] && l.Seen.Before(old.Seen) {
			old = l
		}
	}
	delete(s.byMAC, old.MAC)
	s.kept--
}

// owner returns the user recorded as mac's lease's (storedLease.UID)
// and its address, invalid for a kept lease; false when mac has no lease
// or none is recorded.
func (s *leaseStore) owner(mac net.HardwareAddr) (uid int, addr netip.Addr, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byMAC[mac.String()]
	if l == nil || l.UID == nil {
		return -1, netip.Addr{}, false
	}
	return *l.UID, l.Addr, true
}

// hasGrant reports whether root's VM of mac was granted privileged
// forwards (grant).
func (s *leaseStore) hasGrant(mac net.HardwareAddr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byMAC[mac.String()]
	return l != nil && len(l.Privileged) > 0
}

// touch marks mac's lease seen at now and not connected (when its VM
// leaves, so that the lease of a VM connected for long counts as
// recent); false when mac has no lease.
func (s *leaseStore) touch(mac net.HardwareAddr, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byMAC[mac.String()]
	if l == nil {
		return false
	}
	l.Seen, l.Connected = now, false
	return true
}

// grant records fwds as the privileged forwards root's VM of mac joined
// with, for its later joins as uid (or root), replacing those of its
// previous join; false when mac has no lease.
func (s *leaseStore) grant(mac net.HardwareAddr, fwds []string, uid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byMAC[mac.String()]
	if l == nil {
		return false
	}
	l.Privileged, l.PrivilegedUID = append([]string(nil), fwds...), uid
	return true
}

// granted reports whether fwd is among the privileged forwards last
// granted to mac (grant) for a join as uid: root's, or the one the grant
// names.
func (s *leaseStore) granted(mac net.HardwareAddr, fwd string, uid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byMAC[mac.String()]
	return l != nil && (uid == 0 || uid == l.PrivilegedUID) && slices.Contains(l.Privileged, fwd)
}

// lookup returns mac's address without leasing one.
func (s *leaseStore) lookup(mac net.HardwareAddr) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.byMAC[mac.String()]; l != nil && l.Addr.IsValid() {
		return l.Addr, true
	}
	return netip.Addr{}, false
}

// leasedToOther reports whether a is leased to a MAC other than mac.
func (s *leaseStore) leasedToOther(a netip.Addr, mac net.HardwareAddr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.byAddr[a]
	return l != nil && l.MAC != mac.String()
}

// save writes the table atomically.
func (s *leaseStore) save() error {
	if s.path == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	lf := leaseFile{Version: leaseFileVersion}
	s.mu.Lock()
	for _, l := range s.byMAC {
		c := *l
		lf.Leases = append(lf.Leases, &c)
	}
	s.mu.Unlock()
	sortLeases(lf.Leases)
	b, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return err
	}
	if s.dir == nil {
		return fmt.Errorf("lease file %s: %w", s.path, os.ErrClosed)
	}
	return s.writeLeases(append(b, '\n'))
}
