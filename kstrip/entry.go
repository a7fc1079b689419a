package kstrip

import (
	"fmt"
	"strconv"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// AnyUnit is a parent unit of -1 (DVUNIT_ANY): "attached at foo?".
const AnyUnit = -1

// Parent is an entry's cf_pspec: where the device attaches.
type Parent struct {
	// IAttr is the interface attribute the parent provides (cfp_iattr).
	IAttr string `json:"iattr"`
	// Name is the parent driver's name (cfp_parent), or "" when any
	// device providing IAttr will do.
	Name string `json:"name"`
	// Unit is the parent's unit, or AnyUnit. Without Name it means
	// nothing (config(1) writes 0 and NetBSD ignores it).
	Unit int `json:"unit"`
}

// String renders p the way a kernel configuration file says it:
// "isa?", "mainbus0", or "[ata]?" for an interface attribute alone; the
// names are made Printable.
func (p *Parent) String() string {
	if p == nil {
		return "root"
	}
	if p.Name == "" {
		// config(1) writes unit 0 here; NetBSD does not look at it.
		return "[" + Printable(p.IAttr) + "]?"
	}
	name := Printable(p.Name)
	if p.Unit == AnyUnit {
		return name + "?"
	}
	return name + strconv.Itoa(p.Unit)
}

// Entry is one element of the cfdata array.
type Entry struct {
	// Index is the position in cfdata (userconf's devno).
	Index int `json:"index"`
	// Name is the driver name (cf_name), e.g. "com".
	Name string `json:"name"`
	// Attach is the attachment name (cf_atname), e.g. "com_isa".
	Attach string `json:"attach"`
	// Unit is cf_unit: the unit, or the first unit of a Star entry.
	Unit int `json:"unit"`
	// State is cf_fstate.
	State State `json:"state"`
	// Parent is cf_pspec; nil for entries attached at root. Entries with
	// one cf_pspec share one Parent: change it only for all of them.
	Parent *Parent `json:"parent"`
	// Offset is the entry's file offset.
	Offset int64 `json:"offset"`
}

// Label is the name userconf prints: "com0", or "com*" for Star entries,
// the name made Printable.
func (e *Entry) Label() string {
	if e.State.IsStar() {
		return Printable(e.Name) + "*"
	}
	return Printable(e.Name) + strconv.Itoa(e.Unit)
}

// Printable returns s, a name read from a kernel, as it may be printed to
// a terminal: s itself when it is all printable ASCII (every real name),
// else s quoted with Go's escapes ("evil\x1b[2J"), so that a hostile
// kernel's bytes cannot act on the terminal (see termsafe.Printable).
func Printable(s string) string { return termsafe.Printable(s) }

// canBeUnit reports whether e can attach as unit u of its driver: a fixed
// entry only as its own unit, a Star entry as any unit from cf_unit up
// (config_devalloc numbers Star devices from cf_unit).
func (e *Entry) canBeUnit(u int) bool {
	if u == AnyUnit {
		return true
	}
	if e.State.IsStar() {
		return u >= e.Unit
	}
	return u == e.Unit
}

// MarshalText makes State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for v := NotFound; v <= DNotFound; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown cfdata state %q", b)
}
