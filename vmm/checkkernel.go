package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// CheckKernel loads cfg's kernel as New would, into scratch memory of
// cfg.MemoryMiB outside any VM, and returns the plan or New's error for
// it: a file that is not a kernel, a command line or modules the kernel's
// protocol refuses, a kernel larger than the RAM. It needs no KVM, so a
// program that starts many VMs can refuse a kernel once, before the
// first. Only Kernel, KernelImage, MemoryMiB, Append, NoAppend, Boot and
// Modules are read.
func CheckKernel(cfg Config) (bootplan.Plan, error) {
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = DefaultMemoryMiB
	}
	if err := checkMemoryMiB(cfg.MemoryMiB); err != nil {
		return bootplan.Plan{}, err
	}
	if cfg.Append == "" && !cfg.NoAppend {
		cfg.Append = DefaultAppend
	}
	kernel, err := kernelImage(cfg)
	if err != nil {
		return bootplan.Plan{}, err
	}
	defer kernel.release()
	// Reserved, not committed: only the pages the loader writes are.
	size, err := guestMemorySize(cfg.MemoryMiB)
	if err != nil {
		return bootplan.Plan{}, err
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return bootplan.Plan{}, &Error{Op: "mmap guest memory", Err: err, Hint: "give the VM less memory", Field: "MemoryMiB"}
	}
	defer unix.Munmap(mem)
	gmem := guestmem.New(mem, guestmem.Range{Start: vgaStart, End: vgaEnd})
	if err := writeFirmware(gmem); err != nil {
		return bootplan.Plan{}, err
	}
	return loadNamedKernel(gmem, kernel, cfg)
}

// kernelInput is cfg's kernel image, decompressed, and what holds its
// bytes until release.
type kernelInput struct {
	image  []byte // what the loaders read
	mapped []byte // the kernel file's mapping (regfile.Map), nil for KernelImage
	path   string // the file mapped
	// gunzipped: image is what the file's (or KernelImage's) gzip data
	// decompressed to.
	gunzipped bool
}

// release unmaps the kernel file and drops the image: loaded into guest
// memory, the VMM keeps no copy (a file's pages go back to the page
// cache; a decompressed image is the heap's garbage).
func (k *kernelInput) release() {
	if k.mapped != nil {
		regfile.Unmap(k.mapped)
	}
	k.image, k.mapped = nil, nil
}

// regions are the bytes of cfg's kernel and modules that are a file's
// mapping and may fault, for regfile.Guard: the kernel file's first, then
// each module (an embedder may map its own).
func (k *kernelInput) regions(cfg Config) []regfile.Region {
	r := []regfile.Region{{Name: k.path, Data: k.mapped}}
	for i, m := range cfg.Modules {
		r = append(r, regfile.Region{Name: fmt.Sprintf("module %d (%s)", i, m.Name), Data: m.Data})
	}
	return r
}

// guard runs fn, which reads the kernel and modules, with a file cut
// shorter under it made New's error (an *Error wrapping a
// *regfile.CutError), not a crash.
func (k *kernelInput) guard(cfg Config, fn func() error) error {
	err := regfile.Guard(fn, k.regions(cfg)...)
	var cut *regfile.CutError
	if !errors.As(err, &cut) {
		return err
	}
	if cut.Index == 0 {
		return &Error{Op: "read kernel", Err: err, Hint: "the file changed while it was loaded: try again once nothing writes it", Field: "Kernel"}
	}
	return &Error{Op: "read module", Err: err, Hint: "the file changed while it was loaded: try again once nothing writes it", Field: "Modules"}
}

