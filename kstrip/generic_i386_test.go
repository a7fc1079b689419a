package kstrip

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// i386Generic is kstriptest.I386Generic through the config(1) rules.
func i386Generic(t testing.TB) ([]kstriptest.Entry, map[string][]string) {
	t.Helper()
	entries, provides, err := kstriptest.FromConfig(kstriptest.I386Generic)
	if err != nil {
		t.Fatal(err)
	}
	return entries, provides
}

// enabledSpecs returns the config lines of the entries k leaves enabled.
func enabledSpecs(k *Kernel, entries []kstriptest.Entry) []string {
	var out []string
	for i, e := range k.Entries {
		if !e.State.Disabled() {
			out = append(out, entries[i].Spec)
		}
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// defaultKept is what must stay enabled in i386 GENERIC after a strip
// with DefaultKeep: every entry on a path from mainbus to com0, ld0 and
// vioif0 through any bridge the machine may have, plus cpu, acpi and the
// interrupt routers.
var defaultKept = []string{
	"mainbus0 at root", "cpu* at mainbus?", "ioapic* at mainbus?", "acpicpu* at cpu?", "acpi0 at mainbus0",
	"pci* at mainbus?", "pci* at pchb?", "pci* at ppb?", "pci* at elansc?", "elansc* at mainbus?",
	"pchb* at pci?", "ppb* at pci?",
	"ichlpcib* at pci?", "tcpcib* at pci?", "gcscpcib* at pci?", "viapcib* at pci?", "rdcpcib* at pci?", "pceb* at pci?", "pcib* at pci?",
	"isa0 at gcscpcib?", "isa0 at ichlpcib?", "isa0 at tcpcib?", "isa0 at viapcib?", "isa0 at rdcpcib?", "isa0 at mainbus?", "isa0 at pceb?", "isa0 at pcib?",
	"com0 at isa?", "com1 at isa?", "com2 at isa?",
	"virtio* at pci?", "ld* at virtio?", "vioif* at virtio?",
}

// TestConfigShapes checks that the generator writes cfdata the way
// config(1) does, on the entries parent matching depends on.
func TestConfigShapes(t *testing.T) {
	entries, provides := i386Generic(t)
	bySpec := map[string]kstriptest.Entry{}
	for _, e := range entries {
		bySpec[e.Spec] = e
	}
	tests := []struct {
		spec         string
		attach       string
		unit         int
		state        int16
		iattr, pname string
		punit        int
	}{
		{"isa0 at pcib?", "isa", 0, 0, "isabus", "pcib", -1},
		{"isa0 at mainbus?", "isa", 0, 0, "isabus", "mainbus", -1},
		{"pci* at pchb?", "pci", 0, 2, "pcibus", "pchb", -1},
		{"pchb* at pci?", "pchb", 0, 2, "pci", "pci", -1},
		{"acpi0 at mainbus0", "acpi", 0, 0, "acpibus", "mainbus", 0},
		{"est0 at cpu0", "est", 0, 0, "cpufeaturebus", "cpu", 0},
		{"com* at puc?", "com_puc", 3, 2, "puc", "puc", -1},
		{"com0 at isa?", "com_isa", 0, 0, "isa", "isa", -1},
		{"wdc* at isapnp?", "wdc_isapnp", 2, 2, "isapnp", "isapnp", -1},
		{"atabus* at ata?", "atabus", 0, 2, "ata", "", 0},
		{"sd* at atapibus?", "sd", 0, 2, "atapibus", "atapibus", -1},
		{"ld* at virtio?", "ld_virtio", 0, 2, "virtio", "virtio", -1},
		{"hpet* at tcpcib?", "ichlpcib_hpet", 0, 2, "hpetichbus", "tcpcib", -1},
	}
	for _, tc := range tests {
		e, ok := bySpec[tc.spec]
		if !ok {
			t.Errorf("no entry %q", tc.spec)
			continue
		}
		want := kstriptest.Parent{IAttr: tc.iattr, Name: tc.pname, Unit: tc.punit}
		if e.Attach != tc.attach || e.Unit != tc.unit || e.State != tc.state || e.Parent == nil || *e.Parent != want {
			t.Errorf("%s: attach %s unit %d state %d parent %+v, want %s %d %d %+v", tc.spec, e.Attach, e.Unit, e.State, e.Parent, tc.attach, tc.unit, tc.state, want)
		}
	}
	if got := sorted(provides["ichlpcib"]); !slices.Contains(got, "isabus") || !slices.Contains(got, "hpetichbus") {
		t.Errorf("ichlpcib provides %v", got)
	}
	if _, _, err := kstriptest.FromConfig("device a\nattach a at root\nb0 at a?\n"); err == nil {
		t.Error("an instance of an undefined device was accepted")
	}
}

// TestStripI386Generic strips a kernel whose cfdata has the shape of
// i386 GENERIC's with the default keep list, on both layouts, and checks
// every entry's state, the parents reported, that only fstate bytes
// changed, and that a fresh parse reads the same.
func TestStripI386Generic(t *testing.T) {
	entries, provides := i386Generic(t)
	for _, v := range variants {
		k, orig := parseFile(t, buildKernel(t, kstriptest.Options{Bits: v.bits, Version: v.version, Entries: entries, Provides: provides}))
		r, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(t, k)})
		if err != nil {
			t.Fatal(err)
		}
		if got := unknownNames(r); len(got) != 0 {
			t.Errorf("%v default names not in 9.x i386 GENERIC: %q", v, got)
		}
		if err := k.Apply(r); err != nil {
			t.Fatal(err)
		}
		if got, want := enabledSpecs(k, entries), sorted(defaultKept); !slices.Equal(got, want) {
			t.Errorf("%v enabled after the default strip:\n got %q\nwant %q", v, got, want)
		}
		for _, slow := range []string{"fdc", "pckbc"} {
			for _, i := range k.Match(slow) {
				if !k.Entries[i].State.Disabled() {
					t.Errorf("%v: %s stays enabled", v, entries[i].Spec)
				}
			}
		}
		var parents []string
		for _, p := range r.KeptParents {
			parents = append(parents, entries[p.Index].Spec)
		}
		wantParents := []string{"pchb* at pci?", "ppb* at pci?", "elansc* at mainbus?", "ichlpcib* at pci?", "tcpcib* at pci?",
			"gcscpcib* at pci?", "viapcib* at pci?", "rdcpcib* at pci?", "pceb* at pci?", "pcib* at pci?"}
		if got := sorted(parents); !slices.Equal(got, sorted(wantParents)) {
			t.Errorf("%v kept parents %q, want %q", v, got, sorted(wantParents))
		}
		if w := otherWarnings(r); len(w) != 0 {
			t.Errorf("%v warnings %q", v, w)
		}
		checkOnlyStates(t, k, r, orig, k.Bytes())
		k2, err := Parse(slices.Clone(k.Bytes()))
		if err != nil || !slices.Equal(states(k2), states(k)) {
			t.Errorf("%v reparse: %v", v, err)
		}
	}
}

