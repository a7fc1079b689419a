package kstrip

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// checkOnlyStates fails unless every byte that differs between before and
// after lies in the cf_fstate of an entry r changed, and each such field
// now holds the new state.
func checkOnlyStates(t *testing.T, k *Kernel, r *Report, before, after []byte) {
	t.Helper()
	allowed := map[int64]bool{}
	for _, c := range r.Changes {
		off := k.StateOffset(c.Index)
		for j := 0; j < k.StateSize(); j++ {
			allowed[off+int64(j)] = true
		}
		if got := fileState(k, after, c.Index); got != c.To {
			t.Errorf("cfdata[%d] fstate in file = %v, want %v", c.Index, got, c.To)
		}
	}
	if len(before) != len(after) {
		t.Fatalf("size changed: %d -> %d", len(before), len(after))
	}
	diffs := 0
	for i := range before {
		if before[i] != after[i] {
			diffs++
			if !allowed[int64(i)] {
				t.Errorf("byte %#x changed (%#x -> %#x) outside every changed cf_fstate", i, before[i], after[i])
			}
		}
	}
	if len(r.Changes) > 0 && diffs == 0 {
		t.Errorf("%d changes but no byte differs", len(r.Changes))
	}
}

func states(k *Kernel) []State {
	s := make([]State, len(k.Entries))
	for i, e := range k.Entries {
		s[i] = e.State
	}
	return s
}

func labels(kp []KeptParent) []string {
	var s []string
	for _, p := range kp {
		s = append(s, p.Label+"@"+p.Attach)
	}
	return s
}

const (
	n  = NotFound
	s  = Star
	dn = DNotFound
	ds = DStar
)

// afterDefault is generic after a strip with DefaultKeep, as
// TestAfterDefaultDerived derives it from config(1)'s rules: mainbus, cpu,
// acpicpu, ioapic, acpi, both pci, the three isa, com0 and com1 at isa,
// virtio, ld at virtio and vioif are named; ppb, pcib and ichlpcib are
// parents of a named entry (pci at ppb?, isa at pcib? and at ichlpcib?);
// everything else is disabled (NotFound to DNotFound, Star to DStar; ne0
// was disabled at build time).
var afterDefault = []State{
	n, s, s, s, n, s, s, s, ds, s, s, n, n, n, n, n, // 0-15
	ds, ds, ds, dn, ds, dn, ds, ds, ds, ds, ds, ds, s, s, ds, ds, // 16-31
	s, dn, ds, ds, dn, ds, dn, dn, dn, ds, dn, ds, dn, // 32-44
}

// TestAfterDefaultDerived derives afterDefault from generic's table and
// DefaultKeep alone, by config(1)'s rules rather than kstrip's code: an
// entry is kept when the keep list names its driver or its attachment, or
// when it can be the parent of a kept entry (cfparent_match: the child's
// parent names the entry's driver, or only an interface attribute the
// driver provides; a parent unit matches a fixed entry of that unit, or a
// Star entry numbered from at most that unit; any unit matches "?"); every
// other entry is disabled.
func TestAfterDefaultDerived(t *testing.T) {
	named := map[string]bool{}
	for _, n := range DefaultKeep {
		named[n] = true
	}
	kept := make([]bool, len(generic))
	var keep func(i int)
	keep = func(i int) {
		if kept[i] {
			return
		}
		kept[i] = true
		pa := generic[i].Parent
		if pa == nil {
			return
		}
		for j, e := range generic {
			star := e.State == int16(Star) || e.State == int16(DStar)
			switch {
			case pa.Name == "" && !slices.Contains(kstriptest.GenericProvides[e.Name], pa.IAttr):
			case pa.Name != "" && e.Name != pa.Name:
			case pa.Unit >= 0 && star && e.Unit > pa.Unit:
			case pa.Unit >= 0 && !star && e.Unit != pa.Unit:
			default:
				keep(j)
			}
		}
	}
	for i, e := range generic {
		if named[e.Name] || named[e.Attach] {
			keep(i)
		}
	}
	want := make([]State, len(generic))
	for i, e := range generic {
		want[i] = State(e.State)
		switch {
		case kept[i]:
		case want[i] == NotFound:
			want[i] = DNotFound
		case want[i] == Star:
			want[i] = DStar
		}
	}
	if !slices.Equal(want, afterDefault) {
		t.Errorf("derived from config(1)'s rules:\n%v\nafterDefault:\n%v", want, afterDefault)
	}
}

