package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestKernelContentNamed: a file given as the kernel that is no kernel
// of a kind its bytes name is refused as that kind, and the bytes a
// gzipped file decompressed to are not called the file. A kernel
// gzipped twice was `not an ELF file: the file starts with
// "\x1f\x8b\b\x00"`, which the user sees as the gzip file the kernel
// may be; a gzipped set was "the file's 143 bytes" (decompressed) and
// `the file starts with "./et"`; a kernel module, an ext2 image and xz
// data were never named.
func TestKernelContentNamed(t *testing.T) {
	ext2 := elftest.Ext2Image(8192)
	xz := []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F\x02\x00!\x01")
	kmod := elftest.Kmod(1, 3011)
	set := elftest.TarSet()
	for _, tc := range []struct {
		name    string
		data    []byte
		boot    bootplan.Protocol
		content string
		gz      bool
		msg     string // the whole of the error after "load kernel NAME: "
		hint    string
	}{
		{"gzip twice", elftest.Gzip(elftest.Gzip([]byte("kernel"))), bootplan.Auto, "gzip", true,
			"neither a multiboot kernel nor a NetBSD ELF kernel: the file is gzip data, whose decompressed data (30 bytes) is gzip data again: the file is compressed twice",
			"decompress it once and give the kernel it holds"},
		{"gzip twice, forced native", elftest.Gzip(elftest.Gzip([]byte("kernel"))), bootplan.NetBSD, "gzip", true,
			"not a NetBSD kernel: the file is gzip data, whose decompressed data (30 bytes) is gzip data again: the file is compressed twice",
			"decompress it once and give the kernel it holds"},
		{"gzip twice, forced multiboot", elftest.Gzip(elftest.Gzip([]byte("kernel"))), bootplan.Multiboot, "gzip", true,
			"not a multiboot v1 kernel: the file is gzip data, whose decompressed data (30 bytes) is gzip data again: the file is compressed twice",
			"decompress it once and give the kernel it holds"},
		{"xz in gzip", elftest.Gzip(xz), bootplan.Auto, "xz", true,
			"neither a multiboot kernel nor a NetBSD ELF kernel: the file is gzip data, whose decompressed data (16 bytes) is xz-compressed data again: the file is compressed twice",
			"decompress both layers and give the kernel they hold"},
		{"gzipped set", elftest.Gzip(set), bootplan.Auto, "tar", true,
			`neither a multiboot kernel nor a NetBSD ELF kernel: the file is gzip data, whose decompressed data (2048 bytes) is a tar archive ("ustar" at offset 257)`,
			"a tar archive, such as a NetBSD set, is no kernel: a root image is built from sets"},
		{"gzipped junk", elftest.Gzip([]byte("<html>no kernel</html>")), bootplan.Auto, "", true,
			`neither a multiboot kernel nor a NetBSD ELF kernel: the file is gzip data, whose decompressed data (22 bytes) starts with "<htm", not "\x7fELF", and holds no multiboot v1 header (magic 0x1badb002) in its first 8192 bytes`,
			"pass a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel (netbsd, netbsd-GENERIC.gz)"},
		{"xz", xz, bootplan.Auto, "xz", false,
			`neither a multiboot kernel nor a NetBSD ELF kernel: not a multiboot v1 kernel: no magic 0x1badb002 at a 4-byte aligned offset in the file's 16 bytes; not a NetBSD kernel: not an ELF file: the file starts with "\xfd7zX", not "\x7fELF": it is xz-compressed data`,
			"only gzip data is decompressed: decompress it and give the kernel it holds"},
		{"ext2 image", ext2, bootplan.Auto, "ext2", false,
			`neither a multiboot kernel nor a NetBSD ELF kernel: not a multiboot v1 kernel: no magic 0x1badb002 at a 4-byte aligned offset in the first 8192 bytes; not a NetBSD kernel: not an ELF file: the file starts with "\x00\x00\x00\x00", not "\x7fELF": it is an ext2 file system image (magic 0xef53 at offset 1080)`,
			"a disk image goes in Disks"},
		{"tar", set, bootplan.Auto, "tar", false,
			`neither a multiboot kernel nor a NetBSD ELF kernel: not a multiboot v1 kernel: no magic 0x1badb002 at a 4-byte aligned offset in the file's 2048 bytes; not a NetBSD kernel: not an ELF file: the file starts with "./et", not "\x7fELF": it is a tar archive ("ustar" at offset 257)`,
			"a tar archive, such as a NetBSD set, is no kernel: a root image is built from sets"},
		{"kernel module", kmod, bootplan.Auto, "relocatable", false,
			"neither a multiboot kernel nor a NetBSD ELF kernel: the file is an ELF32 relocatable object (e_type 1, ET_REL) for Intel 80386 (i386), e_machine 3, as a kernel module is, without NetBSD's ident note: not a kernel",
			"a kernel module goes in Modules, with the kernel it was built for as the kernel"},
		{"kernel module, forced native", kmod, bootplan.NetBSD, "relocatable", false,
			"not a NetBSD kernel: the file is an ELF32 relocatable object (e_type 1, ET_REL) for Intel 80386 (i386), e_machine 3, as a kernel module is, without NetBSD's ident note: not a kernel",
			"a kernel module goes in Modules, with the kernel it was built for as the kernel"},
		{"gzipped kernel module", elftest.Gzip(kmod), bootplan.Auto, "relocatable", true,
			"neither a multiboot kernel nor a NetBSD ELF kernel: the file is gzip data, whose decompressed data (3011 bytes) is an ELF32 relocatable object (e_type 1, ET_REL) for Intel 80386 (i386), e_machine 3, as a kernel module is, without NetBSD's ident note: not a kernel",
			"a kernel module goes in Modules, with the kernel it was built for as the kernel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := vmm.CheckKernel(vmm.Config{Kernel: path, Boot: tc.boot})
			var ve *vmm.Error
			if !errors.As(err, &ve) || ve.Field != "Kernel" {
				t.Fatalf("CheckKernel: %v, want a *vmm.Error for Kernel", err)
			}
			var ce *vmm.ContentError
			if !errors.As(err, &ce) {
				t.Fatalf("CheckKernel: %v, want a *vmm.ContentError", err)
			}
			if ce.Content != tc.content || ce.Gunzipped != tc.gz {
				t.Errorf("Content %q, Gunzipped %v; want %q, %v", ce.Content, ce.Gunzipped, tc.content, tc.gz)
			}
			if want := "load kernel k: " + tc.msg; ve.Op+": "+ve.Err.Error() != want {
				t.Errorf("error:\n%s: %v\nwant\n%s", ve.Op, ve.Err, want)
			}
			if ve.Hint != tc.hint {
				t.Errorf("hint %q, want %q", ve.Hint, tc.hint)
			}
			// The loaders' sentinels stay, for errors.Is.
			var sentinel error
			switch tc.boot {
			case bootplan.Auto:
				sentinel = vmm.ErrNoBootProtocol
			case bootplan.NetBSD:
				sentinel = netbsdboot.ErrNotNetBSD
			case bootplan.Multiboot:
				sentinel = multiboot.ErrNotMultiboot
			}
			if !errors.Is(err, sentinel) {
				t.Errorf("error does not wrap %v", sentinel)
			}
			if strings.Contains(ve.Err.Error(), "the file's") && tc.gz {
				t.Errorf("the decompressed data called the file: %v", ve.Err)
			}
		})
	}
}

// TestKernelContentNotClaimed: refusals that say themselves what is
// wrong are left as they are: an ELF file of another system, gzipped,
// and a broken multiboot header.
func TestKernelContentNotClaimed(t *testing.T) {
	foreign := elftest.File{Entry: 0x100000, Segs: []elftest.Seg{{Vaddr: 0x100000, Paddr: 0x100000, Data: []byte{0xf4}}}}.Build()
	badSum := make([]byte, 8192)
	copy(badSum[64:], []byte{0x02, 0xb0, 0xad, 0x1b, 0, 0, 0, 0, 1, 2, 3, 4})
	for _, tc := range []struct {
		name string
		data []byte
		is   error
	}{
		{"gzipped foreign ELF", elftest.Gzip(foreign), vmm.ErrNoBootProtocol},
		{"bad multiboot checksum", badSum, multiboot.ErrBadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := vmm.CheckKernel(vmm.Config{Kernel: path})
			var ce *vmm.ContentError
			if !errors.Is(err, tc.is) || errors.As(err, &ce) {
				t.Errorf("CheckKernel: %v; want %v and no *vmm.ContentError", err, tc.is)
			}
		})
	}
}
