package guests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Region is a block of guest-physical memory a loader wrote: Data at Addr.
type Region struct {
	Addr uint64
	Data []byte
}

// HandoffBase is the physical address the handoff guest is linked and
// loaded at: every region must end below it.
const HandoffBase = 0x4000000

// HandoffMemMiB is the least RAM (in MiB) to give QEMU for the handoff
// guest: its image sits at HandoffBase and QEMU puts the modules after it.
const HandoffMemMiB = 128

// maxHandoffRegions is the handoff guest's table size (src/handoff.c).
const maxHandoffRegions = 64

// HandoffQEMUArgs prepares a QEMU run that enters a kernel as NetBSD's native
// /boot handoff does, which QEMU cannot do itself: handoff is the built
// handoff guest (Build("handoff")). It writes each non-empty region's data
// to dir/region-NN.bin and returns the QEMU arguments -kernel, -append
// ("entry=0x... esp=0x...") and -initrd (each region a multiboot module
// whose string carries "load=0x..."); the guest copies every module to its
// address, then jumps to entry with ESP esp in flat 32-bit protected mode,
// paging and interrupts off, all other registers 0. Give QEMU at least
// HandoffMemMiB of RAM.
func HandoffQEMUArgs(handoff, dir string, regions []Region, entry, esp uint32) ([]string, error) {
	if strings.ContainsAny(dir, ", ") {
		return nil, fmt.Errorf("guests: handoff module directory %q contains a comma or a space, which QEMU's -initrd list cannot carry", dir)
	}
	type span struct {
		i          int
		start, end uint64
	}
	var spans []span
	for i, r := range regions {
		if len(r.Data) == 0 {
			continue
		}
		end := r.Addr + uint64(len(r.Data))
		if end < r.Addr || end > HandoffBase {
			return nil, fmt.Errorf("guests: handoff region %d (%#x, %d bytes) does not end below the handoff guest at %#x", i, r.Addr, len(r.Data), HandoffBase)
		}
		spans = append(spans, span{i, r.Addr, end})
	}
	if len(spans) > maxHandoffRegions {
		return nil, fmt.Errorf("guests: %d handoff regions, at most %d", len(spans), maxHandoffRegions)
	}
	sorted := append([]span(nil), spans...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].start < sorted[b].start })
	for k := 1; k < len(sorted); k++ {
		if p, c := sorted[k-1], sorted[k]; c.start < p.end {
			return nil, fmt.Errorf("guests: handoff regions %d (%#x-%#x) and %d (%#x-%#x) overlap", p.i, p.start, p.end, c.i, c.start, c.end)
		}
	}
	var mods []string
	for _, s := range spans {
		path := filepath.Join(dir, fmt.Sprintf("region-%02d.bin", s.i))
		if err := os.WriteFile(path, regions[s.i].Data, 0o644); err != nil {
			return nil, fmt.Errorf("guests: writing handoff region %d: %w", s.i, err)
		}
		mods = append(mods, fmt.Sprintf("%s load=%#x", path, s.start))
	}
	args := []string{"-kernel", handoff, "-append", fmt.Sprintf("entry=%#x esp=%#x", entry, esp)}
	if len(mods) > 0 {
		args = append(args, "-initrd", strings.Join(mods, ","))
	}
	return args, nil
}
