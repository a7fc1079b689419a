package vmm

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/multiboot"
)

// fuzzModuleTypes are the module arguments FuzzCheckKernel picks from
// (a negative pick gives no module): NetBSD's module types, and one that
// no protocol takes.
var fuzzModuleTypes = []string{"", "kmod", "fs", "splash", "rndseed", "bogus"}

// FuzzCheckKernel runs an arbitrary kernel file through the whole path
// New takes it by, CheckKernel: gzip, the choice of protocol (or one
// forced), either loader, an arbitrary module of any type, an append line
// and 3 to 16 MiB of memory. A refusal is a *Error. An accepted plan is
// by the protocol asked for, if one was; its kernel lies in
// [KernelStart, KernelEnd), EIP in it, up to End, which leaves the kernel
// its headroom in memory; its regions are in address order, disjoint,
// below End and clear of the VGA window and firmware below 1 MiB; a
// module given is one of them, as long as the kernel gets it (gunzipped
// by the native handoff). The kernel gzipped gives the same plan, or an
// error naming the same field.
func FuzzCheckKernel(f *testing.F) {
	gzw := gzip.NewWriter(nil)
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		gzw.Reset(&out)
		gzw.Write(b)
		gzw.Close()
		return out.Bytes()
	}
	i386, amd64 := nbKernel(1, 3), nbKernel(2, 62)
	f.Add(i386, []byte("\x7fELF"), int8(-1), uint8(bootplan.Auto), uint8(13), "-s console=com root=ld0a")
	f.Add(gz(amd64), []byte("fs image"), int8(2), uint8(bootplan.Auto), uint8(13), "")
	f.Add(amd64, []byte("fs image"), int8(2), uint8(bootplan.Auto), uint8(0), "") // 3 MiB: too little
	f.Add(i386, gz([]byte("fs image")), int8(2), uint8(bootplan.NetBSD), uint8(13), "console=com")
	f.Add(i386, []byte("splash"), int8(3), uint8(bootplan.NetBSD), uint8(13), "console=com")
	f.Add(amd64, []byte("seed"), int8(4), uint8(bootplan.NetBSD), uint8(13), "console=bogus")
	f.Add(nbMultibootKernel(), []byte(nil), int8(-1), uint8(bootplan.Auto), uint8(13), "-s root=ld0a")
	f.Add(nbMultibootKernel(), []byte("fs image"), int8(2), uint8(bootplan.Multiboot), uint8(13), "")
	f.Add(nbMultiboot64(false), []byte(nil), int8(-1), uint8(bootplan.Multiboot), uint8(13), "")
	f.Add(nbMultiboot64(true), []byte(nil), int8(-1), uint8(bootplan.Multiboot), uint8(13), "")
	f.Add(guests.Demo, []byte("module"), int8(0), uint8(bootplan.Auto), uint8(13), "a=b")
	f.Add(gz(guests.Demo), []byte("module"), int8(5), uint8(bootplan.NetBSD), uint8(0), "")
	f.Add(xenKernel(), []byte(nil), int8(-1), uint8(bootplan.Auto), uint8(13), "")
	f.Add(kaslrKernel(), []byte(nil), int8(-1), uint8(bootplan.NetBSD), uint8(13), "")
	f.Add(cutInSegment(), []byte(nil), int8(-1), uint8(bootplan.Auto), uint8(13), "")
	f.Add(nbKernel(1, 40), []byte(nil), int8(-1), uint8(bootplan.Auto), uint8(13), "") // ARM
	f.Fuzz(func(t *testing.T, image, mod []byte, modType int8, boot, mib uint8, app string) {
		cfg := Config{Kernel: "netbsd", KernelImage: image, MemoryMiB: MinMemoryMiB + int(mib%14),
			Append: app, NoAppend: app == "", Boot: bootplan.Protocol(boot % 3)}
		if modType >= 0 {
			cfg.Modules = []multiboot.Module{{Name: "mod", Data: mod, Args: fuzzModuleTypes[int(modType)%len(fuzzModuleTypes)]}}
		}
		p, err := CheckKernel(cfg)
		if !kernelimage.IsGzip(image) {
			cfg.KernelImage = gz(image)
			gp, gerr := CheckKernel(cfg)
			var ve, gve *Error
			if (err == nil) != (gerr == nil) || err == nil && !reflect.DeepEqual(p, gp) ||
				errors.As(err, &ve) && errors.As(gerr, &gve) && ve.Field != gve.Field {
				t.Fatalf("gzipped, the kernel gives another plan or error:\n%+v, %v\n%+v, %v", p, err, gp, gerr)
			}
		}
		if err != nil {
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *vmm.Error", err, err)
			}
			return
		}
		memSize := uint64(cfg.MemoryMiB) << 20
		if cfg.Boot != bootplan.Auto && p.Protocol != cfg.Boot {
			t.Fatalf("protocol %v, %v asked for", p.Protocol, cfg.Boot)
		}
		if p.Protocol != bootplan.Multiboot && p.Protocol != bootplan.NetBSD {
			t.Fatalf("protocol %v", p.Protocol)
		}
		if p.KernelStart >= p.KernelEnd || p.KernelEnd > p.End || uint64(p.End)+kernelHeadroom > memSize {
			t.Fatalf("kernel [%#x, %#x), end %#x, in %d MiB less the headroom", p.KernelStart, p.KernelEnd, p.End, cfg.MemoryMiB)
		}
		if p.EIP < p.KernelStart || p.EIP >= p.KernelEnd {
			t.Fatalf("EIP %#x outside the kernel [%#x, %#x)", p.EIP, p.KernelStart, p.KernelEnd)
		}
		var end uint64
		modules := 0
		for _, r := range p.Regions {
			if r.Addr < end {
				t.Fatalf("region %v overlaps the one before", r)
			}
			end = r.Addr + r.Len
			if r.Addr >= 1<<20 && end > uint64(p.End) {
				t.Fatalf("region %v past the plan's end %#x", r, p.End)
			}
			if end > vgaStart && r.Addr < 1<<20 {
				t.Fatalf("region %v over the VGA window or firmware", r)
			}
			if strings.HasPrefix(r.What, "module ") {
				modules++
				want := uint64(len(mod))
				if p.Protocol == bootplan.NetBSD && kernelimage.IsGzip(mod) {
					out, err := kernelimage.Gunzip(mod, memSize)
					if err != nil {
						t.Fatalf("module accepted that Gunzip refuses: %v", err)
					}
					want = uint64(len(out))
				}
				if r.Len != want {
					t.Fatalf("region %v for a module of %d bytes", r, want)
				}
			}
		}
		if modules != len(cfg.Modules) {
			t.Fatalf("%d module regions for %d modules: %v", modules, len(cfg.Modules), p.Regions)
		}
	})
}