// kernelImage is cfg's kernel image, mapped and decompressed, or New's
// error for it. Release it once loaded.
func kernelImage(cfg Config) (*kernelInput, error) {
	k := &kernelInput{image: cfg.KernelImage}
	if k.image == nil {
		if cfg.Kernel == "" {
			return nil, &Error{Op: "kernel", Err: fmt.Errorf("no kernel given: %w", ErrConfig), Hint: "set Config.Kernel or Config.KernelImage", Field: "Kernel"}
		}
		// A regular file, no larger than the largest kernel image a
		// gzipped one may expand to: a FIFO or a device would block or
		// never end, and a huge file would be mapped whole before its
		// magic is checked. The cap is not guest RAM: an ELF file's
		// debug sections may make it larger than what it loads.
		// Mapped, not read: only the pages the loader copies are
		// touched, from the page cache every VM shares, and none stays
		// the VMM's once loaded.
		var err error
		if k.mapped, err = regfile.Map(cfg.Kernel, kernelimage.MaxSize); err != nil {
			hint := "check the path"
			switch {
			case errors.Is(err, regfile.ErrNotRegular):
				hint = "give a kernel in a regular file (gzipped or not)"
			case errors.Is(err, regfile.ErrTooLarge):
				hint = "this is not a kernel image"
			}
			return nil, &Error{Op: "read kernel", Err: err, Hint: hint, Field: "Kernel"}
		}
		k.image, k.path = k.mapped, cfg.Kernel
	}
	var gzipped bool
	err := k.guard(cfg, func() error {
		// NetBSD ships its kernels gzipped (netbsd-GENERIC.gz);
		// take them as they come.
		var err error
		k.image, gzipped, err = kernelimage.Decompress(k.image)
		return err
	})
	if err != nil {
		k.release()
		if errors.Is(err, regfile.ErrCut) {
			return nil, err
		}
		hint := "the gzip data is corrupt or truncated: download the kernel again"
		if errors.Is(err, kernelimage.ErrTooLarge) {
			hint = "this is not a kernel image"
		}
		return nil, &Error{Op: "decompress " + kernelWhat(cfg), Err: err, Hint: hint, Field: kernelField(cfg)}
	}
	k.gunzipped = gzipped
	if gzipped && k.mapped != nil {
		// The file was read whole: its pages are of no more use.
		regfile.Unmap(k.mapped)
		k.mapped = nil
	}
	// Said once, rather than by each boot protocol in turn ("in the
	// first 0 bytes"). An empty KernelImage is a value wrong in itself;
	// an empty file, or gzip data of nothing, is no kernel, as a file of
	// junk is not.
	if len(k.image) > 0 {
		return k, nil
	}
	k.release()
	switch {
	case cfg.KernelImage != nil && !gzipped:
		return nil, &Error{Op: "kernel", Err: fmt.Errorf("KernelImage (for %q) is empty: %w", cfg.Kernel, ErrConfig), Field: "KernelImage"}
	case cfg.KernelImage != nil:
		return nil, &Error{Op: "kernel", Err: emptyKernelError(fmt.Sprintf("KernelImage (for %q) holds gzip data of nothing", cfg.Kernel)), Field: "KernelImage"}
	case gzipped:
		return nil, &Error{Op: "read kernel", Err: emptyKernelError(cfg.Kernel + ": the gzip data holds nothing"), Hint: "check the path", Field: "Kernel"}
	}
	return nil, &Error{Op: "read kernel", Err: emptyKernelError(cfg.Kernel + ": the file is empty"), Hint: "check the path", Field: "Kernel"}
}

// emptyKernelError says a kernel image holds nothing: no kernel, so it
// wraps what a file of junk does (ErrNoBootProtocol, with both
// protocols' refusals), without their words for it.
type emptyKernelError string

func (e emptyKernelError) Error() string { return string(e) }

func (e emptyKernelError) Unwrap() []error {
	return []error{ErrNoBootProtocol, multiboot.ErrNotMultiboot, netbsdboot.ErrNotNetBSD}
}

// loadNamedKernel loads kernel into mem under the name the guest is told
// (the file's base name), with New's error when that fails.
func loadNamedKernel(mem *guestmem.Memory, kernel *kernelInput, cfg Config) (bootplan.Plan, error) {
	name := filepath.Base(cfg.Kernel)
	if name == "." || name == "/" || name == "" {
		name = "kernel"
	}
	var p bootplan.Plan
	err := kernel.guard(cfg, func() error {
		var err error
		p, err = loadKernel(mem, kernel.image, name, cfg)
		return err
	})
	if errors.Is(err, regfile.ErrCut) {
		return p, err // guard's *Error
	}
	if err != nil {
		return p, kernelLoadError(err, kernel, cfg)
	}
	return p, nil
}

