package kstrip

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Plan says what to change in a kernel's cfdata.
type Plan struct {
	// Strip disables every entry that is not kept, and enables every kept
	// one, so the result does not depend on earlier runs.
	Strip bool
	// Keep names the entries that stay enabled when Strip is set; with
	// Strip and no Keep or Enable names, every entry is disabled but the
	// roots, which are never disabled (see Disable).
	Keep []string
	// Enable names entries to enable (and keep, when stripping).
	Enable []string
	// Disable names entries to disable; it wins over Keep and Enable. A
	// root entry (mainbus0 at root) is left enabled, with a warning: the
	// kernel attaches its root whatever the entry's state.
	Disable []string
	// IgnoreUnknown turns names that match no entry into warnings
	// instead of an error.
	IgnoreUnknown bool
}

// Change is one entry whose cf_fstate Apply rewrites.
type Change struct {
	Index  int    `json:"index"`  // the entry's index in the cfdata table
	Label  string `json:"label"`  // its name as userconf prints it (Entry.Label)
	Attach string `json:"attach"` // its attachment name (cf_atname)
	From   State  `json:"from"`   // its cf_fstate in the kernel as read
	To     State  `json:"to"`     // the cf_fstate Apply writes
}

// KeptParent is an entry kept only because a kept entry may attach to it.
type KeptParent struct {
	Index  int    `json:"index"`  // the entry's index in the cfdata table
	Label  string `json:"label"`  // its name as userconf prints it (Entry.Label)
	Attach string `json:"attach"` // its attachment name (cf_atname)
	// For is the label and attachment of the entry that needs it.
	For string `json:"for"`
}

// Unknown is a name that matched no entry.
type Unknown struct {
	// List is "keep", "enable" or "disable".
	List string `json:"list"`
	Name string `json:"name"` // the name as the list gave it
	// Suggestions are up to five close names of the kernel (Suggest),
	// for the first 64 unknown names of a Plan (maxSuggested): a list
	// with more is the wrong file, not misspelt, and the search costs
	// time for each.
	Suggestions []string `json:"suggestions"`
}

// maxSuggested bounds the unknown names of a Plan given Suggestions.
const maxSuggested = 64

// maxShown bounds the names an error lists: a wrong file (a kernel
// configuration given as a keep list) has hundreds.
const maxShown = 10

// Report is what Plan decided; Apply carries it out.
type Report struct {
	Changes     []Change     `json:"changes"`      // the entries whose state Apply rewrites, in table order
	KeptParents []KeptParent `json:"kept_parents"` // the entries kept only as a kept entry's possible parent
	Unknown     []Unknown    `json:"unknown"`      // the names that matched no entry
	Warnings    []string     `json:"warnings"`     // what was not done as asked, and why, a sentence each
	// Notes say what was skipped by design: an era name (EraNames) the
	// kernel lacks, in any list.
	Notes []string `json:"notes"`
}

// slowProbes are drivers that cost boot time in a microVM whatever the
// VMM does (docs/NETBSD-BOOT-NOTES.md, "The machine without firmware").
var slowProbes = map[string]string{
	"fdc":   "the floppy controller probe costs at least 1 s",
	"pckbc": "the keyboard controller probe polls up to 100,000 times",
}

// target is what Plan wants for one entry.
type target int8

const (
	leave target = iota
	enable
	disable
)

