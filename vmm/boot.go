package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// ErrNoBootProtocol: the kernel has neither a multiboot header nor NetBSD's
// ident note, an empty file or gzip data of nothing included. Errors with
// it also wrap multiboot.ErrNotMultiboot and netbsdboot.ErrNotNetBSD.
var ErrNoBootProtocol = errors.New("neither a multiboot kernel nor a NetBSD ELF kernel")

// ErrNetBSDELF64 is wrapped, with the multiboot loader's error, when a
// NetBSD ELF64 kernel is forced to multiboot, which loads ELF32 files only
// (or the a.out kludge's image): NetBSD's native handoff boots it.
var ErrNetBSDELF64 = errors.New("an ELF64 NetBSD kernel, which NetBSD's native handoff boots")

// Why Auto passes over a kernel's multiboot header (bootplan.Plan.Reason).
const (
	reasonNetBSDModules = "the kernel has a multiboot header, but NetBSD's multiboot entry ignores boot modules"
	reasonNetBSDELF64   = "the kernel has a multiboot header, but multiboot v1 loads no ELF64 file without the a.out kludge"
)

// chooseProtocol decides how image boots, given modules boot modules,
// when the Config leaves it to the file: a multiboot header means
// multiboot, exactly as before the native handoff existed, except for a
// kernel with NetBSD's ident note that multiboot would fail: one given
// modules (NetBSD's multiboot entry never reads the module list, its
// native entry does) or an ELF64 one (multiboot v1 loads ELF32 only,
// unless the header has the a.out kludge's addresses). Those, and any
// NetBSD-noted ELF without a header (or with a multiboot2 one only, as
// amd64 10), get NetBSD's native handoff. A file with only a multiboot2
// header is refused as that. reason says why a header was passed over,
// and is empty otherwise.
func chooseProtocol(image []byte, modules int) (proto bootplan.Protocol, reason string, err error) {
	r := bytes.NewReader(image)
	hdr, _, mbErr := multiboot.FindHeader(r, int64(len(image)))
	id, nbErr := netbsdboot.Detect(r, int64(len(image)))
	switch {
	case mbErr == nil && nbErr == nil && modules > 0:
		return bootplan.NetBSD, reasonNetBSDModules, nil
	case mbErr == nil && nbErr == nil && id.Class == 64 && hdr.Flags&multiboot.FlagAOutKludge == 0:
		return bootplan.NetBSD, reasonNetBSDELF64, nil
	case mbErr == nil:
		return bootplan.Multiboot, "", nil
	case nbErr == nil:
		return bootplan.NetBSD, "", nil
	case errors.Is(nbErr, netbsdboot.ErrTruncated):
		// An ELF file cut short before its ident note could be read
		// is that, not a file of another kind.
		return bootplan.Auto, "", nbErr
	case errors.Is(mbErr, multiboot.ErrBadChecksum) || errors.Is(mbErr, multiboot.ErrHeaderTooFar) || errors.Is(mbErr, multiboot.ErrMultiboot2):
		// A broken multiboot header, or a multiboot2 one, says more
		// than "no NetBSD note".
		return bootplan.Auto, "", mbErr
	}
	return bootplan.Auto, "", fmt.Errorf("%w: %w; %w", ErrNoBootProtocol, mbErr, nbErr)
}

// KernelProtocol is the protocol Auto boots the kernel file at path by
// when given modules boot modules, as New would choose it: the file is
// mapped (and decompressed) to read its headers, and nothing is loaded,
// so no guest memory is needed and no module is read; the choice depends
// on their number only. Its error is New's for a file that is not a
// kernel (an *Error); that the kernel then loads is not checked
// (CheckKernel does).
func KernelProtocol(path string, modules int) (bootplan.Protocol, error) {
	cfg := Config{Kernel: path}
	kernel, err := kernelImage(cfg)
	if err != nil {
		return bootplan.Auto, err
	}
	defer kernel.release()
	var proto bootplan.Protocol
	err = kernel.guard(cfg, func() error {
		var err error
		proto, _, err = chooseProtocol(kernel.image, modules)
		return err
	})
	if errors.Is(err, regfile.ErrCut) {
		return bootplan.Auto, err // guard's *Error
	}
	if err != nil {
		return bootplan.Auto, kernelLoadError(err, kernel, cfg) // checkkernel.go
	}
	return proto, nil
}

