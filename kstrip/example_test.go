package kstrip_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/kstrip"
)

// Strip a kernel for a virtio microVM: keep the default list (and the
// parents it needs), disable everything else, and see what changed.
// testdata/netbsd-tiny is kstriptest.Generic built for i386.
func Example() {
	f, err := kstrip.ReadFile("testdata/netbsd-tiny")
	if err != nil {
		fmt.Println(err)
		return
	}
	k, err := kstrip.Parse(f.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The default list covers several releases: keep what this kernel has.
	keep, _, err := k.Applicable(kstrip.DefaultKeep)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := k.Plan(kstrip.Plan{Strip: true, Keep: keep, Disable: []string{"ioapic"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := k.Apply(r); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d entries of %d bytes at file offset %#x\n", len(k.Entries), k.EntrySize(), k.Offset())
	for _, p := range r.KeptParents {
		fmt.Printf("kept %s for %s\n", p.Label, p.For)
	}
	for _, c := range r.Changes[:4] {
		fmt.Printf("cfdata[%d] %s (%s): %s -> %s\n", c.Index, c.Label, c.Attach, c.From, c.To)
	}
	fmt.Println(len(r.Changes), "changes")
	// A directory of its own: a fixed name in /tmp could be another
	// run's, or another user's, which this one may not replace.
	dir, err := os.MkdirTemp("", "kstrip-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "netbsd-tiny.stripped")
	if err := kstrip.WriteFile(out, k.Bytes(), kstrip.WantsGzip(out), f.Mode); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 45 entries of 24 bytes at file offset 0x1b40
	// kept ppb* for pci* (pci)
	// kept pcib* for isa0 (isa)
	// kept ichlpcib* for isa0 (isa)
	// cfdata[3] ioapic* (ioapic): star -> dstar
	// cfdata[8] pchb* (pchb): star -> dstar
	// cfdata[16] com* (com_puc): star -> dstar
	// cfdata[17] puc* (puc): star -> dstar
	// 27 changes
}

// Match reads names as userconf does, plus attachment names. A unit
// ("com0") names a fixed entry of that unit only, never a Star entry: ld0
// names nothing in a kernel with only "ld*" entries, nor com2 where the
// "com*" entries are numbered from 2.
func ExampleKernel_Match() {
	f, err := kstrip.ReadFile("testdata/netbsd-tiny")
	if err != nil {
		fmt.Println(err)
		return
	}
	k, err := kstrip.Parse(f.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range []string{"com", "com0", "com2", "com*", "com_isa", "ld0", "vioff"} {
		var labels []string
		for _, i := range k.Match(name) {
			labels = append(labels, k.Entries[i].Label()+"@"+k.Entries[i].Attach)
		}
		fmt.Println(name, labels)
	}
	fmt.Println("did you mean", k.Suggest("vioff"), k.Suggest("com7"))
	// Output:
	// com [com0@com_isa com1@com_isa com*@com_puc com*@com_acpi]
	// com0 [com0@com_isa]
	// com2 []
	// com* [com*@com_puc com*@com_acpi]
	// com_isa [com0@com_isa com1@com_isa]
	// ld0 []
	// vioff []
	// did you mean [vioif] [com com0 com1]
}