// kernelLoadError is New's *Error for err, the loaders' refusal of
// kernel under cfg: what the bytes are when they are no kernel
// (contentError), and the field at fault.
func kernelLoadError(err error, kernel *kernelInput, cfg Config) *Error {
	field, hint := loadHint(err)
	if ce := contentError(err, kernel, cfg.Boot); ce != nil {
		err, hint = ce, ce.hint()
	}
	var cmdline *cmdlineError
	if field == "Kernel" && !errors.As(err, &cmdline) {
		// The bytes are at fault, and with KernelImage set Kernel only
		// names them; a name with white space is Kernel's whatever the
		// bytes.
		field = kernelField(cfg)
	}
	return &Error{Op: "load " + kernelWhat(cfg), Err: err, Hint: hint, Field: field}
}

// kernelField is the Config field cfg's kernel image comes from:
// KernelImage when set (Kernel then only names it), else Kernel.
func kernelField(cfg Config) string {
	if cfg.KernelImage != nil {
		return "KernelImage"
	}
	return "Kernel"
}

// kernelWhat names cfg's kernel in an error: "kernel NAME" by the base
// name of Kernel, or "kernel image" when only KernelImage names it.
func kernelWhat(cfg Config) string {
	name := filepath.Base(cfg.Kernel)
	if name == "." || name == "/" || name == "" {
		return "kernel image"
	}
	return "kernel " + name
}

// ContentError is New's refusal of a kernel whose bytes no loader took
// for a kernel and that are of a kind their magic numbers name: data
// compressed again, or by other than gzip, a file system image, a tar
// archive, a relocatable ELF object such as a kernel module; or that are
// what a gzipped file decompressed to, which the loaders' words ("the
// file starts with") would take for the file. It says what the bytes
// are in its own words, and wraps the loaders' refusal, whose sentinels
// (ErrNoBootProtocol, multiboot.ErrNotMultiboot, netbsdboot.ErrNotNetBSD)
// errors.Is still finds.
type ContentError struct {
	// Content is what the bytes are: "gzip", "xz", "bzip2" or "zstd"
	// (compressed data), "ext2" (a file system image), "tar" (a tar
	// archive), "relocatable" (an ELF object linked relocatable, as a
	// kernel module is), or "" when none of these (only Gunzipped is
	// said then).
	Content string
	// Gunzipped says the kernel was gzip data and Content is what it
	// decompressed to ("gzip": it was compressed twice).
	Gunzipped bool
	// Size is how many bytes the loaders read: the decompressed data's
	// size when Gunzipped.
	Size int
	msg  string
	err  error
}

// Error says what the kernel's bytes are.
func (e *ContentError) Error() string { return e.msg }

// Unwrap returns the loaders' refusal.
func (e *ContentError) Unwrap() error { return e.err }

// hint is what an embedder does about e.
func (e *ContentError) hint() string {
	switch {
	case e.Gunzipped && e.Content == "gzip":
		return "decompress it once and give the kernel it holds"
	case e.Gunzipped && (e.Content == "xz" || e.Content == "bzip2" || e.Content == "zstd"):
		return "decompress both layers and give the kernel they hold"
	case e.Content == "xz", e.Content == "bzip2", e.Content == "zstd":
		return "only gzip data is decompressed: decompress it and give the kernel it holds"
	case e.Content == "ext2":
		return "a disk image goes in Disks"
	case e.Content == "tar":
		return "a tar archive, such as a NetBSD set, is no kernel: a root image is built from sets"
	case e.Content == "relocatable":
		return "a kernel module goes in Modules, with the kernel it was built for as the kernel"
	}
	return "pass a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel (netbsd, netbsd-GENERIC.gz)"
}

