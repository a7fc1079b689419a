package kstriptest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FromConfig turns a kernel configuration, written in a reduced form of
// config(5), into the cfdata entries and the interface attributes each
// driver provides, computed the way config(1) computes them:
//
//	device mainbus: isabus pcibus cpubus   the interface attributes a driver provides
//	attach com at isa with com_isa         an attachment (cf_atname; the driver
//	                                       name when "with" is left out), at one or
//	                                       more interface attributes
//	com0 at isa? port 0x3f8                an instance; locators are ignored
//	pci* at mainbus? bus ?
//	atabus* at ata?                        at an interface attribute alone
//	mainbus0 at root
//
// A parent named by a driver gives cfparent {attribute, driver, unit or
// -1 for "?"}, the attribute being the one the driver provides that the
// child attaches at; a parent that is only an attribute gives {attribute,
// NULL, 0}. A "foo*" entry's unit is one past the highest fixed unit of
// foo (config(1)'s d_umax). Lines starting with '#' are comments.
func FromConfig(text string) ([]Entry, map[string][]string, error) {
	c := &config{provides: map[string][]string{}, attach: map[string][]attachment{}}
	var insts []instance
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(strings.ReplaceAll(line, ",", " "))
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var err error
		switch f[0] {
		case "device":
			err = c.device(f[1:])
		case "attach":
			err = c.attachment(f[1:])
		default:
			var in instance
			in, err = parseInstance(f)
			insts = append(insts, in)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("config line %d %q: %w", n+1, strings.TrimSpace(line), err)
		}
	}
	umax := map[string]int{}
	for _, in := range insts {
		if !in.star {
			umax[in.name] = max(umax[in.name], in.unit+1)
		}
	}
	out := make([]Entry, 0, len(insts))
	for _, in := range insts {
		e, err := c.entry(in, umax)
		if err != nil {
			return nil, nil, fmt.Errorf("config %q: %w", in.spec, err)
		}
		out = append(out, e)
	}
	return out, c.provides, nil
}

type attachment struct {
	name string
	at   []string
}

type config struct {
	provides map[string][]string
	attach   map[string][]attachment
}

type instance struct {
	spec             string
	name             string
	unit             int
	star             bool
	parent           string // driver or attribute; "" for root
	parentUnit       int
	parentIsWildcard bool
}

func (c *config) device(f []string) error {
	if len(f) == 0 {
		return fmt.Errorf("device without a name")
	}
	name := strings.TrimSuffix(f[0], ":")
	if _, dup := c.provides[name]; dup {
		return fmt.Errorf("device %s defined twice", name)
	}
	c.provides[name] = append([]string{}, f[1:]...)
	return nil
}

func (c *config) attachment(f []string) error {
	// DEV at ATTR... [with NAME]
	if len(f) < 3 || f[1] != "at" {
		return fmt.Errorf("want: attach DEVICE at ATTRIBUTE... [with NAME]")
	}
	a := attachment{name: f[0]}
	rest := f[2:]
	if i := slices.Index(rest, "with"); i >= 0 {
		if i != len(rest)-2 {
			return fmt.Errorf("want one name after with")
		}
		a.name = rest[i+1]
		rest = rest[:i]
	}
	if len(rest) == 0 {
		return fmt.Errorf("attachment %s at nothing", a.name)
	}
	a.at = rest
	c.attach[f[0]] = append(c.attach[f[0]], a)
	return nil
}

func parseInstance(f []string) (instance, error) {
	if len(f) < 3 || f[1] != "at" {
		return instance{}, fmt.Errorf("want: NAME(UNIT|*) at PARENT(UNIT|?)|root [locators]")
	}
	in := instance{spec: strings.Join(f[:3], " ")}
	var err error
	if in.name, in.unit, in.star, err = splitUnit(f[0]); err != nil {
		return in, err
	}
	if f[2] == "root" {
		return in, nil
	}
	var star bool
	if in.parent, in.parentUnit, star, err = splitUnit(f[2]); err != nil {
		return in, err
	}
	if star {
		return in, fmt.Errorf("parent %s: write foo? for any unit", f[2])
	}
	in.parentIsWildcard = strings.HasSuffix(f[2], "?")
	return in, nil
}

// splitUnit splits "com0", "com*" or "isa?" (unit -1) into name and unit.
func splitUnit(s string) (name string, unit int, star bool, err error) {
	switch {
	case strings.HasSuffix(s, "*"):
		return s[:len(s)-1], 0, true, nil
	case strings.HasSuffix(s, "?"):
		return s[:len(s)-1], -1, false, nil
	}
	name = strings.TrimRight(s, "0123456789")
	if name == s || name == "" {
		return "", 0, false, fmt.Errorf("%q has no unit (foo0, foo* or foo?)", s)
	}
	unit, err = strconv.Atoi(s[len(name):])
	return name, unit, false, err
}

func (c *config) entry(in instance, umax map[string]int) (Entry, error) {
	e := Entry{Name: in.name, Unit: in.unit, Spec: in.spec}
	if in.star {
		e.Unit, e.State = umax[in.name], 2
	}
	if _, ok := c.provides[in.name]; !ok {
		return e, fmt.Errorf("no device %s", in.name)
	}
	if in.parent == "" {
		for _, a := range c.attach[in.name] {
			if slices.Contains(a.at, "root") {
				e.Attach = a.name
				return e, nil
			}
		}
		return e, fmt.Errorf("%s has no attachment at root", in.name)
	}
	// The attributes the child may attach at through this parent.
	offered := []string{in.parent}
	atDriver := false
	if attrs, ok := c.provides[in.parent]; ok {
		offered, atDriver = attrs, true
	}
	var found []string
	for _, a := range c.attach[in.name] {
		for _, at := range a.at {
			if slices.Contains(offered, at) {
				e.Attach = a.name
				found = append(found, at)
				e.Parent = &Parent{IAttr: at}
			}
		}
	}
	switch {
	case len(found) == 0:
		return e, fmt.Errorf("%s has no attachment at an attribute %s provides (%v)", in.name, in.parent, offered)
	case len(found) > 1:
		return e, fmt.Errorf("%s could attach at %s through %v: ambiguous", in.name, in.parent, found)
	}
	if atDriver {
		e.Parent.Name, e.Parent.Unit = in.parent, in.parentUnit
	} else if !in.parentIsWildcard {
		return e, fmt.Errorf("%s is an interface attribute: write %s?", in.parent, in.parent)
	}
	return e, nil
}
