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
	// rnd_seed: sys/kern/kern_rndq.c:1371.
	ModuleRnd: {"rnd_seed", "a kernel from before boot-loaded entropy seeds"},
}

// maxScan bounds how much of module_init_md is read to look for its
// calls; NetBSD's is a few hundred bytes.
const maxScan = 64 << 10

// moduleNotes says which of the modules the kernel will pass over, judged
// by its symbol table: without MODULAR it has no module_init_md and reads
// no module at all; a file system image, splash image or entropy seed
// needs the function module_init_md hands it to, and a module_init_md
// that calls it (NetBSD 5.99's skips every module but kmods, though its
// kernels may have md_root_setconf). A kernel without symbols cannot be
// judged, and gets no note: these are notes, not errors.
func moduleNotes(r io.ReaderAt, size uint64, h bootelf.Header, k *kernel, l *layout) ([]string, error) {
	if len(l.mods) == 0 {
		return nil, nil
	}
	syms, ok, err := h.LookupSymbols(r, size, k.secs, "module_init_md", "md_root_setconf", "splash_setimage", "rnd_seed")
	if err != nil || !ok {
		return nil, err
	}
	initFn, modular := syms["module_init_md"]
	if !modular {
		n := fmt.Sprintf("the kernel will ignore its %d boot modules: it has no module_init_md (built without options MODULAR), which reads them", len(l.mods))
		if len(l.mods) == 1 {
			n = fmt.Sprintf("the kernel will ignore module 0 (%s): it has no module_init_md (built without options MODULAR), which reads boot modules", l.mods[0].Name)
		}
		return []string{n}, nil
	}
	code := k.code(r, initFn)
	var notes []string
	for i, m := range l.mods {
		u, ok := moduleUsers[l.modTypes[i]]
		if !ok {
			continue
		}
		fn, has := syms[u.fn]
		switch {
		case !has:
			notes = append(notes, fmt.Sprintf("the kernel will ignore module %d (%s, %s): it has no %s (%s), which module_init_md hands such a module to",
				i, m.Name, l.modTypes[i], u.fn, u.why))
		case code != nil && !calls(code, initFn.Value, fn.Value, k.class64):
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