// TestAttributeParentAnyUnit: config(1) writes cfparent {attr, NULL, 0}
// for "atabus* at ata?", and NetBSD's cfparent_match ignores the unit
// when no parent driver is named, so every provider of the attribute,
// whatever its unit, is a parent (wdc1, and wdc* numbered from 2).
func TestAttributeParentAnyUnit(t *testing.T) {
	entries, provides := i386Generic(t)
	tests := []struct {
		keep []string
		want []string // must be enabled, among others
	}{
		{[]string{"wd"}, []string{"atabus* at ata?", "pciide* at pci?", "piixide* at pci?", "wdc0 at isa?", "wdc1 at isa?", "wdc* at isapnp?", "isapnp0 at isa?"}},
		{[]string{"scsibus"}, []string{"ahc* at pci?", "ahc* at eisa?", "ahc0 at isa?", "mpt* at pci?", "vioscsi* at virtio?", "eisa0 at pceb?"}},
	}
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: entries, Provides: provides}))
	for _, tc := range tests {
		r, err := k.Plan(Plan{Strip: true, Keep: tc.keep})
		if err != nil {
			t.Fatal(err)
		}
		enabled := map[string]bool{}
		for _, c := range r.Changes {
			if !c.To.Disabled() {
				enabled[entries[c.Index].Spec] = true
			}
		}
		for i, e := range k.Entries {
			if !e.State.Disabled() && !slices.ContainsFunc(r.Changes, func(c Change) bool { return c.Index == i }) {
				enabled[entries[i].Spec] = true
			}
		}
		for _, w := range tc.want {
			if !enabled[w] {
				t.Errorf("keep %v: %s is not kept", tc.keep, w)
			}
		}
	}
	for i, e := range k.Entries {
		if entries[i].Spec == "atabus* at ata?" {
			if got := e.Parent.String(); got != "[ata]?" {
				t.Errorf("atabus* parent renders as %q, want [ata]?", got)
			}
		}
	}
}

