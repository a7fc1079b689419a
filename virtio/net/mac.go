package net

import (
	"crypto/sha256"
	"errors"
	"fmt"
	stdnet "net"
)

// ErrBadMAC is wrapped by every error about an address that cannot be a
// NIC's: ParseMAC's, and New's.
var ErrBadMAC = errors.New("bad MAC address")

// DefaultMAC returns the stable address for seed: 52:54:00 followed by the
// first three bytes of SHA-256(seed).
func DefaultMAC(seed string) stdnet.HardwareAddr {
	h := sha256.Sum256([]byte(seed))
	return stdnet.HardwareAddr{0x52, 0x54, 0x00, h[0], h[1], h[2]}
}

// ParseMAC parses a MAC address's text form: six hex bytes separated by ':' or '-'
// (52:54:00:12:34:56). It refuses multicast and all-zero addresses, which
// cannot name a NIC.
func ParseMAC(s string) (stdnet.HardwareAddr, error) {
	bad := func(why string) (stdnet.HardwareAddr, error) {
		return nil, fmt.Errorf("%w %q: %s; a NIC's address looks like 52:54:00:12:34:56", ErrBadMAC, s, why)
	}
	mac, err := stdnet.ParseMAC(s)
	if err != nil {
		return bad("not six hex bytes separated by ':' or '-'")
	}
	if why := nicAddrProblem(mac); why != "" {
		return bad(why)
	}
	return mac, nil
}

// checkNICAddr refuses an address that cannot be a NIC's, with an error
// wrapping ErrBadMAC.
func checkNICAddr(mac []byte) error {
	if why := nicAddrProblem(mac); why != "" {
		return fmt.Errorf("%w %s: %s", ErrBadMAC, stdnet.HardwareAddr(mac), why)
	}
	return nil
}

// nicAddrProblem says why mac cannot be a NIC's address ("" if it can).
func nicAddrProblem(mac []byte) string {
	switch {
	case len(mac) != 6:
		return fmt.Sprintf("%d bytes, an Ethernet address has 6", len(mac))
	case mac[0]&1 != 0:
		return "a multicast address (lowest bit of the first byte set) cannot be a NIC's"
	case [6]byte(mac) == [6]byte{}:
		return "the all-zero address cannot be a NIC's"
	}
	return ""
}
