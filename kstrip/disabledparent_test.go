package kstrip

import (
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/internal/realnetbsd"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestDisabledParent: disabling the parent a kept entry needs warned once
// per cfdata entry of it ("isa0 (isa) is both kept and disabled" five
// times on the 5.99.15 kernel), said nothing of the kept entry now unable
// to attach, and still kept and reported the bridges "for isa0", which
// was disabled. Now the label is warned of once, the orphan is named, and
// only the parents of entries that stay enabled are kept.
func TestDisabledParent(t *testing.T) {
	npxEntries, npxProvides, err := kstriptest.FromConfig(npxConfig)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		kernel   func(t *testing.T) *Kernel
		plan     Plan
		warnings []string // each warning, in order
		parents  []string // label@attach of the kept parents
		enabled  []string // label@attach of the entries enabled after
	}{
		{
			name:   "real 5.99.15: npx without isa",
			kernel: realKernel,
			plan:   Plan{Strip: true, Keep: []string{"mainbus", "npx"}, Disable: []string{"isa"}},
			warnings: []string{
				"isa0 (isa) is both kept and disabled: disabling wins",
				"npx0 (npx_isa) is kept, but every entry it may attach at (isa?) is disabled: it cannot attach",
			},
			enabled: []string{"mainbus0@mainbus", "npx0@npx_isa"},
		},
		{
			name:   "real 5.99.15: one bridge of several disabled",
			kernel: realKernel,
			plan:   Plan{Strip: true, Keep: []string{"mainbus", "npx"}, Disable: []string{"pcib"}},
			// isa0 at pcib? has no parent left, but isa0 attaches at
			// ichlpcib and the other bridges still: no orphan.
			warnings: []string{
				"pcib* (pcib) is both kept and disabled: disabling wins",
			},
			parents: []string{"isa0@isa", "isa0@isa", "isa0@isa", "isa0@isa", "isa0@isa", "gcscpcib*@gcscpcib", "ichlpcib*@ichlpcib", "pceb*@pceb",
				"pci*@pci", "pci*@pci", "pci*@pci", "pci*@pci", "pchb*@pchb", "ppb*@ppb", "elansc*@elansc"},
		},
		{
			name:   "npx without isa",
			kernel: synthetic(kstriptest.Options{Bits: 32, Entries: npxEntries, Provides: npxProvides}),
			plan:   Plan{Strip: true, Keep: []string{"npx"}, Disable: []string{"isa"}},
			warnings: []string{
				"isa0 (isa) is both kept and disabled: disabling wins",
				"npx0 (npx_isa) is kept, but every entry it may attach at (isa?) is disabled: it cannot attach",
			},
			enabled: []string{"mainbus0@mainbus", "npx0@npx_isa"}, // the root stays
		},
		{
			name:   "com0 without its three isa entries",
			kernel: synthetic(kstriptest.Options{Bits: 64, Entries: generic}),
			plan:   Plan{Strip: true, Keep: []string{"mainbus", "com0"}, Disable: []string{"isa"}},
			warnings: []string{
				"isa0 (isa) is both kept and disabled: disabling wins",
				"com0 (com_isa) is kept, but every entry it may attach at (isa?) is disabled: it cannot attach",
			},
			enabled: []string{"mainbus0@mainbus", "com0@com_isa"},
		},
		{
			name:   "enable without stripping",
			kernel: synthetic(kstriptest.Options{Bits: 64, Entries: generic}),
			plan:   Plan{Enable: []string{"com0"}, Disable: []string{"isa"}},
			warnings: []string{
				"isa0 (isa) is both kept and disabled: disabling wins",
				"com0 (com_isa) is kept, but every entry it may attach at (isa?) is disabled: it cannot attach",
			},
		},
		{
			name:     "kept and disabled by name",
			kernel:   synthetic(kstriptest.Options{Bits: 64, Entries: generic}),
			plan:     Plan{Strip: true, Keep: []string{"mainbus", "isa"}, Disable: []string{"isa"}},
			warnings: []string{"isa0 (isa) is both kept and disabled: disabling wins"},
			enabled:  []string{"mainbus0@mainbus"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.kernel(t)
			r, err := k.Plan(tc.plan)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Warnings, tc.warnings) {
				t.Errorf("warnings\n got %q\nwant %q", r.Warnings, tc.warnings)
			}
			if got := labels(r.KeptParents); !slices.Equal(got, tc.parents) {
				t.Errorf("kept parents\n got %v\nwant %v", got, tc.parents)
			}
			if !tc.plan.Strip {
				return
			}
			if err := k.Apply(r); err != nil {
				t.Fatal(err)
			}
			if tc.enabled == nil {
				return
			}
			var on []string
			for _, e := range k.Entries {
				if !e.State.Disabled() {
					on = append(on, e.Label()+"@"+e.Attach)
				}
			}
			if !slices.Equal(on, tc.enabled) {
				t.Errorf("enabled after\n got %v\nwant %v", on, tc.enabled)
			}
		})
	}
}

// realKernel parses the 5.99.15 kernel, skipping where it is not.
func realKernel(t *testing.T) *Kernel {
	kernel, _ := realnetbsd.Files(t)
	f, err := ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Parse(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// synthetic builds and parses a kernel of o's shape.
func synthetic(o kstriptest.Options) func(t *testing.T) *Kernel {
	return func(t *testing.T) *Kernel {
		k, _ := parseFile(t, buildKernel(t, o))
		return k
	}
}