// Plan works out the changes p asks for without touching the image. It
// fails, changing nothing, with ErrNothingKept when a strip was given keep
// or enable names and none of them matches an entry, whether or not
// p.IgnoreUnknown is set, and otherwise when a name matches no entry,
// unless p.IgnoreUnknown is set.
func (k *Kernel) Plan(p Plan) (*Report, error) {
	r := &Report{}
	want := make([]target, len(k.Entries))
	explicit := make([]bool, len(k.Entries))
	sg := k.newSuggester()
	keep, keepEra := k.resolve(r, sg, "keep", p.Keep)
	en, enEra := k.resolve(r, sg, "enable", p.Enable)
	dis, _ := k.resolve(r, sg, "disable", p.Disable)
	// Checked before the unknown names: ignoring them would only reach
	// this refusal, so ErrUnknownName's way out is no way here.
	if p.Strip && len(keep)+len(en) == 0 && len(r.Unknown)+len(keepEra)+len(enEra) > 0 {
		// Every keep and enable name was unknown or an era name the
		// kernel lacks (a blank list never gets here with names):
		// disabling everything is never what was meant.
		names := slices.Concat(keepEra, enEra)
		var near []Unknown
		for _, u := range r.Unknown {
			if u.List != "disable" {
				names = append(names, u.Name)
				if len(u.Suggestions) > 0 {
					near = append(near, u)
				}
			}
		}
		if len(names) > 0 {
			return &Report{Unknown: r.Unknown}, k.nothingKept(names, near...)
		}
	}
	if len(r.Unknown) > 0 && !p.IgnoreUnknown {
		return r, unknownError(r.Unknown)
	}
	for _, u := range r.Unknown {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s name %q matches no entry%s", u.List, u.Name, didYouMean(u.Suggestions)))
	}
	seeds := en
	if p.Strip {
		seeds = append(append([]int(nil), keep...), en...)
	}
	for _, i := range seeds {
		explicit[i] = true
	}
	disabled := make([]bool, len(k.Entries))
	for _, i := range dis {
		// A root is never disabled (spareRoots), so its keeping stands.
		if k.Entries[i].Parent != nil {
			disabled[i] = true
		}
	}
	kept, overruled := k.withParents(r, seeds, explicit, disabled)
	if p.Strip {
		for i := range want {
			want[i] = disable
		}
	}
	for _, i := range kept {
		want[i] = enable
	}
	for _, i := range dis {
		want[i] = disable
	}
	k.spareRoots(r, want, dis)
	k.warnOverruled(r, overruled)
	k.warnOrphans(r, kept, want)
	for i := range k.Entries {
		k.change(r, i, want[i])
	}
	r.Warnings = once(r.Warnings)
	return r, nil
}

// once drops the repeats of the messages in ws, keeping their order: the
// entries of one label with one attachment and parent (a hostile table
// has tens of thousands) would each say the same.
func once(ws []string) []string {
	seen := make(map[string]bool, len(ws))
	out := ws[:0]
	for _, w := range ws {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// resolve matches names and records those that match nothing, each name
// once however often the list repeats it. An era name the kernel lacks is
// no mistake (the default list as help shows it, given whole, names npx
// on every kernel after 6.0): it is noted and returned in era instead.
func (k *Kernel) resolve(r *Report, sg *suggester, list string, names []string) (out []int, era []string) {
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		m := k.Match(n)
		if len(m) == 0 && slices.Contains(EraNames, n) {
			era = append(era, n)
			r.Notes = append(r.Notes, fmt.Sprintf("%s name %q is not in this kernel: %s; skipped", list, n, eraWhat(n)))
			continue
		}
		if len(m) == 0 {
			u := Unknown{List: list, Name: n}
			if len(r.Unknown) < maxSuggested {
				u.Suggestions = sg.suggest(n)
			}
			r.Unknown = append(r.Unknown, u)
		}
		out = append(out, m...)
	}
	return out, era
}

// firstFew joins the first maxShown of names with sep, and says how
// many more there are.
func firstFew(names []string, sep string) string {
	if len(names) <= maxShown {
		return strings.Join(names, sep)
	}
	return fmt.Sprintf("%s%sand %d more", strings.Join(names[:maxShown], sep), sep, len(names)-maxShown)
}

// withParents returns seeds plus, recursively, every entry a kept entry
// may attach to: an entry of the parent driver that can take the parent
// unit (any entry for "foo?", a fixed "foo0" or a Star entry starting at
// or below the unit for "foo0"), or for "at attr?" every entry, whatever
// its unit, of any driver that provides the interface attribute (config(1)
// writes unit 0 there and cfparent_match ignores it). Keeping every
// candidate is what makes the child attach whichever parent the machine
// has. An entry marked disabled, seed or parent, is not kept, nor are the
// parents only it needs: it is returned in overruled instead, in table
// order.
func (k *Kernel) withParents(r *Report, seeds []int, explicit, disabled []bool) (out, overruled []int) {
	in := make([]bool, len(k.Entries))
	idx := newParentIndex(k)
	var queue []int
	for _, i := range seeds {
		if !in[i] {
			in[i] = true
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		if disabled[i] {
			overruled = append(overruled, i)
			continue
		}
		out = append(out, i)
		e := &k.Entries[i]
		p := e.Parent
		if p == nil {
			continue
		}
		var providers []string
		if p.Name == "" {
			var known bool
			if providers, known = k.Providers(p.IAttr); !known {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) attaches at any device with interface attribute %q, and this kernel has no driver table (cfdriver_list_initial) saying which drivers provide it: keep that device yourself", e.Label(), Printable(e.Attach), p.IAttr))
				continue
			}
		}
		cands, found := idx.candidates(p, providers)
		for _, j := range cands {
			if in[j] {
				continue
			}
			in[j] = true
			queue = append(queue, j)
			if !explicit[j] && !disabled[j] {
				c := &k.Entries[j]
				r.KeptParents = append(r.KeptParents, KeptParent{Index: j, Label: c.Label(), Attach: c.Attach, For: e.Label() + " (" + Printable(e.Attach) + ")"})
			}
		}
		switch {
		case found:
		case p.Name == "":
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) attaches at any device with interface attribute %q, but no driver of this kernel provides it", e.Label(), Printable(e.Attach), p.IAttr))
		default:
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) attaches at %s, but no cfdata entry can be that parent", e.Label(), Printable(e.Attach), p))
		}
	}
	sort.Ints(overruled)
	return out, overruled
}

