package kstrip

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Match returns the indexes of the entries a name selects, the way
// userconf reads names, plus attachment names:
//   - "com": every entry of driver com, and every entry whose attachment
//     (cf_atname) is "com";
//   - "com_isa": every entry attached through com_isa;
//   - "com0": the fixed-unit entry for unit 0 (not "com*" entries);
//   - "com*": the Star entries of com.
//
// Names compare without regard to case, as in userconf.
func (k *Kernel) Match(name string) []int {
	name = strings.TrimSpace(name)
	var out []int
	if base, ok := strings.CutSuffix(name, "*"); ok {
		for i := range k.Entries {
			e := &k.Entries[i]
			if strings.EqualFold(e.Name, base) && e.State.IsStar() {
				out = append(out, i)
			}
		}
		return out
	}
	for i := range k.Entries {
		e := &k.Entries[i]
		if strings.EqualFold(e.Name, name) || strings.EqualFold(e.Attach, name) {
			out = append(out, i)
		}
	}
	if len(out) > 0 {
		return out
	}
	// NetBSD driver names never end in a digit, so trailing digits are a unit.
	base := strings.TrimRight(name, "0123456789")
	if base == name || base == "" {
		return nil
	}
	unit, err := strconv.Atoi(name[len(base):])
	if err != nil {
		return nil
	}
	for i := range k.Entries {
		e := &k.Entries[i]
		if strings.EqualFold(e.Name, base) && !e.State.IsStar() && e.Unit == unit {
			out = append(out, i)
		}
	}
	return out
}

// Known reports whether name selects at least one entry.
func (k *Kernel) Known(name string) bool { return len(k.Match(name)) > 0 }

// Suggest returns up to five names of this kernel (drivers, attachments,
// fixed units) closest to name by edit distance, for "did you mean" messages.
func (k *Kernel) Suggest(name string) []string {
	return k.newSuggester().suggest(name)
}

// suggester holds the names Suggest compares with, gathered once for
// all the names of a Plan.
type suggester struct {
	// names are the distinct names, each with its lowered form.
	names, lower []string
}

func (k *Kernel) newSuggester() *suggester {
	sg := &suggester{}
	seen := map[string]bool{}
	add := func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		sg.names = append(sg.names, s)
		sg.lower = append(sg.lower, strings.ToLower(s))
	}
	for i := range k.Entries {
		e := &k.Entries[i]
		add(e.Name)
		add(e.Attach)
		if !e.State.IsStar() {
			add(e.Label())
		}
	}
	return sg
}

// suggest returns up to five of sg's names closest to name.
func (sg *suggester) suggest(name string) []string {
	name = strings.ToLower(strings.TrimSpace(name))
	type cand struct {
		s string
		d int
	}
	var cands []cand
	limit := max(2, len(name)/3)
	for i, s := range sg.lower {
		// The distance is at least the difference in length: skip early.
		if len(s) > len(name)+limit || len(s) < len(name)-limit {
			continue
		}
		if d := editDistance(name, s); d <= limit {
			cands = append(cands, cand{sg.names[i], d})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].s < cands[j].s
	})
	out := make([]string, 0, 5)
	for _, c := range cands {
		if len(out) == 5 {
			break
		}
		out = append(out, c.s)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Applicable is a keep list the program chose, such as DefaultKeep
// (which covers several NetBSD releases and ports, none of which has every
// name), as it applies to this kernel: kept is the names it knows, in
// order, which a Plan takes without IgnoreUnknown; missing is the others
// but the EraNames, which a kernel of another release lacks by design.
// When the kernel knows none of names (a kernel of another port, whose
// root is no mainbus), or names is empty, it returns ErrNothingKept: a strip that keeps
// nothing disables every entry but the roots. A list the user gave goes
// to Plan whole instead, which refuses a misspelt name this would drop.
func (k *Kernel) Applicable(names []string) (kept, missing []string, err error) {
	for _, n := range names {
		switch {
		case k.Known(n):
			kept = append(kept, n)
		case !slices.Contains(EraNames, n):
			missing = append(missing, n)
		}
	}
	if len(names) == 0 {
		return nil, nil, noNamesError{k.rootsText()}
	}
	if len(kept) == 0 {
		return nil, missing, k.nothingKept(names)
	}
	return kept, missing, nil
}

// noNamesError is Applicable's ErrNothingKept for an empty list: no name
// was given to match, so ErrNothingKept's "no name matches" with an empty
// list of names would mislead.
type noNamesError struct{ roots string }

// Error says that no names were given, and what a strip would do.
func (e noNamesError) Error() string {
	return "no names given to keep: stripping would disable every entry but " + e.roots + ", and the kernel would attach nothing"
}

// Is makes errors.Is(err, ErrNothingKept) true.
func (e noNamesError) Is(target error) bool { return target == ErrNothingKept }
