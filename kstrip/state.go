package kstrip

import "fmt"

// State is a cfdata entry's cf_fstate, as defined in NetBSD's sys/device.h:
// a short up to NetBSD 9, an unsigned char from NetBSD 10 on.
type State int16

// The cf_fstate values. Autoconfiguration skips DStar and DNotFound.
const (
	NotFound  State = 0 // fixed unit, not attached yet
	Found     State = 1 // fixed unit, attached (only in a running kernel)
	Star      State = 2 // "foo*": any number of units
	DStar     State = 3 // disabled Star
	DNotFound State = 4 // disabled NotFound
)

// String returns the short name userconf-like tools use for s.
func (s State) String() string {
	switch s {
	case NotFound:
		return "notfound"
	case Found:
		return "found"
	case Star:
		return "star"
	case DStar:
		return "dstar"
	case DNotFound:
		return "dnotfound"
	}
	return fmt.Sprintf("unknown(%d)", int16(s))
}

// Disabled reports whether autoconfiguration skips an entry in state s.
func (s State) Disabled() bool { return s == DStar || s == DNotFound }

// IsStar reports whether s belongs to a "foo*" entry, enabled or not.
func (s State) IsStar() bool { return s == Star || s == DStar }

// disabled returns the state userconf's disable gives s, and false when
// userconf cannot disable it (Found, or a value it does not know).
func (s State) disabled() (State, bool) {
	switch s {
	case NotFound, DNotFound:
		return DNotFound, true
	case Star, DStar:
		return DStar, true
	}
	return s, false
}

// enabled returns the state userconf's enable gives s, and false when
// userconf cannot enable it.
func (s State) enabled() (State, bool) {
	switch s {
	case DNotFound, NotFound:
		return NotFound, true
	case DStar, Star:
		return Star, true
	case Found:
		return Found, true
	}
	return s, false
}
