package guests

import (
	"debug/elf"
	"fmt"
	"strings"
)

// elfSymbols returns the values of the named symbols in the ELF at path.
func elfSymbols(path string, names ...string) (map[string]uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("guests: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("guests: %s: symbols: %w", path, err)
	}
	got := map[string]uint64{}
	for _, s := range syms {
		got[s.Name] = s.Value
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("guests: %s: no symbol %s", path, n)
		}
	}
	return got, nil
}

// PagingLines returns every line (without "\r\n") the paging guest built at
// path prints when it succeeds with the given words ("", "pse" or "pae";
// ticks= is not taken into account). The addresses come from the ELF's
// symbols. Tests compare a console with them under any loader and KVM.
func PagingLines(path, words string) ([]string, error) {
	s, err := elfSymbols(path, "pgmem", "high_main")
	if err != nil {
		return nil, err
	}
	mode, cr4, pte := "4k", "00000000", true
	for _, w := range strings.Fields(words) {
		switch w {
		case "pae":
			mode, cr4, pte = "pae", "00000020", true
		case "pse":
			if mode != "pae" {
				mode, cr4, pte = "pse", "00000010", false
			}
		}
	}
	tables := s["pgmem"] - 0xc0000000
	lines := []string{
		fmt.Sprintf("paging: enabling paging, tables at %#x", tables),
		fmt.Sprintf("paging: mode=%s cr0=0x80010033 cr3=0x%08x cr4=0x%s", mode, tables, cr4),
		fmt.Sprintf("paging: running at %#x", s["high_main"]),
		"paging: high mapping ok",
		"paging: identity map removed: #PF cr2=0x100000 err=0x0, iret ok",
		"paging: recursive pde ok",
	}
	if pte {
		lines = append(lines, "paging: recursive pte ok")
	}
	return append(lines, "irq: 10 ticks via iret", "hlt: woken by ticks only", "paging: done"), nil
}

// NbbootLines returns every line the nbboot guest built at path prints
// when a loader enters it with ESP esp in guest memory mem (the loader's
// work: stack, bootinfo, symbols, modules).
func NbbootLines(path string, mem []byte, esp uint32) ([]string, error) {
	s, err := elfSymbols(path, "nb_main")
	if err != nil {
		return nil, err
	}
	nb, err := NBInfoLines(mem, esp)
	if err != nil {
		return nil, err
	}
	lines := []string{"nbboot: hello", fmt.Sprintf("nbboot: running at %#x", s["nb_main"]-0xc0000000)}
	lines = append(lines, nb...)
	return append(lines, "nbboot: bss zero ok", "nbboot: done"), nil
}

// Long64Lines returns every line the long64 guest built at path prints
// when a loader enters it with ESP esp in guest memory mem: its 32-bit
// part's, then those it prints in long mode.
func Long64Lines(path string, mem []byte, esp uint32) ([]string, error) {
	s, err := elfSymbols(path, "pml4", "long64_main")
	if err != nil {
		return nil, err
	}
	nb, err := NBInfoLines(mem, esp)
	if err != nil {
		return nil, err
	}
	lines := append([]string{"long64: 32-bit entry, paging off"}, nb...)
	return append(lines,
		"long64: in long mode efer=0x500 cs=0x8 cs.l=1 cs.d=0",
		fmt.Sprintf("long64: cr0=0x80010033 cr3=%#x cr4=0x20", s["pml4"]-0xffffffff80000000),
		fmt.Sprintf("long64: running at %#x (high)", s["long64_main"]),
		"long64: done",
	), nil
}
