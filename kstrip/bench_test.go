package kstrip

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// benchEntries is generic plus synthetic drivers, three attachments each
// (at pci, at isa, at a pci child), to reach about a thousand entries
// and three hundred drivers like an i386 GENERIC kernel.
func benchEntries() []kstriptest.Entry {
	e := append([]kstriptest.Entry(nil), generic...)
	for i := 0; len(e) < 1000; i++ {
		name := fmt.Sprintf("x%c%c", 'a'+i/26%26, 'a'+i%26)
		e = append(e,
			kstriptest.Entry{Name: name, Attach: name + "_pci", State: 2, Parent: par("pci", "pci", -1)},
			kstriptest.Entry{Name: name, Attach: name + "_isa", Unit: 0, State: 0, Parent: par("isa", "isa", -1)},
			kstriptest.Entry{Name: name, Attach: name + "_puc", Unit: 1, State: 2, Parent: par("puc", "puc", -1)},
		)
	}
	return e[:1000]
}

// benchKernel builds the 20 MiB, 1000-entry kernel with debug info (gdb
// needs it to know struct cfdata).
func benchKernel(b *testing.B) string {
	b.Helper()
	return buildKernel(b, kstriptest.Options{Bits: 32, Entries: benchEntries(), Pad: 20 << 20, Debug: true})
}

// BenchmarkStrip times a whole default strip of a kernel-sized file:
// read, parse, plan, apply, write a new file (temporary file, fsync,
// rename).
func BenchmarkStrip(b *testing.B) {
	in := benchKernel(b)
	out := filepath.Join(b.TempDir(), "netbsd.stripped")
	st, _ := os.Stat(in)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := ReadFile(in)
		if err != nil {
			b.Fatal(err)
		}
		k, err := Parse(f.Data)
		if err != nil {
			b.Fatal(err)
		}
		r, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(b, k)})
		if err != nil {
			b.Fatal(err)
		}
		if err := k.Apply(r); err != nil {
			b.Fatal(err)
		}
		if err := WriteFile(out, k.Bytes(), false, f.Mode); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(r.Changes)), "changes")
	}
}

// BenchmarkStripInMemory times parse, plan and apply alone, on the image
// already in memory (what BenchmarkStrip adds is file I/O and fsync).
func BenchmarkStripInMemory(b *testing.B) {
	orig, err := os.ReadFile(benchKernel(b))
	if err != nil {
		b.Fatal(err)
	}
	img := make([]byte, len(orig))
	b.SetBytes(int64(len(orig)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(img, orig)
		k, err := Parse(img)
		if err != nil {
			b.Fatal(err)
		}
		r, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(b, k)})
		if err != nil {
			b.Fatal(err)
		}
		if err := k.Apply(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGDBPerDriver times the predecessor's way on the same file and
// the same changes: one `gdb -batch --write` per driver, setting each of
// its entries' cf_fstate with `set var`, on a writable copy. It then
// checks that gdb produced the same bytes as kstrip.
func BenchmarkGDBPerDriver(b *testing.B) {
	if _, err := exec.LookPath("gdb"); err != nil {
		b.Skip("gdb not installed")
	}
	in := benchKernel(b)
	orig, err := os.ReadFile(in)
	if err != nil {
		b.Fatal(err)
	}
	k, err := Parse(clone(orig))
	if err != nil {
		b.Fatal(err)
	}
	r, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(b, k)})
	if err != nil {
		b.Fatal(err)
	}
	if err := k.Apply(r); err != nil {
		b.Fatal(err)
	}
	byDriver := map[string][]Change{}
	for _, c := range r.Changes {
		name := k.Entries[c.Index].Name
		byDriver[name] = append(byDriver[name], c)
	}
	drivers := make([]string, 0, len(byDriver))
	for d := range byDriver {
		drivers = append(drivers, d)
	}
	sort.Strings(drivers)
	work := filepath.Join(b.TempDir(), "netbsd.gdb")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := os.WriteFile(work, orig, 0o644); err != nil {
			b.Fatal(err)
		}
		for _, d := range drivers {
			args := []string{"-batch", "-nx", "--write"}
			for _, c := range byDriver[d] {
				args = append(args, "-ex", fmt.Sprintf("set var cfdata[%d].cf_fstate=%d", c.Index, c.To))
			}
			if out, err := exec.Command("gdb", append(args, work)...).CombinedOutput(); err != nil {
				b.Fatalf("gdb for %s: %v\n%s", d, err, out)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(drivers)), "gdb-runs")
	got, err := os.ReadFile(work)
	if err != nil {
		b.Fatal(err)
	}
	if string(got) != string(k.Bytes()) {
		diff := 0
		for j := range got {
			if j < len(orig) && got[j] != k.Bytes()[j] {
				diff++
			}
		}
		b.Errorf("gdb's file differs from kstrip's: sizes %d/%d, %d bytes differ", len(got), len(k.Bytes()), diff)
	}
}

// BenchmarkPlanParentChain plans a strip of a hostile table: 20000 Star
// entries of one driver, each attached at a different unit of that same
// driver, so each may have thousands of parents. Parent keeping must
// stay near linear in the table, not quadratic.
func BenchmarkPlanParentChain(b *testing.B) {
	const n = 20000
	k := &Kernel{Entries: make([]Entry, n)}
	for i := range k.Entries {
		k.Entries[i] = Entry{Index: i, Name: "d", Attach: "d", Unit: i, State: Star, Parent: &Parent{IAttr: "d", Name: "d", Unit: n - 1 - i}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := k.Plan(Plan{Strip: true, Keep: []string{"d"}}); err != nil {
			b.Fatal(err)
		}
	}
}