// spareRoots leaves alone each root entry (no parent: mainbus0 at root)
// that want would disable, and warns of those dis names. The kernel finds
// its root by name whatever the entry's state (config_rootsearch in
// NetBSD's sys/kern/subr_autoconf.c skips no state), so disabling one
// changes nothing on a release kernel, and on a DIAGNOSTIC one trips
// config_attach's assertion that the entry it attaches is NOTFOUND. A
// strip that keeps nothing below a root leaves it quietly: the root
// probes no hardware.
func (k *Kernel) spareRoots(r *Report, want []target, dis []int) {
	warned := map[int]bool{}
	for _, i := range dis {
		if e := &k.Entries[i]; e.Parent == nil && !warned[i] {
			warned[i] = true
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) attaches at root, and the kernel attaches a root whatever its state: not disabled", e.Label(), Printable(e.Attach)))
		}
	}
	for i := range want {
		if want[i] == disable && k.Entries[i].Parent == nil {
			want[i] = leave
		}
	}
}

// nothingKept is the ErrNothingKept error for a strip none of whose keep
// and enable names (names) matches an entry. It names the close matches
// of the unknown names in near, since a misspelling is the likely cause.
func (k *Kernel) nothingKept(names []string, near ...Unknown) error {
	hint := ""
	if len(near) > 0 {
		parts := make([]string, 0, min(len(near), maxShown))
		for _, u := range near[:min(len(near), maxShown)] {
			// The suggestions are names read from the kernel, which a
			// hostile one fills with escape sequences, as didYouMean's.
			sugg := make([]string, len(u.Suggestions))
			for i, n := range u.Suggestions {
				sugg[i] = Printable(n)
			}
			parts = append(parts, strings.Join(sugg, " or ")+" for "+Printable(u.Name))
		}
		hint = " (did you mean " + strings.Join(parts, ", ") + "?)"
	}
	shown := make([]string, len(names))
	for i, n := range names {
		shown[i] = Printable(n)
	}
	return fmt.Errorf("%w of this kernel (%s): stripping would disable every entry but %s, and the kernel would attach nothing%s", ErrNothingKept, firstFew(shown, ", "), k.rootsText(), hint)
}

// rootsText names the root entries ("the root mainbus0"), or says there
// are none.
func (k *Kernel) rootsText() string {
	var roots []string
	for i := range k.Entries {
		if e := &k.Entries[i]; e.Parent == nil {
			roots = append(roots, e.Label())
		}
	}
	switch len(roots) {
	case 0:
		return "the roots (this kernel has none)"
	case 1:
		return "the root " + roots[0]
	}
	return "the roots " + strings.Join(roots, ", ")
}

// warnOverruled warns of the entries kept (by name or as a parent) and
// disabled, once per label: a driver has many entries of one label (isa0
// at mainbus, pcib, ichlpcib...), and one line says it of all.
func (k *Kernel) warnOverruled(r *Report, overruled []int) {
	var order []string
	attaches := map[string][]string{}
	for _, i := range overruled {
		e := &k.Entries[i]
		l := e.Label()
		if _, seen := attaches[l]; !seen {
			order = append(order, l)
		}
		if a := Printable(e.Attach); !slices.Contains(attaches[l], a) {
			attaches[l] = append(attaches[l], a)
		}
	}
	for _, l := range order {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) is both kept and disabled: disabling wins", l, strings.Join(attaches[l], ", ")))
	}
}

