package kstrip

import "sort"

// nameUnit is a driver and one of its units.
type nameUnit struct {
	name string
	unit int
}

// parentIndex finds the entries that can be a cfparent and hands each
// list out once, so keeping parents costs time linear in the table
// whatever its shape (a table where every entry hangs off another unit of
// the same driver would otherwise cost its size squared).
type parentIndex struct {
	k      *Kernel
	byName map[string][]int   // every entry of a driver, in table order
	fixed  map[nameUnit][]int // fixed-unit entries by driver and unit
	stars  map[string][]int   // Star entries of a driver, by ascending cf_unit
	// What was handed out already.
	whole     map[string]bool
	fixedDone map[nameUnit]bool
	starMark  map[string]int
	attrFound map[string]bool
}

func newParentIndex(k *Kernel) *parentIndex {
	x := &parentIndex{k: k, byName: map[string][]int{}, fixed: map[nameUnit][]int{}, stars: map[string][]int{},
		whole: map[string]bool{}, fixedDone: map[nameUnit]bool{}, starMark: map[string]int{}, attrFound: map[string]bool{}}
	for i := range k.Entries {
		e := &k.Entries[i]
		x.byName[e.Name] = append(x.byName[e.Name], i)
		if e.State.IsStar() {
			x.stars[e.Name] = append(x.stars[e.Name], i)
		} else {
			nu := nameUnit{e.Name, e.Unit}
			x.fixed[nu] = append(x.fixed[nu], i)
		}
	}
	for _, s := range x.stars {
		sort.SliceStable(s, func(a, b int) bool { return k.Entries[s[a]].Unit < k.Entries[s[b]].Unit })
	}
	return x
}

// candidates returns, in table order within each driver, the entries
// that can be parent p and were not handed out before, and whether any
// entry at all can be p. providers are the drivers that provide p.IAttr
// when p names no driver: cfparent_match then ignores the unit.
func (x *parentIndex) candidates(p *Parent, providers []string) (out []int, found bool) {
	if p.Name == "" {
		if f, done := x.attrFound[p.IAttr]; done {
			return nil, f
		}
		for _, name := range providers {
			found = len(x.byName[name]) > 0 || found
			out = append(out, x.all(name)...)
		}
		x.attrFound[p.IAttr] = found
		return out, found
	}
	if p.Unit == AnyUnit {
		return x.all(p.Name), len(x.byName[p.Name]) > 0
	}
	// Unit u: the fixed entries for u, and Star entries numbered from
	// cf_unit <= u (config_devalloc numbers them from cf_unit up).
	nu := nameUnit{p.Name, p.Unit}
	stars := x.stars[p.Name]
	found = len(x.fixed[nu]) > 0 || (len(stars) > 0 && x.k.Entries[stars[0]].Unit <= p.Unit)
	if x.whole[p.Name] {
		return nil, found
	}
	if !x.fixedDone[nu] {
		x.fixedDone[nu] = true
		out = append(out, x.fixed[nu]...)
	}
	m := x.starMark[p.Name]
	for ; m < len(stars) && x.k.Entries[stars[m]].Unit <= p.Unit; m++ {
		out = append(out, stars[m])
	}
	x.starMark[p.Name] = m
	sort.Ints(out)
	return out, found
}

// all hands out every entry of driver name, once.
func (x *parentIndex) all(name string) []int {
	if x.whole[name] {
		return nil
	}
	x.whole[name] = true
	return x.byName[name]
}

// parentSet says whether a set of entries holds one that can be a given
// parent, by the rules candidates follows, in constant time per driver
// asked of.
type parentSet struct {
	names   map[string]bool   // drivers with an entry in the set
	fixed   map[nameUnit]bool // fixed-unit entries in the set
	minStar map[string]int    // lowest cf_unit of a Star entry in the set
}

// parentSet is the set of entries i for which in(i) holds.
func (k *Kernel) parentSet(in func(i int) bool) *parentSet {
	s := &parentSet{names: map[string]bool{}, fixed: map[nameUnit]bool{}, minStar: map[string]int{}}
	for i := range k.Entries {
		if !in(i) {
			continue
		}
		e := &k.Entries[i]
		s.names[e.Name] = true
		if !e.State.IsStar() {
			s.fixed[nameUnit{e.Name, e.Unit}] = true
		} else if m, ok := s.minStar[e.Name]; !ok || e.Unit < m {
			s.minStar[e.Name] = e.Unit
		}
	}
	return s
}

// has reports whether the set holds an entry that can be parent p;
// providers are the drivers providing p.IAttr when p names no driver.
func (s *parentSet) has(p *Parent, providers []string) bool {
	if p.Name == "" {
		for _, n := range providers {
			if s.names[n] {
				return true
			}
		}
		return false
	}
	if p.Unit == AnyUnit {
		return s.names[p.Name]
	}
	if s.fixed[nameUnit{p.Name, p.Unit}] {
		return true
	}
	m, ok := s.minStar[p.Name]
	return ok && m <= p.Unit
}
