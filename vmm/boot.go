package vmm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// ErrNoBootProtocol: the kernel has neither a multiboot header nor NetBSD's
// ident note. Errors with it also wrap multiboot.ErrNotMultiboot and
// netbsdboot.ErrNotNetBSD.
var ErrNoBootProtocol = errors.New("neither a multiboot kernel nor a NetBSD ELF kernel")

// chooseProtocol decides how image boots when the Config leaves it to the
// file: a multiboot header means multiboot, exactly as before the native
// handoff existed; otherwise an ELF with NetBSD's ident note gets NetBSD's
// native handoff.
func chooseProtocol(image []byte) (bootplan.Protocol, error) {
	r := bytes.NewReader(image)
	_, _, mbErr := multiboot.FindHeader(r, int64(len(image)))
	if mbErr == nil {
		return bootplan.Multiboot, nil
	}
	if _, err := netbsdboot.Detect(r, int64(len(image))); err == nil {
		return bootplan.NetBSD, nil
	} else if errors.Is(mbErr, multiboot.ErrBadChecksum) || errors.Is(mbErr, multiboot.ErrHeaderTooFar) {
		// A broken multiboot header says more than "no NetBSD note".
		return bootplan.Auto, mbErr
	} else {
		return bootplan.Auto, fmt.Errorf("%w: %w; %w", ErrNoBootProtocol, mbErr, err)
	}
}

// loadKernel loads image by the protocol cfg asks for (or the file's) and
// returns the plan for the boot vCPU.
func loadKernel(mem *guestmem.Memory, image []byte, name string, cfg Config) (bootplan.Plan, error) {
	proto := cfg.Boot
	if proto == bootplan.Auto {
		var err error
		if proto, err = chooseProtocol(image); err != nil {
			return bootplan.Plan{}, err
		}
	}
	r := bytes.NewReader(image)
	switch proto {
	case bootplan.Multiboot:
		// A NetBSD kernel reads the append line as the native handoff
		// does; other multiboot kernels get it as it stands.
		_, notNetBSD := netbsdboot.Detect(r, int64(len(image)))
		p, err := multiboot.Load(mem, r, int64(len(image)), multiboot.Options{
			KernelName: name,
			Append:     cfg.Append,
			NetBSD:     notNetBSD == nil,
			Modules:    cfg.Modules,
			Headroom:   kernelHeadroom,
		})
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
	return bootplan.Plan{}, fmt.Errorf("%w: %v", bootplan.ErrProtocol, proto)
}

// loadHint says which Config field a loader error concerns and what to do.
func loadHint(err error) (field, hint string) {
	var big *multiboot.MemoryError
	switch {
	case errors.As(err, &big):
		return "MemoryMiB", "" // the error itself says how much
	case errors.Is(err, netbsdboot.ErrMachine):
		return "Kernel", "the machine is x86: use a NetBSD i386 or amd64 kernel"
	case errors.Is(err, ErrNoBootProtocol), errors.Is(err, multiboot.ErrNotMultiboot), errors.Is(err, multiboot.ErrNotELF),
		errors.Is(err, netbsdboot.ErrNotNetBSD):
		return "Kernel", "pass a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel (netbsd, netbsd-GENERIC.gz)"
	case errors.Is(err, netbsdboot.ErrTooManyModules):
		return "Modules", "pass fewer modules"
	case errors.Is(err, netbsdboot.ErrModule):
		return "Modules", "check the modules and their types (kmod, fs, splash, rndseed)"
	case errors.Is(err, netbsdboot.ErrAppend):
		return "Append", "check the boot flags and console=, console_addr=, console_speed=, root= in the command line"
	}
	return "", ""
}

// logPlan logs, for -v, how the kernel will start and what was loaded
// where, then the loader's warnings.
func (m *Machine) logPlan() {
	p := m.plan
	m.logf("boot protocol %s (%s kernel): EIP %#x ESP %#x EAX %#x EBX %#x, kernel [%#x, %#x), loaded up to %#x, symbols %t",
		p.Protocol, p.Format, p.EIP, p.ESP, p.EAX, p.EBX, p.KernelStart, p.KernelEnd, p.End, p.Symbols)
	for _, r := range p.Regions {
		m.logf("  loaded %s", r)
	}
	for _, w := range p.Warnings {
		m.logf("boot warning: %s", w)
	}
}