// contentNames are bootelf's kinds as ContentError names them.
var contentNames = map[bootelf.Content]string{
	bootelf.ContentGzip: "gzip", bootelf.ContentXZ: "xz", bootelf.ContentBzip2: "bzip2",
	bootelf.ContentZstd: "zstd", bootelf.ContentExt2: "ext2", bootelf.ContentTar: "tar",
}

// contentError is err, the loaders' refusal of kernel (under boot), as a
// *ContentError when that says more: the bytes are no kernel at all (no
// protocol's magic) and are of a kind bootelf names, or a relocatable
// ELF object without NetBSD's ident note, or were gunzipped. It is nil
// when err is another refusal (a header found and wrong, a NetBSD kernel
// that does not load), which says itself what is wrong.
func contentError(err error, kernel *kernelInput, boot bootplan.Protocol) *ContentError {
	image := kernel.image
	r := bytes.NewReader(image)
	size := uint64(len(image))
	var prefix error
	switch {
	case errors.Is(err, ErrNoBootProtocol):
		prefix = ErrNoBootProtocol
	case boot == bootplan.NetBSD && errors.Is(err, netbsdboot.ErrNotNetBSD):
		prefix = netbsdboot.ErrNotNetBSD
	case boot == bootplan.Multiboot && errors.Is(err, multiboot.ErrNotMultiboot):
		prefix = multiboot.ErrNotMultiboot
	default:
		return nil
	}
	// A multiboot header found, even broken, is what err is about.
	if _, _, mbErr := multiboot.FindHeader(r, int64(size)); mbErr == nil || errors.Is(mbErr, multiboot.ErrBadChecksum) ||
		errors.Is(mbErr, multiboot.ErrHeaderTooFar) || errors.Is(mbErr, multiboot.ErrMultiboot2) {
		return nil
	}
	ce := &ContentError{Gunzipped: kernel.gunzipped, Size: len(image), err: err}
	var what string // what the bytes are, after "is"
	h, elfErr := bootelf.ReadHeader(r, size)
	switch {
	case elfErr == nil && h.Type == 1: // ET_REL
		if _, nbErr := netbsdboot.Detect(r, int64(size)); !errors.Is(nbErr, netbsdboot.ErrNotNetBSD) {
			return nil // a NetBSD kernel linked relocatable (KASLR), or one cut short
		}
		class := 32
		if h.Class == bootelf.Class64 {
			class = 64
		}
		ce.Content = "relocatable"
		what = fmt.Sprintf("an ELF%d relocatable object (e_type 1, ET_REL) for %s, as a kernel module is, without NetBSD's ident note: not a kernel", class, bootelf.MachineName(h.Machine))
	case elfErr == nil, !errors.Is(elfErr, bootelf.ErrNotELF):
		// An ELF file of another kind, or cut short: the loaders'
		// words say what is wrong with it, and not "the file starts".
		return nil
	default:
		c := bootelf.Identify(r, size)
		ce.Content = contentNames[c]
		switch {
		case ce.Content == "" && !ce.Gunzipped:
			return nil
		case ce.Gunzipped && c.Compressed():
			what = c.String() + " again: the file is compressed twice"
		case c != bootelf.ContentUnknown:
			what = c.Is()[len(": it is "):]
		}
	}
	head := image[:min(len(image), 4)]
	switch {
	case ce.Gunzipped && what != "":
		ce.msg = fmt.Sprintf("%v: the file is gzip data, whose decompressed data (%d bytes) is %s", prefix, len(image), what)
	case ce.Gunzipped:
		ce.msg = fmt.Sprintf("%v: the file is gzip data, whose decompressed data (%d bytes) starts with %q, not %q, and holds no multiboot v1 header (magic %#x) in its first 8192 bytes",
			prefix, len(image), head, "\x7fELF", multiboot.HeaderMagic)
	case ce.Content == "relocatable":
		ce.msg = fmt.Sprintf("%v: the file is %s", prefix, what)
	default:
		// bootelf's words name the kind: only the type is new.
		ce.msg = err.Error()
	}
	return ce
}
