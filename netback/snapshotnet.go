package netback

import (
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/smolvmm/smolvmm/snapshot"
)

// NetworkRecord is what a snapshot records of the network spec (Open's)
// names, before any address is leased: the user network (its guest at
// UserGuest), a shared network by name, or by its socket path made
// absolute so that a restore from another directory names the same, or
// a tap by name. ok is false for a spec no snapshot records (none, or
// one Open does not know).
func NetworkRecord(spec string) (n snapshot.Network, ok bool) {
	kind, name, _ := strings.Cut(spec, ":")
	switch {
	case spec == "user":
		return snapshot.Network{Kind: snapshot.NetUser, Addr: UserGuest}, true
	case kind == "user":
		if strings.ContainsRune(name, '/') {
			if abs, err := filepath.Abs(name); err == nil {
				name = abs
			}
		}
		return snapshot.Network{Kind: snapshot.NetShared, Name: name}, true
	case kind == "tap":
		return snapshot.Network{Kind: snapshot.NetTap, Name: name}, true
	}
	return snapshot.Network{}, false
}

// SnapshotNetwork returns what the snapshots of a VM record of its
// network (vmm.Config.SnapshotNetwork's function), the card's backend b
// being on the network spec (Open's): NetworkRecord's, with, for a
// shared network, the address it leased the card's MAC at b's last join
// (a Joined's, or a LateBackend's once joined), asked at each call since
// a LateBackend joins late and a rejoin may lease another. It returns
// nil for a spec NetworkRecord records nothing of.
func SnapshotNetwork(spec string, b Backend) func() snapshot.Network {
	n, ok := NetworkRecord(spec)
	if !ok {
		return nil
	}
	return func() snapshot.Network {
		m := n
		if a, ok := leasedAddr(b); ok && n.Kind == snapshot.NetShared {
			m.Addr = a
		}
		return m
	}
}

// leasedAddr is the address a shared network's backend b was leased at
// its last join, if it has joined.
func leasedAddr(b Backend) (netip.Addr, bool) {
	j, ok := b.(interface{ Addr() netip.Addr }) // *Joined, *LateBackend
	if !ok {
		return netip.Addr{}, false
	}
	a := j.Addr()
	return a, a.Is4() && !a.IsUnspecified()
}