// TestRealKernelShape checks the properties of a real release kernel the
// test kernels must share for the other tests to mean anything: cfdata a
// global object in .data, its names in a read-only PT_LOAD of their own,
// and a kernel of release size read from a gzip file whose header carries
// a name and a time, as netbsd-GENERIC.gz does.
func TestRealKernelShape(t *testing.T) {
	entries, provides := i386Generic(t)
	for _, bits := range []int{32, 64} {
		path := buildKernel(t, kstriptest.Options{Bits: bits, Entries: entries, Provides: provides, Pad: 25 << 20})
		data := readFile(t, path)
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		syms, _ := f.Symbols()
		i := slices.IndexFunc(syms, func(s elf.Symbol) bool { return s.Name == "cfdata" })
		if i < 0 {
			t.Fatal("no cfdata symbol")
		}
		s := syms[i]
		if elf.ST_TYPE(s.Info) != elf.STT_OBJECT || elf.ST_BIND(s.Info) != elf.STB_GLOBAL || f.Sections[s.Section].Name != ".data" {
			t.Errorf("%d-bit: cfdata is %v %v in %s, want a global object in .data", bits, elf.ST_TYPE(s.Info), elf.ST_BIND(s.Info), f.Sections[s.Section].Name)
		}
		k, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		name := k.ptrAt(data[k.Offset():], 0)
		seg := func(va uint64) *elf.Prog {
			for _, p := range f.Progs {
				if p.Type == elf.PT_LOAD && va >= p.Vaddr && va < p.Vaddr+p.Filesz {
					return p
				}
			}
			return nil
		}
		loads := 0
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD {
				loads++
			}
		}
		ps, pn := seg(k.Address()), seg(name)
		if loads < 3 || ps == nil || pn == nil || ps == pn || pn.Flags&elf.PF_W != 0 {
			t.Errorf("%d-bit: %d PT_LOADs; cfdata in %+v, its first name in %+v", bits, loads, ps, pn)
		}
		if len(data) < 25<<20 {
			t.Errorf("%d-bit kernel is %d bytes, want release size", bits, len(data))
		}

		// netbsd-GENERIC.gz: FNAME and MTIME set, best compression.
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Name, zw.ModTime, zw.OS = "netbsd-GENERIC", time.Date(2022, 8, 4, 0, 0, 0, 0, time.UTC), 3
		zw.Write(data)
		zw.Close()
		if z.Bytes()[3]&0x08 == 0 {
			t.Fatal("gzip header lacks FNAME")
		}
		dir := t.TempDir()
		gzPath := filepath.Join(dir, "netbsd-GENERIC.gz")
		if err := os.WriteFile(gzPath, z.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		kf, err := ReadFile(gzPath)
		if err != nil || !kf.Gzipped || !bytes.Equal(kf.Data, data) {
			t.Fatalf("%d-bit: ReadFile of a named gzip: %v", bits, err)
		}
		kg, err := Parse(kf.Data)
		if err != nil {
			t.Fatal(err)
		}
		r, err := kg.Plan(Plan{Strip: true, Keep: defaultKeep(t, kg)})
		if err != nil {
			t.Fatal(err)
		}
		if err := kg.Apply(r); err != nil {
			t.Fatal(err)
		}
		if got := enabledSpecs(kg, entries); !slices.Equal(got, sorted(defaultKept)) {
			t.Errorf("%d-bit from gzip: enabled %q", bits, got)
		}
		checkOnlyStates(t, kg, r, data, kg.Bytes())
	}
}