// warnOrphans warns, once per label, of a kept device whose every
// enabled entry has only disabled parents: it stays enabled, and can never
// attach. A device with another way in (isa0 at ichlpcib when pcib is
// disabled) is no orphan, and a parent the kernel lacks altogether was
// warned of by withParents.
func (k *Kernel) warnOrphans(r *Report, kept []int, want []target) {
	// A root is always there to attach at, whatever its state.
	on := func(j int) bool {
		return k.Entries[j].Parent == nil || want[j] == enable || want[j] == leave && !k.Entries[j].State.Disabled()
	}
	all, enabled := k.parentSet(func(int) bool { return true }), k.parentSet(on)
	asked := map[string]bool{}
	for _, i := range kept {
		asked[k.Entries[i].Label()] = true
	}
	type device struct {
		attachable        bool
		attaches, parents []string
	}
	var order []string
	devs := map[string]*device{}
	for j := range k.Entries {
		e := &k.Entries[j]
		l := e.Label()
		if !asked[l] || !on(j) {
			continue
		}
		d := devs[l]
		if d == nil {
			d = &device{}
			devs[l] = d
			order = append(order, l)
		}
		p := e.Parent
		if p == nil {
			d.attachable = true
			continue
		}
		providers, known := k.Providers(p.IAttr)
		switch {
		case p.Name == "" && !known, enabled.has(p, providers):
			d.attachable = true
		case all.has(p, providers):
			if a := Printable(e.Attach); !slices.Contains(d.attaches, a) {
				d.attaches = append(d.attaches, a)
			}
			if ps := p.String(); !slices.Contains(d.parents, ps) {
				d.parents = append(d.parents, ps)
			}
		}
	}
	for _, l := range order {
		if d := devs[l]; !d.attachable && len(d.attaches) > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) is kept, but every entry it may attach at (%s) is disabled: it cannot attach", l, strings.Join(d.attaches, ", "), strings.Join(d.parents, ", ")))
		}
	}
}

// change records the userconf transition for entry i, if any.
func (k *Kernel) change(r *Report, i int, t target) {
	e := &k.Entries[i]
	var to State
	var ok bool
	switch t {
	case enable:
		to, ok = e.State.enabled()
		if why, slow := slowProbes[e.Name]; slow {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s) stays enabled: %s at boot", e.Label(), Printable(e.Attach), why))
		}
	case disable:
		to, ok = e.State.disabled()
	default:
		return
	}
	if !ok {
		r.Warnings = append(r.Warnings, fmt.Sprintf("cfdata[%d] %s is in state %s, which userconf cannot change: left alone", i, e.Label(), e.State))
		return
	}
	if to != e.State {
		r.Changes = append(r.Changes, Change{Index: i, Label: e.Label(), Attach: e.Attach, From: e.State, To: to})
	}
}

func didYouMean(s []string) string {
	if len(s) == 0 {
		return ""
	}
	names := make([]string, len(s))
	for i, n := range s {
		names[i] = Printable(n)
	}
	return " (did you mean " + strings.Join(names, ", ") + "?)"
}

// UnknownError is returned by Plan when names match no entry: Names
// lists them.
type UnknownError struct{ Names []Unknown }

func unknownError(u []Unknown) error { return &UnknownError{Names: u} }

// Error lists the first unknown names (maxShown) with their close
// matches, and says how many more there are.
func (e *UnknownError) Error() string {
	n := min(len(e.Names), maxShown)
	parts := make([]string, n)
	for i, u := range e.Names[:n] {
		parts[i] = fmt.Sprintf("%s name %q matches no cfdata entry%s", u.List, u.Name, didYouMean(u.Suggestions))
	}
	msg := strings.Join(parts, "; ")
	if more := len(e.Names) - n; more > 0 {
		msg += fmt.Sprintf("; and %d more names match no entry", more)
	}
	return msg + " (fix the names, or ignore unknown names to go on without them)"
}

// Unwrap makes errors.Is(err, ErrUnknownName) true.
func (e *UnknownError) Unwrap() error { return ErrUnknownName }

// Apply writes the cf_fstate of every change in r, which must come from
// k.Plan, into the image and into Entries. It touches no other byte.
func (k *Kernel) Apply(r *Report) error {
	for _, c := range r.Changes {
		if c.Index < 0 || c.Index >= len(k.Entries) {
			return fmt.Errorf("change for cfdata[%d]: the table has %d entries: the report is not from this kernel", c.Index, len(k.Entries))
		}
	}
	for _, c := range r.Changes {
		off := k.StateOffset(c.Index)
		k.putState(off, c.To)
		k.Entries[c.Index].State = c.To
	}
	return nil
}