func TestStripDefault(t *testing.T) {
	for _, v := range variants {
		k, orig := parseFile(t, buildKernel(t, v.opts(generic)))
		r, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(t, k)})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Apply(r); err != nil {
			t.Fatal(err)
		}
		if got := states(k); !slices.Equal(got, afterDefault) {
			t.Errorf("%v states after strip:\n got %v\nwant %v", v, got, afterDefault)
		}
		checkOnlyStates(t, k, r, orig, k.Bytes())
		wantParents := []string{"ppb*@ppb", "pcib*@pcib", "ichlpcib*@ichlpcib"}
		if got := labels(r.KeptParents); !slices.Equal(got, wantParents) {
			t.Errorf("%v kept parents %v, want %v", v, got, wantParents)
		}
		if w := otherWarnings(r); len(w) != 0 {
			t.Errorf("%v warnings: %q", v, w)
		}
		// npx (pre-6.0 kernels' FPU) is the one default name generic,
		// a 9.x-shaped table, lacks, and Applicable drops it: a typo in
		// any other would have failed the Plan.
		if got := unknownNames(r); len(got) != 0 {
			t.Errorf("%v default names not in the kernel: %q", v, got)
		}
		// A fresh parse of the written bytes reads the same states.
		k2, err := Parse(append([]byte(nil), k.Bytes()...))
		if err != nil || !slices.Equal(states(k2), afterDefault) {
			t.Errorf("%v reparse: %v %v", v, err, states(k2))
		}
	}
}

