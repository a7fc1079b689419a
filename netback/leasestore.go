package netback

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
)

// leaseStore holds a hub's leases: one address per MAC, from UserGuest
// (10.0.2.15) up to 10.0.2.254, kept in a file so that a MAC gets the
// same address after the hub restarts. A MAC keeps its address for good
// unless the pool runs out, when the lease of the MAC seen longest ago
// among those not connected goes to the newcomer.
type leaseStore struct {
	path string // "" keeps the leases in memory only

	// saveMu orders the file's writes, which happen outside mu (so that
	// a slow disk holds up no lookup): each write's snapshot is taken
	// after the previous write's.
	saveMu sync.Mutex
	mu     sync.Mutex
	byMAC  map[string]*storedLease
	byAddr map[netip.Addr]*storedLease
}

// storedLease is one lease as the file holds it.
type storedLease struct {
	MAC  string     `json:"mac"`
	Addr netip.Addr `json:"addr"`
	// Seen is when the MAC last connected.
	Seen time.Time `json:"seen"`
}

// leaseFile is the lease file's content.
type leaseFile struct {
	Version int            `json:"version"`
	Leases  []*storedLease `json:"leases"`
}

// leaseFileVersion is the version of the lease file's layout.
const leaseFileVersion = 1

// maxLeaseFile bounds the lease file read (240 leases take about 20 KiB).
const maxLeaseFile = 1 << 20

// leasePool is the first and the last address a hub leases.
var leasePool = [2]netip.Addr{UserGuest, netip.MustParseAddr("10.0.2.254")}

// loadLeases reads path's leases; a missing file is an empty table. A
// file that does not parse is an error naming it (rather than silently
// handing the addresses out again). Entries outside the pool or repeated
// are skipped.
func loadLeases(path string) (*leaseStore, error) {
	s := &leaseStore{path: path, byMAC: map[string]*storedLease{}, byAddr: map[netip.Addr]*storedLease{}}
	if path == "" {
		return s, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lease file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLeaseFile+1))
	if err != nil {
		return nil, fmt.Errorf("lease file %s: %w", path, err)
	}
	if len(b) > maxLeaseFile {
		return nil, fmt.Errorf("lease file %s: larger than %d bytes", path, maxLeaseFile)
	}
	var lf leaseFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("lease file %s: %w (remove it to start afresh)", path, err)
	}
	if lf.Version != leaseFileVersion {
		return nil, fmt.Errorf("lease file %s: version %d, want %d", path, lf.Version, leaseFileVersion)
	}
	for _, l := range lf.Leases {
		mac, err := net.ParseMAC(l.MAC)
		if err != nil || len(mac) != 6 || !inPool(l.Addr) || s.byAddr[l.Addr] != nil || s.byMAC[mac.String()] != nil {
			continue
		}
		l.MAC = mac.String()
		s.byMAC[l.MAC], s.byAddr[l.Addr] = l, l
	}
	return s, nil
}

func inPool(a netip.Addr) bool {
	return a.Is4() && a.Compare(leasePool[0]) >= 0 && a.Compare(leasePool[1]) <= 0
}

// assign returns mac's address, leasing one if it has none: the lowest
// free one of the pool, else that of the MAC seen longest ago among
// those whose address is not connected. A new lease is written to the file
// by save; false when every address is connected. changed says the file
// needs it.
func (s *leaseStore) assign(mac net.HardwareAddr, connected func(netip.Addr) bool, now time.Time) (addr netip.Addr, ok, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := mac.String()
	if l := s.byMAC[key]; l != nil {
		l.Seen = now
		return l.Addr, true, false
	}
	var l *storedLease
	for a := leasePool[0]; inPool(a); a = a.Next() {
		if s.byAddr[a] == nil {
			l = &storedLease{Addr: a}
			break
		}
	}
	if l == nil {
		for _, old := range s.byAddr {
			if !connected(old.Addr) && (l == nil || old.Seen.Before(l.Seen)) {
				l = old
			}
		}
		if l == nil {
			return netip.Addr{}, false, false
		}
		delete(s.byMAC, l.MAC)
	}
	l.MAC, l.Seen = key, now
	s.byMAC[key], s.byAddr[l.Addr] = l, l
	return l.Addr, true, true
}

// lookup returns mac's address without leasing one.
func (s *leaseStore) lookup(mac net.HardwareAddr) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.byMAC[mac.String()]; l != nil {
		return l.Addr, true
	}
	return netip.Addr{}, false
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
	for _, l := range s.byAddr {
		c := *l
		lf.Leases = append(lf.Leases, &c)
	}
	s.mu.Unlock()
	sort.Slice(lf.Leases, func(i, j int) bool { return lf.Leases[i].Addr.Less(lf.Leases[j].Addr) })
	b, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("lease file: %w", err)
	}
	return nil
}
