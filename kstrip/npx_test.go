package kstrip

import (
	"slices"
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

// TestApplicable: a keep list as it applies to a kernel drops only the era
// names the kernel lacks; any other name stays, for Plan to refuse.
func TestApplicable(t *testing.T) {
	with := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}, {Name: "npx", Attach: "npx_isa"}}
	without := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}}
	tests := []struct {
		name    string
		entries []kstriptest.Entry
		in      []string
		want    []string
	}{
		{"era name present", with, []string{"mainbus", "npx"}, []string{"mainbus", "npx"}},
		{"era name missing", without, []string{"mainbus", "npx"}, []string{"mainbus"}},
		{"other name missing", without, []string{"mainbus", "nosuchdrv", "npx"}, []string{"mainbus", "nosuchdrv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: tt.entries}))
			if got := k.Applicable(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Applicable(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