// loadKernel loads image by the protocol cfg asks for (or the file's) and
// returns the plan for the boot vCPU.
func loadKernel(mem *guestmem.Memory, image []byte, name string, cfg Config) (bootplan.Plan, error) {
	proto, reason := cfg.Boot, ""
	if proto == bootplan.Auto {
		var err error
		if proto, reason, err = chooseProtocol(image, len(cfg.Modules)); err != nil {
			return bootplan.Plan{}, err
		}
	}
	p, err := loadBy(mem, image, name, cfg, proto)
	p.Reason = reason
	return p, err
}

// loadBy loads image by proto.
func loadBy(mem *guestmem.Memory, image []byte, name string, cfg Config, proto bootplan.Protocol) (bootplan.Plan, error) {
	r := bytes.NewReader(image)
	switch proto {
	case bootplan.Multiboot:
		// A NetBSD kernel reads the append line as the native handoff
		// does, and no modules; other multiboot kernels get both as
		// they stand.
		id, notNetBSD := netbsdboot.Detect(r, int64(len(image)))
		p, err := multiboot.Load(mem, r, int64(len(image)), multiboot.Options{
			KernelName: name,
			Append:     cfg.Append,
			NetBSD:     notNetBSD == nil,
			Modules:    cfg.Modules,
			Headroom:   kernelHeadroom,
		})
		if notNetBSD == nil && id.Class == 64 && errors.Is(err, multiboot.ErrUnsupportedELF) {
			err = fmt.Errorf("%w; it is %w", err, ErrNetBSDELF64)
		}
		if errors.Is(err, multiboot.ErrCmdline) {
			err = &cmdlineError{err, cmdlineField(name, cfg.Modules)}
		}
		return p.Boot(), err
	case bootplan.NetBSD:
		mods := make([]netbsdboot.Module, len(cfg.Modules))
		for i, m := range cfg.Modules {
			// A module's argument string is its type under the native
			// handoff, which passes no module arguments.
			t, err := netbsdboot.ParseModuleType(m.Args)
			if err != nil {
				return bootplan.Plan{}, fmt.Errorf("module %d (%s): %w", i, m.Name, err)
			}
			mods[i] = netbsdboot.Module{Name: m.Name, Data: m.Data, Type: t}
		}
		return netbsdboot.Load(mem, r, int64(len(image)), netbsdboot.Options{
			KernelName: name,
			Append:     cfg.Append,
			Modules:    mods,
			Headroom:   kernelHeadroom,
		})
	}
	return bootplan.Plan{}, fmt.Errorf("%w: %v: %w", bootplan.ErrProtocol, proto, ErrConfig)
}

// cmdlineError is a multiboot command line the loader refused
// (multiboot.ErrCmdline), with the Config field its text came from: the
// kernel's name begins the kernel's command line, the modules' names
// and arguments make theirs, Append the rest.
type cmdlineError struct {
	err   error
	field string
}

func (e *cmdlineError) Error() string { return e.err.Error() }
func (e *cmdlineError) Unwrap() error { return e.err }

// cmdlineField says which Config field a refused multiboot command line
// came from: the kernel's name when it holds white space (the guest
// would take its first word for the name), the modules when one holds a
// NUL byte, else Append (too long, or holding a NUL byte).
func cmdlineField(name string, mods []multiboot.Module) string {
	if strings.ContainsAny(name, " \t\n\r\v\f") {
		return "Kernel"
	}
	for _, m := range mods {
		if strings.ContainsRune(m.Name, 0) || strings.ContainsRune(m.Args, 0) {
			return "Modules"
		}
	}
	return "Append"
}

