package net

import (
	"crypto/sha256"
	"errors"
	"fmt"
	stdnet "net"
)

// ErrBadMAC is wrapped by every ParseMAC error.
var ErrBadMAC = errors.New("bad MAC address")

// DefaultMAC returns the stable address for seed: 52:54:00 followed by the
// first three bytes of SHA-256(seed).
func DefaultMAC(seed string) stdnet.HardwareAddr {
	h := sha256.Sum256([]byte(seed))
	return stdnet.HardwareAddr{0x52, 0x54, 0x00, h[0], h[1], h[2]}
}

// ParseMAC parses a --mac value: six hex bytes separated by ':' or '-'
// (52:54:00:12:34:56). It refuses multicast and all-zero addresses, which
// cannot name a NIC.
func ParseMAC(s string) (stdnet.HardwareAddr, error) {
	bad := func(why string) (stdnet.HardwareAddr, error) {
		return nil, fmt.Errorf("%w %q: %s; a NIC's address looks like 52:54:00:12:34:56", ErrBadMAC, s, why)
	}
	mac, err := stdnet.ParseMAC(s)
	switch {
	case err != nil:
		return bad("not six hex bytes separated by ':' or '-'")
	case len(mac) != 6:
		return bad(fmt.Sprintf("%d bytes, an Ethernet address has 6", len(mac)))
	case mac[0]&1 != 0:
		return bad("a multicast address (lowest bit of the first byte set) cannot be a NIC's")
	case mac.String() == "00:00:00:00:00:00":
		return bad("the all-zero address cannot be a NIC's")
	}
	return mac, nil
}
