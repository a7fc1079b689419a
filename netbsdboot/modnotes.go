package netbsdboot

import (
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// moduleUsers names, for each module type module_init_md hands to a
// function other than the module loader, that function and the kernel
// options it exists under (NetBSD 9.1 sys/arch/x86/x86/x86_machdep.c:
// 244-285): a kernel without it passes over such a module.
var moduleUsers = map[ModuleType]struct{ fn, why string }{
	// md_root_setconf: sys/dev/md_root.c:82-89, under MEMORY_DISK_DYNAMIC;
	// module_init_md calls it only with MEMORY_DISK_HOOKS too.
	ModuleFS: {"md_root_setconf", "built without options MEMORY_DISK_HOOKS and MEMORY_DISK_DYNAMIC"},
	// splash_setimage: sys/dev/splash/splash.c:147, built with
	// SPLASHSCREEN (sys/dev/splash/files.splash:4).
	ModuleImage: {"splash_setimage", "built without options SPLASHSCREEN"},
	// rnd_seed: sys/kern/kern_rndq.c:1371, later kern_entropy.c. Handed
	// a seed by module_init_md, or, in -current since 2023, by
	// x86_rndseed (rndSeedReader).
	ModuleRnd: {"rnd_seed", "a kernel from before boot-loaded entropy seeds"},
}

// rndSeedReader is the function -current (2023) hands entropy seeds to
// rnd_seed from instead of module_init_md, whose BI_MODULE_RND case it
// left empty ("handled in x86_rndseed"): it is outside options MODULAR,
// and init386 and init_x86_64 call it always, so such a kernel takes
// seeds with or without MODULAR.
const rndSeedReader = "x86_rndseed"

// maxScan bounds how much of module_init_md or x86_rndseed is read to
// look for its calls; NetBSD's are a few hundred bytes.
const maxScan = 64 << 10

// moduleNotes says which of the modules the kernel will pass over, judged
// by its symbol table: without MODULAR it has no module_init_md and reads
// no module at all, but for the entropy seeds an x86_rndseed reads; a
// file system image, splash image or entropy seed needs the function
// module_init_md (or x86_rndseed) hands it to, and a module_init_md that
// calls it (NetBSD 5.99's skips every module but kmods, though its
// kernels may have md_root_setconf). A kernel without symbols cannot be
// judged, and gets no note: these are notes, not errors.
func moduleNotes(r io.ReaderAt, size uint64, h bootelf.Header, k *kernel, l *layout) ([]string, error) {
	if len(l.mods) == 0 {
		return nil, nil
	}
	syms, ok, err := h.LookupSymbols(r, size, k.secs, "module_init_md", rndSeedReader, "md_root_setconf", "splash_setimage", "rnd_seed")
	if err != nil || !ok {
		return nil, err
	}
	_, ownRnd := syms[rndSeedReader]
	// reader is the function that reads module i, if the kernel has it.
	reader := func(i int) string {
		if l.modTypes[i] == ModuleRnd && ownRnd {
			return rndSeedReader
		}
		return "module_init_md"
	}
	var notes, unread []string
	for i, m := range l.mods {
		if _, has := syms[reader(i)]; !has {
			unread = append(unread, fmt.Sprintf("the kernel will ignore module %d (%s, %s): it has no module_init_md (built without options MODULAR), which reads boot modules",
				i, m.Name, l.modTypes[i]))
		}
	}
	switch {
	case len(unread) == 1 && len(l.mods) == 1:
		notes = append(notes, fmt.Sprintf("the kernel will ignore module 0 (%s): it has no module_init_md (built without options MODULAR), which reads boot modules", l.mods[0].Name))
	case len(unread) == len(l.mods):
		notes = append(notes, fmt.Sprintf("the kernel will ignore its %d boot modules: it has no module_init_md (built without options MODULAR), which reads them", len(l.mods)))
	default:
		notes = append(notes, unread...)
	}
	code := map[string][]byte{}
	for i, m := range l.mods {
		u, ok := moduleUsers[l.modTypes[i]]
		name := reader(i)
		readFn, readable := syms[name]
		if !ok || !readable {
			continue
		}
		if _, done := code[name]; !done {
			code[name] = k.code(r, readFn)
		}
		fn, has := syms[u.fn]
		switch {
		case !has:
			notes = append(notes, fmt.Sprintf("the kernel will ignore module %d (%s, %s): it has no %s (%s), which %s hands such a module to",
				i, m.Name, l.modTypes[i], u.fn, u.why, name))
		case code[name] == nil || calls(code[name], readFn.Value, fn.Value, k.class64):
			// Called, or the code cannot be read to tell: no note.
		case name == rndSeedReader:
			notes = append(notes, fmt.Sprintf("the kernel will ignore module %d (%s, %s): its %s never calls %s",
				i, m.Name, l.modTypes[i], name, u.fn))
		default:
			notes = append(notes, fmt.Sprintf("the kernel will ignore module %d (%s, %s): its module_init_md never calls %s, so it passes over every boot module but kmods",
				i, m.Name, l.modTypes[i], u.fn))
		}
	}
	return notes, nil
}

// code returns the bytes of the function s from the kernel file, or nil
// when they cannot be found whole in a segment's file data.
func (k *kernel) code(r io.ReaderAt, s bootelf.Symbol) []byte {
	if s.Size == 0 || s.Size > maxScan {
		return nil
	}
	for _, seg := range k.segs {
		if s.Value < seg.Vaddr || s.Value-seg.Vaddr >= seg.FileSize || s.Size > seg.FileSize-(s.Value-seg.Vaddr) {
			continue
		}
		b := make([]byte, s.Size)
		if bootelf.ReadFull(r, b, seg.FileOff+(s.Value-seg.Vaddr), "module_init_md") != nil {
			return nil
		}
		return b
	}
	return nil
}

// calls reports whether code, a function at addr, holds a call or jump
// with a 32-bit displacement (E8 or E9) to target. A stray byte that reads
// as one and hits target exactly is not a worry: the cost of a false
// match is only a note left out.
func calls(code []byte, addr, target uint64, class64 bool) bool {
	for i := 0; i+5 <= len(code); i++ {
		if code[i] != 0xe8 && code[i] != 0xe9 {
			continue
		}
		rel := int32(uint32(code[i+1]) | uint32(code[i+2])<<8 | uint32(code[i+3])<<16 | uint32(code[i+4])<<24)
		to := addr + uint64(i) + 5 + uint64(int64(rel))
		if !class64 {
			to &= 0xffffffff
		}
		if to == target {
			return true
		}
	}
	return false
}