func TestIdempotent(t *testing.T) {
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	plans := []Plan{
		{Strip: true, Keep: defaultKeep(t, k)},
		{Strip: true, Keep: []string{"wd", "com0"}, Disable: []string{"fdc"}},
		{Disable: []string{"com*", "fdc"}, Enable: []string{"ne0"}},
	}
	for _, p := range plans {
		r1, err := k.Plan(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(r1.Changes) == 0 {
			t.Fatalf("%+v: the first run changes nothing, so the second proves nothing", p)
		}
		if err := k.Apply(r1); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		once := append([]byte(nil), k.Bytes()...)
		r2, err := k.Plan(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(r2.Changes) != 0 {
			t.Errorf("%+v: second run changes %+v", p, r2.Changes)
		}
		if err := k.Apply(r2); err != nil {
			t.Fatalf("%+v: second run: %v", p, err)
		}
		if string(once) != string(k.Bytes()) {
			t.Errorf("%+v: second run changed bytes", p)
		}
	}
}

func TestDisableEnable(t *testing.T) {
	tests := []struct {
		name    string
		plan    Plan
		changed map[int]State
	}{
		{"driver", Plan{Disable: []string{"fdc"}}, map[int]State{19: dn}},
		{"star entries", Plan{Disable: []string{"com*"}}, map[int]State{16: ds, 18: ds}},
		{"unit", Plan{Disable: []string{"com0"}}, map[int]State{14: dn}},
		{"all of a driver", Plan{Disable: []string{"com"}}, map[int]State{14: dn, 15: dn, 16: ds, 18: ds}},
		{"attachment", Plan{Disable: []string{"com_isa"}}, map[int]State{14: dn, 15: dn}},
		{"case and spaces", Plan{Disable: []string{" FDC ", "PCKBC0"}}, map[int]State{19: dn, 21: dn}},
		{"already disabled", Plan{Disable: []string{"ne"}}, map[int]State{}},
		{"enable disabled", Plan{Enable: []string{"ne0"}}, map[int]State{40: n}},
		{"fixed unit of star parent", Plan{Disable: []string{"sd"}}, map[int]State{42: dn, 43: ds}},
	}
	for _, tc := range tests {
		for _, v := range variants {
			t.Run(tc.name+"/"+v.String(), func(t *testing.T) {
				k, orig := parseFile(t, buildKernel(t, v.opts(generic)))
				r, err := k.Plan(tc.plan)
				if err != nil {
					t.Fatal(err)
				}
				if err := k.Apply(r); err != nil {
					t.Fatal(err)
				}
				checkOnlyStates(t, k, r, orig, k.Bytes())
				for i, e := range k.Entries {
					want := State(generic[i].State)
					if w, ok := tc.changed[i]; ok {
						want = w
					}
					if e.State != want {
						t.Errorf("cfdata[%d] %s = %v, want %v", i, e.Label(), e.State, want)
					}
				}
				if len(r.Changes) != len(tc.changed) {
					t.Errorf("%d changes, want %d", len(r.Changes), len(tc.changed))
				}
				// Undo: the reverse operation restores the original bytes.
				undo := Plan{Enable: tc.plan.Disable, Disable: tc.plan.Enable}
				r2, err := k.Plan(undo)
				if err != nil {
					t.Fatal(err)
				}
				if err := k.Apply(r2); err != nil {
					t.Fatal(err)
				}
				if tc.name != "already disabled" && string(k.Bytes()) != string(orig) {
					t.Errorf("undo %+v did not restore the original bytes", undo)
				}
			})
		}
	}
}

// scsibusFrom2 has config(1) number scsibus* from 2 (after scsibus1),
// and sd0 attach at scsibus0, which no entry can be: no fixed scsibus0,
// and the Star entry's units start above it.
const scsibusFrom2 = `
device mainbus: pcibus
attach mainbus at root
device pci: pci
attach pci at pcibus
device ahc: scsi
attach ahc at pci with ahc_pci
device scsibus: scsibus
attach scsibus at scsi
device sd
attach sd at scsibus
mainbus0 at root
pci* at mainbus?
ahc* at pci?
scsibus1 at ahc?
scsibus* at scsi?
sd0 at scsibus0 target 0 lun 0
`

func TestParentsKept(t *testing.T) {
	tests := []struct {
		name      string
		config    string // the table, in FromConfig's form; "" for generic
		noDrivers bool
		plan      Plan
		parents   []string
		warnings  []string
		enabled   []int
	}{
		{
			name:     "chain through a driver with three parents",
			plan:     Plan{Strip: true, Keep: []string{"wskbd"}},
			parents:  []string{"pckbd*@pckbd", "pckbc0@pckbc_isa", "isa0@isa", "isa0@isa", "isa0@isa", "mainbus0@mainbus", "pcib*@pcib", "ichlpcib*@ichlpcib", "pci*@pci", "pci*@pci", "ppb*@ppb"},
			warnings: []string{"pckbc0 (pckbc_isa) stays enabled"},
			enabled:  []int{0, 5, 6, 7, 9, 10, 11, 12, 13, 21, 22, 24},
		},
		{
			name:     "fixed parent unit served by a star entry",
			plan:     Plan{Strip: true, Keep: []string{"sd0"}},
			parents:  []string{"scsibus*@scsibus"},
			warnings: []string{`scsibus* (scsibus) attaches at any device with interface attribute "scsi", but no driver of this kernel provides it`},
			enabled:  []int{0, 41, 42}, // the root stays: TestRootsNotDisabled
		},
		{
			name:    "fixed parent unit served by a fixed entry",
			plan:    Plan{Strip: true, Keep: []string{"acpi"}},
			parents: []string{"mainbus0@mainbus"},
			enabled: []int{0, 4},
		},
		{
			name:    "enable brings its parents back, through an interface attribute",
			plan:    Plan{Strip: true, Keep: []string{"mainbus"}, Enable: []string{"wd"}},
			parents: []string{"atabus*@atabus", "pciide*@pciide", "wdc0@wdc_isa", "pci*@pci", "pci*@pci", "isa0@isa", "isa0@isa", "isa0@isa", "ppb*@ppb", "pcib*@pcib", "ichlpcib*@ichlpcib"},
			enabled: []int{0, 5, 6, 7, 9, 10, 11, 12, 13, 25, 26, 27, 44},
		},
		{
			name:      "interface attribute without a driver table",
			noDrivers: true,
			plan:      Plan{Strip: true, Keep: []string{"wd"}},
			parents:   []string{"atabus*@atabus"},
			warnings:  []string{`atabus* (atabus) attaches at any device with interface attribute "ata", and this kernel has no driver table`},
			enabled:   []int{0, 26, 27},
		},
		{
			name:     "fixed parent unit below every star entry's",
			config:   scsibusFrom2,
			plan:     Plan{Strip: true, Keep: []string{"sd0"}},
			warnings: []string{"sd0 (sd) attaches at scsibus0, but no cfdata entry can be that parent"},
			enabled:  []int{0, 5},
		},
		{
			name:     "disable wins over keep",
			plan:     Plan{Strip: true, Keep: []string{"com0"}, Disable: []string{"isa"}},
			warnings: []string{"isa0 (isa) is both kept and disabled", "com0 (com_isa) is kept, but every entry it may attach at (isa?) is disabled"},
			enabled:  []int{0, 14},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := kstriptest.Options{Bits: 64, Entries: generic, NoDrivers: tc.noDrivers}
			if tc.config != "" {
				var err error
				if o.Entries, o.Provides, err = kstriptest.FromConfig(tc.config); err != nil {
					t.Fatal(err)
				}
			}
			k, orig := parseFile(t, buildKernel(t, o))
			r, err := k.Plan(tc.plan)
			if err != nil {
				t.Fatal(err)
			}
			if got := labels(r.KeptParents); !slices.Equal(got, tc.parents) {
				t.Errorf("kept parents\n got %v\nwant %v", got, tc.parents)
			}
			if len(r.Warnings) != len(tc.warnings) {
				t.Errorf("warnings %q, want %d", r.Warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if i < len(r.Warnings) && !strings.Contains(r.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, r.Warnings[i], w)
				}
			}
			if err := k.Apply(r); err != nil {
				t.Fatal(err)
			}
			checkOnlyStates(t, k, r, orig, k.Bytes())
			for i, e := range k.Entries {
				if want := slices.Contains(tc.enabled, i); e.State.Disabled() == want {
					t.Errorf("cfdata[%d] %s (%s) is %v, want enabled=%v", i, e.Label(), e.Attach, e.State, want)
				}
			}
		})
	}
}

func TestCanBeUnit(t *testing.T) {
	tests := []struct {
		e    Entry
		unit int
		want bool
	}{
		{Entry{Unit: 0, State: NotFound}, 0, true},
		{Entry{Unit: 0, State: DNotFound}, 1, false},
		{Entry{Unit: 1, State: NotFound}, AnyUnit, true},
		{Entry{Unit: 2, State: Star}, 1, false},
		{Entry{Unit: 2, State: DStar}, 2, true},
		{Entry{Unit: 2, State: Star}, 7, true},
	}
	for _, tc := range tests {
		if got := tc.e.canBeUnit(tc.unit); got != tc.want {
			t.Errorf("%+v canBeUnit(%d) = %v", tc.e, tc.unit, got)
		}
	}
}

// TestUnknownNames: a misspelt name, or a unit no fixed entry has, is
// refused with suggestions. "ld0" is such a unit in a kernel whose ld
// entries are all "ld*": userconf reads a unit as a fixed entry's, so it
// must not disable every ld.
func TestUnknownNames(t *testing.T) {
	k, orig := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	_, err := k.Plan(Plan{Strip: true, Keep: []string{"vioff", "mainbus"}, Disable: []string{"com7", "ld0"}})
	if !errors.Is(err, ErrUnknownName) {
		t.Fatalf("err = %v, want ErrUnknownName", err)
	}
	for _, want := range []string{`keep name "vioff"`, "did you mean vioif", `disable name "com7"`, "com0", "com1", `disable name "ld0"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if string(k.Bytes()) != string(orig) {
		t.Error("a failed Plan changed the image")
	}
	r, err := k.Plan(Plan{Strip: true, Keep: []string{"vioff", "mainbus"}, IgnoreUnknown: true})
	if err != nil || len(r.Unknown) != 1 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "vioif") {
		t.Errorf("IgnoreUnknown: %v %+v", err, r)
	}
}

// TestApplyRejectsForeignReport: a change to an entry the table lacks
// (before its first or from one past its last) is refused, and nothing is
// written, not even the valid change before it; one to the last entry is
// applied.
func TestApplyRejectsForeignReport(t *testing.T) {
	path := buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic})
	n := len(generic)
	for _, tc := range []struct {
		index int
		ok    bool
	}{
		{-1, false},
		{n - 1, true},
		{n, false},
		{n + 1, false},
		{999, false},
	} {
		t.Run(itoa(int64(tc.index)), func(t *testing.T) {
			k, orig := parseFile(t, path)
			err := k.Apply(&Report{Changes: []Change{{Index: 0, To: DNotFound}, {Index: tc.index, To: DStar}}})
			if tc.ok {
				state := func(b []byte) State { return fileState(k, b, tc.index) }
				if err != nil || state(orig) == DStar || state(k.Bytes()) != DStar || k.Entries[tc.index].State != DStar {
					t.Errorf("Apply of a change to cfdata[%d] of %d: %v, cf_fstate %v, then %v; want it changed to %v", tc.index, n, err, state(orig), state(k.Bytes()), DStar)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cfdata[%d]: the table has %d entries", tc.index, n)) || string(k.Bytes()) != string(orig) {
				t.Errorf("Apply of a change to cfdata[%d] of %d: err %v, image changed %v", tc.index, n, err, string(k.Bytes()) != string(orig))
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"vioif", "vioff", 1}, {"com", "com0", 1}, {"kitten", "sitting", 3}, {"", "ld", 2}}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// TestNothingKept: a strip whose keep and enable names all miss this
// kernel would disable every entry but mainbus0, leaving a kernel that
// attaches nothing: refused, with or without IgnoreUnknown. The refusal
// comes first, not as ErrUnknownName, whose way out (ignoring unknown
// names) would only reach it; a close name is still suggested.
func TestNothingKept(t *testing.T) {
	k, orig := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	for _, tc := range []struct {
		name string
		plan Plan
		err  bool
		want string
	}{
		{"keep names all unknown", Plan{Strip: true, Keep: []string{"vioff", "nosuch"}, IgnoreUnknown: true}, true, "(vioff, nosuch)"},
		{"keep names all unknown, not ignored", Plan{Strip: true, Keep: []string{"vioff", "nosuch"}}, true, "attach nothing (did you mean vioif for vioff?)"},
		{"one keep name unknown, not ignored", Plan{Strip: true, Keep: []string{"nosuch"}}, true, "(nosuch): stripping would disable every entry but the root mainbus0, and the kernel would attach nothing"},
		{"keep and enable unknown", Plan{Strip: true, Keep: []string{"nosuch"}, Enable: []string{"nosuch0"}, IgnoreUnknown: true}, true, "(nosuch, nosuch0)"},
		{"keep and enable unknown, not ignored", Plan{Strip: true, Keep: []string{"nosuch"}, Enable: []string{"nosuch0"}}, true, "(nosuch, nosuch0)"},
		{"one enable name known", Plan{Strip: true, Keep: []string{"nosuch"}, Enable: []string{"com0"}, IgnoreUnknown: true}, false, ""},
		{"one keep name known", Plan{Strip: true, Keep: []string{"nosuch", "mainbus"}, IgnoreUnknown: true}, false, ""},
		{"no strip", Plan{Disable: []string{"nosuch"}, IgnoreUnknown: true}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := k.Plan(tc.plan)
			if !tc.err {
				if err != nil {
					t.Fatalf("err %v, want none", err)
				}
				return
			}
			if !errors.Is(err, ErrNothingKept) || errors.Is(err, ErrUnknownName) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (%d changes), want ErrNothingKept, not ErrUnknownName, saying %q", err, len(r.Changes), tc.want)
			}
			if !bytes.Equal(k.Bytes(), orig) {
				t.Error("the kernel changed")
			}
		})
	}
}

// unknownNames lists the names of r.Unknown.
func unknownNames(r *Report) []string {
	var out []string
	for _, u := range r.Unknown {
		out = append(out, u.Name)
	}
	return out
}

// otherWarnings are r's warnings but the one that npx, a default name
// only pre-6.0 kernels have, is missing.
func otherWarnings(r *Report) []string {
	var out []string
	for _, w := range r.Warnings {
		if !strings.HasPrefix(w, `keep name "npx" matches no entry`) {
			out = append(out, w)
		}
	}
	return out
}

// TestRootsNotDisabled: NetBSD attaches its root entry by name whatever
// its state (config_rootsearch), so a disabled mainbus0 changed nothing
// on a release kernel and tripped config_attach's KASSERT on a DIAGNOSTIC
// one; and a kept cpu* at mainbus? was said to be unable to attach. A
// root is now left enabled, with a warning.
func TestRootsNotDisabled(t *testing.T) {
	npxEntries, npxProvides, err := kstriptest.FromConfig(npxConfig)
	if err != nil {
		t.Fatal(err)
	}
	rootWarning := "mainbus0 (mainbus) attaches at root, and the kernel attaches a root whatever its state: not disabled"
	tests := []struct {
		name     string
		o        kstriptest.Options
		plan     Plan
		warnings []string
		changes  []string // label@attach of the changed entries
	}{
		{"disable the root", kstriptest.Options{Bits: 32, Entries: generic}, Plan{Disable: []string{"mainbus"}}, []string{rootWarning}, nil},
		{"disable the root of a kept entry", kstriptest.Options{Bits: 32, Entries: generic}, Plan{Enable: []string{"cpu"}, Disable: []string{"mainbus"}}, []string{rootWarning}, nil},
		{"strip needing no root", kstriptest.Options{Bits: 32, Entries: npxEntries, Provides: npxProvides}, Plan{Strip: true, Keep: []string{"npx"}, Disable: []string{"isa"}},
			[]string{"isa0 (isa) is both kept and disabled: disabling wins", "npx0 (npx_isa) is kept, but every entry it may attach at (isa?) is disabled: it cannot attach"},
			[]string{"isa0@isa", "pckbc0@pckbc_isa"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := parseFile(t, buildKernel(t, tc.o))
			r, err := k.Plan(tc.plan)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Warnings, tc.warnings) {
				t.Errorf("warnings\n got %q\nwant %q", r.Warnings, tc.warnings)
			}
			var changed []string
			for _, c := range r.Changes {
				if k.Entries[c.Index].Parent == nil {
					t.Errorf("root %s changed: %v -> %v", c.Label, c.From, c.To)
				}
				changed = append(changed, c.Label+"@"+c.Attach)
			}
			if tc.changes != nil && !slices.Equal(changed, tc.changes) {
				t.Errorf("changes\n got %v\nwant %v", changed, tc.changes)
			}
		})
	}
}

// TestUnknownNamesOnce: a wrong keep list (a kernel configuration) made
// an error of every word, "at" hundreds of times, and searched close
// names for each repeat. Each unknown name is now recorded once, close
// names are searched for the first maxSuggested, and errors list the
// first maxShown and count the rest.
func TestUnknownNamesOnce(t *testing.T) {
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	distinct := []string{"vioff", "at"}
	for i := len(distinct); i < 80; i++ {
		distinct = append(distinct, fmt.Sprintf("nosuch%d", i))
	}
	var keep []string
	for range 50 {
		keep = append(keep, distinct...)
	}
	tests := []struct {
		name     string
		plan     Plan
		is       error
		want     []string
		notWant  string
		unknowns int
	}{
		{"unknown names", Plan{Strip: true, Keep: append(keep, "mainbus")}, ErrUnknownName,
			[]string{`keep name "vioff" matches no cfdata entry (did you mean vioif?); keep name "at"`, `"nosuch9" matches no cfdata entry; and 70 more names match no entry (fix the names`}, `"nosuch10"`, len(distinct)},
		{"nothing kept", Plan{Strip: true, Keep: keep, IgnoreUnknown: true}, ErrNothingKept,
			[]string{"(vioff, at, nosuch2, ", "nosuch9, and 70 more)"}, "nosuch10", len(distinct)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := k.Plan(tt.plan)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, tt.notWant) || strings.Count(msg, `"at"`) > 1 || len(msg) > 1500 {
				t.Errorf("error of %d bytes %q: want the first %d names, each once", len(msg), msg, maxShown)
			}
			if got := unknownNames(r); !slices.Equal(got, distinct) {
				t.Errorf("Unknown = %q, want each name once: %q", got, distinct)
			}
			if u := r.Unknown; len(u[0].Suggestions) == 0 || u[maxSuggested-1].Suggestions == nil || u[maxSuggested].Suggestions != nil {
				t.Errorf("Suggestions of the first, %dth and %dth names: %q, %q, %q; want them searched for the first %d only", maxSuggested, maxSuggested+1, u[0].Suggestions, u[maxSuggested-1].Suggestions, u[maxSuggested].Suggestions, maxSuggested)
			}
		})
	}
}