// loadHint says which Config field a loader error concerns and what to do.
// "Kernel" stands for the kernel's file or bytes, which are KernelImage's
// when that is set (loadNamedKernel says so), except for a refused
// command line, whose kernel name is Kernel's either way.
func loadHint(err error) (field, hint string) {
	var big *multiboot.MemoryError
	var cmdline *cmdlineError
	switch {
	case errors.As(err, &cmdline):
		switch cmdline.field {
		case "Kernel":
			return "Kernel", "give the kernel's file a name without white space"
		case "Modules":
			return "Modules", "take the NUL bytes out of the modules' names and arguments"
		}
		return "Append", "shorten the command line, and take any NUL byte out of it"
	case errors.Is(err, bootplan.ErrProtocol):
		return "Boot", "use bootplan.Auto, bootplan.Multiboot or bootplan.NetBSD"
	case errors.As(err, &big) && big.NeedMiB() == MaxMemoryMiB:
		// Nothing larger is accepted: "or more" would be no way.
		return "MemoryMiB", fmt.Sprintf("set MemoryMiB to %d, the most", big.NeedMiB())
	case errors.As(err, &big) && big.NeedMiB() < MaxMemoryMiB:
		return "MemoryMiB", fmt.Sprintf("set MemoryMiB to %d or more", big.NeedMiB())
	case errors.As(err, &big):
		return "MemoryMiB", "" // beyond the most MemoryMiB may be
	case errors.Is(err, multiboot.ErrLowAreaFull):
		// Module names and command lines, and the kernel's section
		// headers, go in the loader's window below 640 KiB.
		return "Modules", "pass fewer or shorter modules, or a kernel with fewer section headers"
	case errors.Is(err, netbsdboot.ErrMachine):
		return "Kernel", "the machine is x86: use a NetBSD i386 or amd64 kernel"
	case errors.Is(err, netbsdboot.ErrKASLR):
		return "Kernel", "use the release's kernel linked without KASLR, netbsd-GENERIC"
	case errors.Is(err, netbsdboot.ErrXenPV):
		return "Kernel", "use the release's kernel not built for Xen, netbsd-GENERIC"
	case errors.Is(err, multiboot.ErrNetBSDModules):
		return "Boot", "NetBSD's native handoff (bootplan.NetBSD, which Auto chooses for a NetBSD kernel given modules) passes them"
	case errors.Is(err, ErrNetBSDELF64):
		return "Boot", "boot it by NetBSD's native handoff (bootplan.NetBSD), as Auto does"
	case errors.Is(err, netbsdboot.ErrTruncated):
		return "Kernel", "the file is cut short: download or copy it again"
	case errors.Is(err, ErrNoBootProtocol), errors.Is(err, multiboot.ErrNotMultiboot), errors.Is(err, multiboot.ErrNotELF),
		errors.Is(err, netbsdboot.ErrNotNetBSD):
		return "Kernel", "pass a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel (netbsd, netbsd-GENERIC.gz)"
	case errors.Is(err, netbsdboot.ErrBootMap) && errors.Is(err, netbsdboot.ErrModule):
		return "Modules", "pass smaller or fewer modules: more memory does not help, the kernel maps no more at boot"
	case errors.Is(err, netbsdboot.ErrBootMap):
		return "Kernel", "the kernel and its symbols are larger than the kernel maps at boot; more memory does not help"
	case errors.Is(err, netbsdboot.ErrTooManyModules):
		return "Modules", "pass fewer modules"
	case errors.Is(err, netbsdboot.ErrKmodVersion):
		return "Modules", "use the kmod from the kernel's own NetBSD release (its modules set), or a kernel of the kmod's release"
	case errors.Is(err, netbsdboot.ErrModule):
		return "Modules", "check the modules and their types (kmod, fs, splash, rndseed)"
	case errors.Is(err, netbsdboot.ErrAppend):
		return "Append", "check the boot flags and console=, console_addr=, console_speed=, root= in the command line"
	case errors.Is(err, multiboot.ErrBadELF), errors.Is(err, multiboot.ErrUnsupportedELF), errors.Is(err, multiboot.ErrLowMemory),
		errors.Is(err, multiboot.ErrOverlap), errors.Is(err, multiboot.ErrTruncated), errors.Is(err, multiboot.ErrBadAOut),
		errors.Is(err, multiboot.ErrHeaderTooFar), errors.Is(err, multiboot.ErrUnsupportedFlags):
		// The kernel file's own fault, which the error names; an
		// embedder learns which field without parsing it.
		return "Kernel", ""
	}
	return "", ""
}

// logPlan logs, when verbose, how the kernel will start and what was loaded
// where, then the loader's warnings.
func (m *Machine) logPlan() {
	p := m.plan
	if p.Reason != "" {
		m.logf("boot protocol %s chosen: %s", p.Protocol, p.Reason)
	}
	m.logf("boot protocol %s (%s kernel): EIP %#x ESP %#x EAX %#x EBX %#x, kernel [%#x, %#x), loaded up to %#x, symbols %t",
		p.Protocol, p.Format, p.EIP, p.ESP, p.EAX, p.EBX, p.KernelStart, p.KernelEnd, p.End, p.Symbols)
	for _, r := range p.Regions {
		m.logf("  loaded %s", r)
	}
	for _, w := range p.Warnings {
		m.logf("boot warning: %s", w)
	}
}
