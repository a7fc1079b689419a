package netbsdboot

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/realnetbsd"
)

// realKernel returns the uncompressed 5.99.15 kernel and its miniroot
// module, skipping the test when they are absent.
func realKernel(t testing.TB) (kernel, module []byte) {
	t.Helper()
	kpath, mpath := realnetbsd.Files(t)
	gz, err := os.ReadFile(kpath)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if kernel, err = io.ReadAll(zr); err != nil {
		t.Fatal(err)
	}
	if module, err = os.ReadFile(mpath); err != nil {
		t.Fatal(err)
	}
	return kernel, module
}

// TestRealKernel loads g4u's NetBSD 5.99.15 kernel with its miniroot
// module and checks what the kernel will find.
func TestRealKernel(t *testing.T) {
	kernel, module := realKernel(t)
	id, err := Detect(bytes.NewReader(kernel), int64(len(kernel)))
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if id.Version != 599001500 || id.Release() != "5.99.15" || id.Class != 32 {
		t.Errorf("Detect = %+v (%s), want 5.99.15 ELF32", id, id.Release())
	}
	mem := guestmem.New(make([]byte, 128<<20))
	p, err := Load(mem, bytes.NewReader(kernel), int64(len(kernel)), Options{
		KernelName: "netbsd", Append: "-v console=com root=md0a",
		Modules:  []Module{{Name: "miniroot.kmod", Data: module}},
		Headroom: 1 << 20,
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.Protocol != bootplan.NetBSD || p.EIP != 0x100000 || p.ESP != Stack || !p.Symbols || p.Format != "elf32" {
		t.Errorf("plan %+v", p)
	}
	if p.KernelStart != 0x100000 || p.KernelEnd != 0x690000+0xc437c {
		t.Errorf("kernel [%#x, %#x)", p.KernelStart, p.KernelEnd)
	}
	b := mem.Bytes()
	le := binary.LittleEndian
	stack := func(i int) uint32 { return le.Uint32(b[Stack+4*i:]) }
	recs := records(t, b, stack(3))
	st := recs[BtinfoSymtab]
	if len(st) != 12 {
		t.Fatalf("BTINFO_SYMTAB % x, want 12 bytes", st)
	}
	// The symbol area parses back as an ELF file with the kernel's
	// symbols: [ssym, esym) as BTINFO_SYMTAB gives them, where the
	// kernel takes them from.
	ssym := uint32(0x690000 + 0xc437c) // end, 4-aligned already
	symEnd := le.Uint32(st[8:])
	if le.Uint32(st) != 1 || le.Uint32(st[4:]) != ssym || symEnd <= ssym {
		t.Fatalf("BTINFO_SYMTAB % x, want nsym 1, ssym %#x and an esym past it", st, ssym)
	}
	f, err := elf.NewFile(bytes.NewReader(b[ssym:symEnd]))
	if err != nil {
		t.Fatalf("symbol area at %#x: %v", ssym, err)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("symbol area symbols: %v", err)
	}
	want := map[string]uint64{"start": 0xc0100000, "md_root_setconf": 0xc03333fc, "native_loader": 0xc032c71d}
	for _, s := range syms {
		if v, ok := want[s.Name]; ok && s.Value == v {
			delete(want, s.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("symbols missing from the symbol area: %v", want)
	}
	// The module: the next page after the symbols, byte for byte.
	ml := recs[BtinfoModuleList]
	if ml == nil {
		t.Fatal("no BTINFO_MODULELIST")
	}
	base := le.Uint32(ml[8+88:])
	if base%4096 != 0 || base < symEnd || base-symEnd >= 4096 {
		t.Errorf("module at %#x, want the first page boundary at or after the symbols' end %#x", base, symEnd)
	}
	if !bytes.Equal(b[base:base+uint32(len(module))], module) {
		t.Error("the module's bytes differ from miniroot.kmod")
	}
	endpa := le.Uint32(ml[4:])
	if endpa != base+uint32(len(module)) || p.End != endpa {
		t.Errorf("endpa %#x, plan end %#x, want %#x", endpa, p.End, base+uint32(len(module)))
	}
	// esym on the stack: the end of everything loaded, the module's
	// (docs/NETBSD-BOOT-NOTES.md, the /boot handoff).
	if esym := stack(4); esym != base+uint32(len(module)) {
		t.Errorf("stack esym %#x, want the module's end %#x", esym, base+uint32(len(module)))
	}
	if path := strings.TrimRight(string(ml[8:88]), "\x00"); path != "miniroot.kmod" || le.Uint32(ml[8+80:]) != uint32(ModuleELF) {
		t.Errorf("module entry path %q type %d", path, le.Uint32(ml[8+80:]))
	}
	if stack(1) != ABVerbose || stack(5) != 127*1024 || stack(6) != 640 {
		t.Errorf("stack words % x", b[Stack:Stack+28])
	}
}

// records returns the bootinfo records at table address bi by type,
// without their common header.
func records(t testing.TB, b []byte, bi uint32) map[uint32][]byte {
	t.Helper()
	le := binary.LittleEndian
	n := le.Uint32(b[bi:])
	m := map[uint32][]byte{}
	for i := range n {
		a := le.Uint32(b[bi+4+4*i:])
		l, typ := le.Uint32(b[a:]), le.Uint32(b[a+4:])
		if _, dup := m[typ]; dup {
			t.Errorf("bootinfo type %d twice", typ)
		}
		m[typ] = b[a+8 : a+l]
	}
	return m
}

// TestRealModuleGzipped: the real miniroot.kmod, gzipped into a file of
// our own (as `gzip miniroot.kmod` leaves it), loads byte for byte as the
// plain one, its type found from the decompressed ELF header.
func TestRealModuleGzipped(t *testing.T) {
	kernel, module := realKernel(t)
	path := filepath.Join(t.TempDir(), "miniroot.kmod.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(module); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	gzipped, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	load := func(data []byte) []byte {
		mem := guestmem.New(make([]byte, 128<<20))
		_, err := Load(mem, bytes.NewReader(kernel), int64(len(kernel)), Options{
			KernelName: "netbsd", Append: "console=com root=md0a",
			Modules:  []Module{{Name: "miniroot.kmod", Data: data}},
			Headroom: 1 << 20,
		})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return mem.Bytes()
	}
	want, got := load(module), load(gzipped)
	if i := firstDiff(got, want); i >= 0 {
		t.Errorf("guest memory with miniroot.kmod.gz (%d bytes) differs from miniroot.kmod's at %#x", len(gzipped), i)
	}
}

// TestRealModuleNotes: g4u's 5.99.15 kernel has md_root_setconf, but its
// module_init_md primes kmods only (every other type is "Skipping non-ELF
// module"): the miniroot.kmod goes unremarked, a file system image or
// entropy seed gets a note that the kernel will ignore it.
func TestRealModuleNotes(t *testing.T) {
	kernel, module := realKernel(t)
	mem := guestmem.New(make([]byte, 128<<20))
	p, err := Load(mem, bytes.NewReader(kernel), int64(len(kernel)), Options{
		KernelName: "netbsd", Append: "console=com root=md0a",
		Modules: []Module{{Name: "miniroot.kmod", Data: module}, {Name: "root.fs", Data: make([]byte, 8192), Type: ModuleFS},
			{Name: "entropy-file", Data: rndSeed(512), Type: ModuleRnd}},
		Headroom: 1 << 20,
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		"the kernel will ignore module 1 (root.fs, fs): its module_init_md never calls md_root_setconf",
		"the kernel will ignore module 2 (entropy-file, rndseed): it has no rnd_seed",
	}
	if len(p.Notices) != len(want) {
		t.Fatalf("notices %q, want %q", p.Notices, want)
	}
	for i, w := range want {
		if !strings.Contains(p.Notices[i], w) {
			t.Errorf("notice %d %q, want %q", i, p.Notices[i], w)
		}
	}
}
