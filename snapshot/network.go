package snapshot

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/netip"
)

// NetKind is the kind of network a snapshot's machine's card was on.
type NetKind uint8

// The kinds of network a header records.
const (
	// NetUnknown: not recorded (a writer before the record existed, or
	// one that did not know), or the machine had no network card.
	NetUnknown NetKind = iota
	// NetUser is a user-mode network of the machine's own.
	NetUser
	// NetShared is a shared user-mode network, which Network.Name names
	// (a name or a socket's path).
	NetShared
	// NetTap is a tap interface, which Network.Name names.
	NetTap
)

// String is the kind's name.
func (k NetKind) String() string {
	switch k {
	case NetUnknown:
		return "unknown"
	case NetUser:
		return "user"
	case NetShared:
		return "shared"
	case NetTap:
		return "tap"
	}
	return fmt.Sprintf("NetKind(%d)", uint8(k))
}

// MaxNetName is the longest Network.Name a header holds as it is; a longer
// one (or one holding a NUL byte) is held as its NameDigest.
const MaxNetName = 16

// Network is what a snapshot's header says of the network its machine's
// card was on, so that a restore can rejoin it, or tell that it is on
// another. Like the rest of the header it is unverified until the state is
// read (ReadState).
type Network struct {
	// Kind is the kind of network; NetUnknown when not recorded.
	Kind NetKind
	// Name names a shared network or a tap, as it was given; empty for
	// NetUser, and when the header holds only NameDigest.
	Name string
	// NameDigest is, for a name longer than MaxNetName, its digest
	// (NetNameDigest): the header's room holds no more. Zero otherwise.
	NameDigest [MaxNetName]byte
	// Addr is the IPv4 address the network leased to the card's MAC when
	// the snapshot was taken; the zero Addr when not known.
	Addr netip.Addr
}

// NetNameDigest is the digest a header holds of a network's name too long
// for it: the first MaxNetName bytes of the name's SHA-256.
func NetNameDigest(name string) [MaxNetName]byte {
	var d [MaxNetName]byte
	s := sha256.Sum256([]byte(name))
	copy(d[:], s[:])
	return d
}

// HasName reports whether name is the network's name: equal to Name, or,
// when the header holds a digest, of that digest.
func (n Network) HasName(name string) bool {
	if n.Name != "" {
		return n.Name == name
	}
	return n.NameDigest != [MaxNetName]byte{} && NetNameDigest(name) == n.NameDigest
}

// The network record's place in the header: the kind at netOff (bit 7
// set when the name is held as a digest), the IPv4 address at
// [netAddrOff, netNameOff), the name (NUL-padded) or its digest at
// [netNameOff, HeaderSize).
const (
	netOff       = 107
	netAddrOff   = 108
	netNameOff   = 112
	netKindMask  = 0x7f
	netDigestBit = 0x80
)

// Check returns the error WriteMeta (and package vmm's snapshot) would
// refuse n with in the header of a machine whose card nic describes: a
// record no reader would take (a kind for a machine without a card, a
// shared network or a tap without a name, a name for the machine's own
// user network, an address other than an IPv4 one a network leases).
func (n Network) Check(nic NIC) error {
	return encodeNet(make([]byte, HeaderSize), n, nic)
}

// encodeNet puts n in the header b. It refuses what no reader would take.
func encodeNet(b []byte, n Network, nic NIC) error {
	rec := b[netOff:HeaderSize]
	clear(rec)
	switch n.Kind {
	case NetUnknown:
		if n != (Network{}) {
			return fmt.Errorf("network name or address recorded without a network kind")
		}
		return nil
	case NetUser:
		if n.Name != "" || n.NameDigest != [MaxNetName]byte{} {
			return fmt.Errorf("a name %q for a user-mode network of the machine's own", n.Name)
		}
	case NetShared, NetTap:
		if n.Name == "" && n.NameDigest == [MaxNetName]byte{} {
			return fmt.Errorf("%v network without a name", n.Kind)
		}
	default:
		return fmt.Errorf("network kind %d is not defined", n.Kind)
	}
	if !nic.Present {
		return fmt.Errorf("%v network recorded for a machine without a network card", n.Kind)
	}
	rec[0] = byte(n.Kind)
	if n.Addr.IsValid() {
		if !n.Addr.Is4() || n.Addr.IsUnspecified() {
			return fmt.Errorf("network address %v is not an IPv4 address a network leases", n.Addr)
		}
		a := n.Addr.As4()
		copy(b[netAddrOff:], a[:])
	}
	switch {
	case n.Kind == NetUser:
	case n.Name == "":
		rec[0] |= netDigestBit
		copy(b[netNameOff:], n.NameDigest[:])
	case len(n.Name) > MaxNetName || bytes.IndexByte([]byte(n.Name), 0) >= 0:
		rec[0] |= netDigestBit
		d := NetNameDigest(n.Name)
		copy(b[netNameOff:], d[:])
	default:
		copy(b[netNameOff:], n.Name)
	}
	return nil
}

// decodeNet reads the network record of the header head, whose NIC is
// nic, refusing one no writer makes (ErrCorrupt).
func decodeNet(head []byte, nic NIC) (Network, error) {
	var n Network
	rec := head[netOff:HeaderSize]
	kind := NetKind(rec[0] & netKindMask)
	digest := rec[0]&netDigestBit != 0
	name := head[netNameOff:HeaderSize]
	switch {
	case rec[0] == 0:
		if !bytes.Equal(rec, make([]byte, len(rec))) {
			return n, fmt.Errorf("%w: header bytes %d-%d are not zero with no network recorded (byte %d is 0)", ErrCorrupt, netAddrOff, HeaderSize-1, netOff)
		}
		return n, nil
	case kind > NetTap:
		return n, fmt.Errorf("%w: network kind %d in header byte %d is not defined", ErrCorrupt, kind, netOff)
	case !nic.Present:
		return n, fmt.Errorf("%w: %v network in the header of a machine without a network card", ErrCorrupt, kind)
	case kind == NetUser && (digest || !bytes.Equal(name, make([]byte, len(name)))):
		return n, fmt.Errorf("%w: a name in header bytes %d-%d for a user-mode network of the machine's own", ErrCorrupt, netNameOff, HeaderSize-1)
	case kind != NetUser && !digest && (name[0] == 0 || !padded(name)):
		return n, fmt.Errorf("%w: %v network name in header bytes %d-%d is empty or has bytes after its end", ErrCorrupt, kind, netNameOff, HeaderSize-1)
	case kind != NetUser && digest && bytes.Equal(name, make([]byte, len(name))):
		return n, fmt.Errorf("%w: %v network name digest in header bytes %d-%d is zero", ErrCorrupt, kind, netNameOff, HeaderSize-1)
	}
	n.Kind = kind
	if a := [4]byte(head[netAddrOff:netNameOff]); a != [4]byte{} {
		n.Addr = netip.AddrFrom4(a)
	}
	switch {
	case kind == NetUser:
	case digest:
		copy(n.NameDigest[:], name)
	default:
		n.Name = string(bytes.TrimRight(name, "\x00"))
	}
	return n, nil
}

// padded reports whether name's bytes after its first NUL, if any, are
// all NUL.
func padded(name []byte) bool {
	end := bytes.IndexByte(name, 0)
	if end < 0 {
		return true
	}
	return bytes.Count(name[end:], []byte{0}) == len(name)-end
}
