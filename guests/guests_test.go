package guests

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// needToolchain skips when gcc or ld is missing: Build cannot work then.
func needToolchain(t *testing.T) {
	t.Helper()
	if _, err := Toolchain(); err != nil {
		t.Skipf("gcc/ld not available: %v", err)
	}
}

// build compiles a guest into the test's own cache directory, once per test binary.
var buildCache = map[string]string{}

func build(t *testing.T, name string) string {
	t.Helper()
	needToolchain(t)
	if p, ok := buildCache[name]; ok {
		return p
	}
	p, err := BuildIn(cacheDir(t), name)
	if err != nil {
		t.Fatalf("Build(%q): %v", name, err)
	}
	buildCache[name] = p
	return p
}

var sharedCache string

func cacheDir(t *testing.T) string {
	if sharedCache == "" {
		d, err := os.MkdirTemp("", "guests-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedCache = d
	}
	return sharedCache
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCache != "" {
		os.RemoveAll(sharedCache)
	}
	os.Exit(code)
}

// checkMultiboot asserts the multiboot v1 header the runtime promises: in the
// first 8192 bytes, 4-byte aligned, flags 0x3, valid checksum.
func checkMultiboot(t *testing.T, b []byte) {
	t.Helper()
	for off := 0; off+12 <= len(b) && off < 8192; off += 4 {
		if binary.LittleEndian.Uint32(b[off:]) != 0x1BADB002 {
			continue
		}
		flags := binary.LittleEndian.Uint32(b[off+4:])
		sum := binary.LittleEndian.Uint32(b[off+8:])
		if flags != 0x3 || 0x1BADB002+flags+sum != 0 {
			t.Fatalf("multiboot header at %#x: flags %#x checksum %#x", off, flags, sum)
		}
		return
	}
	t.Fatal("no multiboot header in the first 8192 bytes")
}

// loadInfo returns e_entry and the single PT_LOAD's vaddr and paddr.
func loadInfo(t *testing.T, b []byte) (entry, vaddr, paddr uint64) {
	t.Helper()
	return loadInfoAs(t, b, elf.ELFCLASS32, elf.EM_386)
}

// loadInfoAs is loadInfo for an ELF of the given class and machine.
func loadInfoAs(t *testing.T, b []byte, class elf.Class, machine elf.Machine) (entry, vaddr, paddr uint64) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not an ELF file: %v", err)
	}
	if f.Class != class || f.Machine != machine {
		t.Fatalf("ELF class %v machine %v, want %v %v", f.Class, f.Machine, class, machine)
	}
	// Guests with 4096-aligned .bss buffers get a second PT_LOAD: fine, the
	// first must start the image and the last must carry .bss.
	var loads []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
		}
	}
	if len(loads) == 0 || len(loads) > 2 {
		t.Fatalf("%d PT_LOAD segments, want 1 or 2", len(loads))
	}
	if last := loads[len(loads)-1]; last.Memsz <= last.Filesz {
		t.Errorf("last PT_LOAD memsz %d <= filesz %d: no .bss to zero", last.Memsz, last.Filesz)
	}
	vaddr, paddr = loads[0].Vaddr, loads[0].Paddr
	return f.Entry, vaddr, paddr
}

// netbsdNote reports whether the ELF carries a .note.netbsd.ident section
// with NetBSD's NT_NETBSD_IDENT note (name "NetBSD", type 1, 4-byte version).
func netbsdNote(t *testing.T, b []byte) bool {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.netbsd.ident")
	if s == nil || s.Type != elf.SHT_NOTE {
		return false
	}
	d, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{7, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0}, "NetBSD\x00\x00"...), 0xc0, 0x87, 0x8b, 0x3b) // 999000000
	return bytes.Equal(d, want)
}

func TestDemoEmbedded(t *testing.T) {
	checkMultiboot(t, Demo)
	entry, vaddr, paddr := loadInfo(t, Demo)
	if vaddr != 0x100000 || paddr != 0x100000 || entry < 0x100000 || entry > 0x110000 {
		t.Errorf("entry %#x vaddr %#x paddr %#x, want everything at 0x100000", entry, vaddr, paddr)
	}
	if len(Demo) > 64<<10 {
		t.Errorf("demo is %d bytes; keep it small", len(Demo))
	}
}

// TestDemoUpToDate catches a bin/demo.elf that no longer matches src/: the
// comparison is exact, so it only runs with the toolchain that built it.
func TestDemoUpToDate(t *testing.T) {
	needToolchain(t)
	want, err := os.ReadFile("bin/demo.toolchain")
	if err != nil {
		t.Fatal(err)
	}
	have, _ := Toolchain()
	if have != string(want) {
		t.Skipf("toolchain differs from the one that built bin/demo.elf:\n%s", have)
	}
	b, err := os.ReadFile(build(t, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Demo) {
		t.Error("bin/demo.elf is stale: run go generate ./guests")
	}
}

func TestBuildAll(t *testing.T) {
	// Everything is loaded at 0x100000 and linked there, unless listed.
	type layout struct {
		native       bool // NetBSD note, no multiboot header: the native handoff
		elf64        bool
		vaddr, paddr uint64
	}
	layouts := map[string]layout{
		"handoff": {vaddr: HandoffBase, paddr: HandoffBase},
		"nbboot":  {native: true, vaddr: 0xc0100000, paddr: 0x100000},
		"long64":  {native: true, elf64: true, vaddr: 0xffffffff80200000, paddr: 0x200000},
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(build(t, name))
			if err != nil {
				t.Fatal(err)
			}
			want, ok := layouts[name]
			if !ok {
				want = layout{vaddr: 0x100000, paddr: 0x100000}
				if recipes()[name].virt {
					want.vaddr = 0xc0100000
				}
			}
			if want.native {
				if bytes.Contains(b[:min(len(b), 8192)], []byte{0x02, 0xb0, 0xad, 0x1b}) {
					t.Error("a multiboot header magic in the first 8192 bytes")
				}
				if !netbsdNote(t, b) {
					t.Error("no NetBSD ident note")
				}
			} else {
				checkMultiboot(t, b)
			}
			class, machine := elf.ELFCLASS32, elf.EM_386
			if want.elf64 {
				class, machine = elf.ELFCLASS64, elf.EM_X86_64
			}
			entry, vaddr, paddr := loadInfoAs(t, b, class, machine)
			if paddr != want.paddr || vaddr != want.vaddr || entry < vaddr || entry > vaddr+0x10000 {
				t.Errorf("entry %#x vaddr %#x paddr %#x, want linked at %#x, loaded at %#x", entry, vaddr, paddr, want.vaddr, want.paddr)
			}
		})
	}
}

func TestBuildCached(t *testing.T) {
	needToolchain(t)
	dir := t.TempDir()
	p1, err := BuildIn(dir, "bad")
	if err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(p1)
	p2, err := BuildIn(dir, "bad")
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(p2)
	if p1 != p2 || !st1.ModTime().Equal(st2.ModTime()) {
		t.Errorf("second build %s (%v) did not reuse %s (%v)", p2, st2.ModTime(), p1, st1.ModTime())
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, guest, path, want string
	}{
		{"unknown guest", "nope", os.Getenv("PATH"), `unknown guest "nope"`},
		{"no gcc", "demo", t.TempDir(), "needs gcc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", tc.path)
			_, err := BuildIn(t.TempDir(), tc.guest)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
