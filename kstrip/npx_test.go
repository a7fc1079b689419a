package kstrip

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/realnetbsd"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// npxConfig has the shape of a pre-6.0 i386 kernel's FPU attachment
// (npx0 at isa?, as in the 5.99.15 kernel), beside pckbc, which the
// default list disables.
const npxConfig = `
device mainbus: isabus
attach mainbus at root
device isa: isa
attach isa at isabus
device npx
attach npx at isa with npx_isa
device pckbc
attach pckbc at isa with pckbc_isa
mainbus0 at root
isa0 at mainbus?
npx0 at isa?
pckbc0 at isa?
`

// TestDefaultKeepKeepsNpx: the default keep list disabled npx, the FPU
// driver of pre-6.0 i386 kernels. Checked on a kernel of that shape and,
// when it is here, on the real 5.99.15 kernel (its entry npx0 at isa?).
func TestDefaultKeepKeepsNpx(t *testing.T) {
	entries, provides, err := kstriptest.FromConfig(npxConfig)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: entries, Provides: provides}))
	checkNpxKept(t, k, "pckbc0")

	kernel, _ := realnetbsd.Files(t)
	f, err := ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	real, err := Parse(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	checkNpxKept(t, real, "pckbc0")
}

// checkNpxKept strips k with DefaultKeep (names the kernel lacks only
// noted, as up does) and checks that npx0 stays enabled and other stays
// disabled.
func checkNpxKept(t *testing.T, k *Kernel, other string) {
	t.Helper()
	r, err := k.Plan(Plan{Strip: true, Keep: DefaultKeep, IgnoreUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(r); err != nil {
		t.Fatal(err)
	}
	for name, wantOn := range map[string]bool{"npx0": true, other: false} {
		idx := k.Match(name)
		if len(idx) == 0 {
			t.Fatalf("no entry %s", name)
		}
		for _, i := range idx {
			if on := !k.Entries[i].State.Disabled(); on != wantOn {
				t.Errorf("%s (entry %d): enabled %v after the default strip, want %v", name, i, on, wantOn)
			}
		}
	}
}

// TestApplicable: a keep list as it applies to a kernel keeps the names
// it knows and counts missing the others but the era names; a list none
// of whose names the kernel knows is refused (ErrNothingKept), since a
// strip keeping nothing disables all but the roots.
func TestApplicable(t *testing.T) {
	with := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}, {Name: "npx", Attach: "npx_isa"}}
	without := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}}
	tests := []struct {
		name          string
		entries       []kstriptest.Entry
		in            []string
		kept, missing []string
		err           error
		msg           string // the error's text
	}{
		{"era name present", with, []string{"mainbus", "npx"}, []string{"mainbus", "npx"}, nil, nil, ""},
		{"era name missing", without, []string{"mainbus", "npx"}, []string{"mainbus"}, nil, nil, ""},
		{"other name missing", without, []string{"mainbus", "nosuchdrv", "npx"}, []string{"mainbus"}, []string{"nosuchdrv"}, nil, ""},
		{"nothing known", without, []string{"nosuchdrv", "npx"}, nil, []string{"nosuchdrv"}, ErrNothingKept,
			"no keep or enable name matches an entry of this kernel (nosuchdrv, npx): stripping would disable every entry but the root mainbus0, and the kernel would attach nothing"},
		// It said "no keep or enable name matches an entry of this
		// kernel ()", as if names had been given.
		{"nothing given", without, nil, nil, nil, ErrNothingKept,
			"no names given to keep: stripping would disable every entry but the root mainbus0, and the kernel would attach nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: tt.entries}))
			kept, missing, err := k.Applicable(tt.in)
			if !slices.Equal(kept, tt.kept) || !slices.Equal(missing, tt.missing) || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("Applicable(%q) = %q, %q, %v; want %q, %q, %v", tt.in, kept, missing, err, tt.kept, tt.missing, tt.err)
			}
			if err != nil && err.Error() != tt.msg {
				t.Errorf("Applicable(%q): %q, want %q", tt.in, err, tt.msg)
			}
		})
	}
}

// TestApplicableRealKernel: on the 5.99.15 kernel, which predates virtio
// and names its serial attachment otherwise, DefaultKeep as Applicable
// gives it strips without IgnoreUnknown (the package example's way); it
// kept the names the kernel lacks, and the Plan failed on them.
func TestApplicableRealKernel(t *testing.T) {
	k := realKernel(t)
	kept, missing, err := k.Applicable(DefaultKeep)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"acpicpu", "com_isa", "virtio", "ld_virtio", "vioif"}; !slices.Equal(missing, want) {
		t.Errorf("missing %q, want %q", missing, want)
	}
	if !slices.Contains(kept, "npx") || !slices.Contains(kept, "mainbus") {
		t.Errorf("kept %q, want npx and mainbus among them", kept)
	}
	if _, err := k.Plan(Plan{Strip: true, Keep: kept}); err != nil {
		t.Fatal(err)
	}
}

// TestEraNamesInUserLists: the default keep list as help shows it (with
// npx) failed as a --keep list on every kernel after 6.0, which lacks npx:
// a user list gave the era names no leniency. An era name a kernel lacks
// is now skipped with a note in any list; a list of nothing else still
// keeps nothing (ErrNothingKept), and a misspelt name still fails.
func TestEraNamesInUserLists(t *testing.T) {
	withNpx := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"},
		{Name: "npx", Attach: "npx_isa", State: 2, Parent: par("mainbus", "mainbus", -1)}}
	note := `keep name "npx" is not in this kernel: the i386 FPU driver of kernels before NetBSD 6.0, which later ones lack; skipped`
	tests := []struct {
		name    string
		entries []kstriptest.Entry
		plan    Plan
		notes   []string
		err     error
	}{
		{"default list as a keep list", generic, Plan{Strip: true, Keep: DefaultKeep}, []string{note}, nil},
		{"disable", generic, Plan{Disable: []string{"npx", "fdc"}}, []string{strings.Replace(note, "keep", "disable", 1)}, nil},
		{"enable", generic, Plan{Enable: []string{"npx"}}, []string{strings.Replace(note, "keep", "enable", 1)}, nil},
		{"era name alone", generic, Plan{Strip: true, Keep: []string{"npx"}}, nil, ErrNothingKept},
		{"era name alone, unknown ignored", generic, Plan{Strip: true, Keep: []string{"npx"}, IgnoreUnknown: true}, nil, ErrNothingKept},
		{"misspelt", generic, Plan{Strip: true, Keep: []string{"mainbus", "npz"}}, nil, ErrUnknownName},
		{"kernel has it", withNpx, Plan{Strip: true, Keep: []string{"mainbus", "npx"}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: tt.entries}))
			r, err := k.Plan(tt.plan)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Plan(%+v) error %v, want %v", tt.plan, err, tt.err)
			}
			if err != nil {
				return
			}
			if !slices.Equal(r.Notes, tt.notes) || len(r.Unknown) != 0 || len(otherWarnings(r)) != len(r.Warnings) {
				t.Errorf("notes %q, unknown %+v, warnings %q; want notes %q", r.Notes, r.Unknown, r.Warnings, tt.notes)
			}
			if tt.name == "default list as a keep list" {
				want, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(t, k)})
				if err != nil || !slices.Equal(r.Changes, want.Changes) {
					t.Errorf("changes differ from the default strip's: %v", err)
				}
			}
		})
	}
}
