package netbsdboot

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smolvmm/smolvmm/internal/kernelimage"
)

// ModuleType is a boot module's bi_modulelist_entry type
// (sys/arch/x86/include/bootinfo.h:186-190).
type ModuleType int

// Module types. /boot decides the type by the command that named the file
// (sys/arch/i386/stand/boot/boot2.c:154-159: load, splash, rndseed, fs;
// sys/arch/i386/stand/lib/exec.c:169-191 and 758-773), not by its content.
const (
	ModuleAuto  ModuleType = 0 // decide from the content: an ELF file is a kmod, anything else is refused
	ModuleELF   ModuleType = 1 // BI_MODULE_ELF: a kernel module (.kmod), /boot's "load"
	ModuleImage ModuleType = 2 // BI_MODULE_IMAGE: a splash image, /boot's "splash"
	ModuleRnd   ModuleType = 3 // BI_MODULE_RND: an entropy seed, /boot's "rndseed"
	ModuleFS    ModuleType = 4 // BI_MODULE_FS: a file system image, /boot's "fs"
)

// String returns the name ParseModuleType accepts first.
func (t ModuleType) String() string {
	switch t {
	case ModuleAuto:
		return "auto"
	case ModuleELF:
		return "kmod"
	case ModuleImage:
		return "splash"
	case ModuleRnd:
		return "rndseed"
	case ModuleFS:
		return "fs"
	}
	return fmt.Sprintf("ModuleType(%d)", int(t))
}

// ParseModuleType reads a module type: "" (auto), "kmod" or "load" (ELF),
// "fs", "splash" or "image", "rndseed" or "rnd": /boot's command names and
// the bootinfo names.
func ParseModuleType(s string) (ModuleType, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return ModuleAuto, nil
	case "kmod", "load", "elf":
		return ModuleELF, nil
	case "fs":
		return ModuleFS, nil
	case "splash", "image":
		return ModuleImage, nil
	case "rndseed", "rnd":
		return ModuleRnd, nil
	}
	return ModuleAuto, fmt.Errorf("%w: type %q: %w: want kmod, fs, splash or rndseed", ErrModule, s, ErrModuleType)
}

// Module is a boot module: a file /boot would load after the kernel.
type Module struct {
	// Name is the path the kernel sees in the module list (80-byte field).
	Name string
	// Data is the file's bytes; gzipped ones are decompressed by Load
	// before the type is decided (see contents). An empty module is
	// refused.
	Data []byte
	Type ModuleType
}

// maxModulePath is the longest path bi_modulelist_entry.path holds with
// its NUL (bootinfo.h:181); /boot cuts longer ones (exec.c:755), which
// would hide a wrong name, so they are refused.
const maxModulePath = 79

// contents returns the module's bytes as the kernel gets them: /boot opens
// every file through libsa's transparent gzip reader
// (sys/arch/i386/stand/boot/Makefile.boot:82 builds libsa with
// SA_USE_CREAD; sys/lib/libsa/cread.c:261-290 checks each file for the gzip
// magic, :189-254, and inflates it on read) and module_init reads a module
// to its end (sys/arch/i386/stand/lib/exec.c:739-749), so a gzipped module
// reaches the kernel decompressed, whatever its type: the members one
// after another, then any bytes after them that are not gzip data as they
// stand (kernelimage.Gunzip). limit bounds the decompressed size: the
// guest memory left where the module goes. An empty module is refused: it
// holds nothing the kernel could use.
func (m Module) contents(i int, limit uint64) ([]byte, error) {
	if len(m.Data) == 0 {
		return nil, fmt.Errorf("%w: module %d (%s) is empty", ErrModule, i, m.Name)
	}
	if !kernelimage.IsGzip(m.Data) {
		return m.Data, nil
	}
	out, err := kernelimage.Gunzip(m.Data, limit)
	if errors.Is(err, kernelimage.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w: module %d (%s) expands past the %d MiB of guest memory left for it once decompressed",
			ErrModule, ErrTooLarge, i, m.Name, limit>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: module %d (%s) starts as gzip data: %w", ErrModule, i, m.Name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: module %d (%s) is empty once decompressed", ErrModule, i, m.Name)
	}
	return out, nil
}

// resolve returns the module's type, deciding ModuleAuto by content.
func (m Module) resolve(i int) (ModuleType, error) {
	switch m.Type {
	case ModuleELF, ModuleImage, ModuleRnd, ModuleFS:
		return m.Type, nil
	case ModuleAuto:
		if len(m.Data) >= 4 && string(m.Data[:4]) == "\x7fELF" {
			return ModuleELF, nil
		}
		return 0, fmt.Errorf("%w: module %d (%s) is not an ELF kernel module; say what it is: fs (a file system image), splash or rndseed",
			ErrModule, i, m.Name)
	}
	return 0, fmt.Errorf("%w: module %d (%s): type %d unknown (want 1-4)", ErrModule, i, m.Name, int(m.Type))
}
