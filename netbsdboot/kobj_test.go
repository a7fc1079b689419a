package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// readFixture returns testdata/name (see testdata/tiny.c for how the
// tiny-*.kmod files were built).
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join("testdata", name))
}

// Offsets of the ELF fields the kmod mutations below change, for ELF32
// and ELF64 (sys/sys/exec_elf.h's Elf_Ehdr and Elf_Shdr).
type elfLayout struct {
	shoff, shentsize, shnum, shstrndx int // in the file header
	shdr                              int // sizeof Elf_Shdr
	typ, flags, offset, size          int // in a section header
	link, info                        int
	word                              int // bytes of flags, offset and size
}

var (
	layout32 = elfLayout{shoff: 32, shentsize: 46, shnum: 48, shstrndx: 50, shdr: 40, typ: 4, flags: 8, offset: 16, size: 20, link: 24, info: 28, word: 4}
	layout64 = elfLayout{shoff: 40, shentsize: 58, shnum: 60, shstrndx: 62, shdr: 64, typ: 4, flags: 8, offset: 24, size: 32, link: 40, info: 44, word: 8}
)

// ehdr returns a copy of the kmod b with the 16-bit header field at off set to v.
func ehdr(b []byte, off int, v uint16) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint16(b[off:], v)
	return b
}

// shdr returns a copy of the kmod b (of layout l) with field off of
// section i's header set to v, in the field's width: flags, offset and
// size are words of the class, the others 32 bits.
func shdr(b []byte, l elfLayout, i, off int, v uint64) []byte {
	b = bytes.Clone(b)
	shoff := int(binary.LittleEndian.Uint32(b[l.shoff:]))
	at := b[shoff+i*l.shdr+off:]
	if l.word == 8 && (off == l.flags || off == l.offset || off == l.size) {
		binary.LittleEndian.PutUint64(at, v)
	} else {
		binary.LittleEndian.PutUint32(at, uint32(v))
	}
	return b
}

// TestKmodKobjChecks: NetBSD's module loader refuses a boot module whose
// section headers it cannot use or whose sections it cannot read whole
// (kobj_load, 9.1 sys/kern/subr_kobj.c:229-570; every read past the
// module's end fails, kobj_read_mem's "preloaded object short"), prints
// why and boots on without it. Such a kmod is refused before the VM
// starts, with the loader's message, the check and the section or offset
// at fault. The fixtures are gcc-built modules (testdata/tiny.c): i386's
// has its section header table, 13 headers, at 0x1a8 to its end at 944
// bytes and REL relocations; amd64's 13 at 0x230 to 1392 bytes and RELA.
// elftest.Kmod's .text, section 3, is its last bytes.
func TestKmodKobjChecks(t *testing.T) {
	tiny := readFixture(t, "tiny-i386.kmod")
	tiny64 := readFixture(t, "tiny-amd64.kmod")
	stripped := readFixture(t, "tiny-i386-stripped.kmod")
	least := elftest.Kmod(1, 0)
	l32, l64 := layout32, layout64
	for _, tc := range []struct {
		name  string
		class byte
		kmod  []byte
		want  []string // nil: accepted
	}{
		{"gcc-built i386 kmod", 1, tiny, nil},
		{"gcc-built amd64 kmod", 2, tiny64, nil},
		{"elftest's least i386 kmod", 1, least, nil},
		{"elftest's least amd64 kmod", 2, elftest.Kmod(2, 0), nil},
		{"gzipped", 1, gz(tiny), nil},
		// REL of 17 bytes: two whole entries read, the odd byte not.
		{"odd REL size ending past the end", 1, shdr(shdr(tiny, l32, 8, l32.offset, 944-16), l32, 8, l32.size, 17), nil},
		// A relocation of no code or data is not read.
		{"REL of a NOBITS section past the end", 1, shdr(shdr(tiny, l32, 8, l32.info, 3), l32, 8, l32.offset, 5000), nil},

		{"cut in the ELF header", 1, tiny[:40], []string{"it is 40 bytes, shorter than the kernel's 52-byte ELF header"}},
		{"cut before the section table", 1, tiny[:100], []string{
			"module 0 (m.kmod), a kmod, is not one NetBSD's module loader can load: its section header table, 13 headers of 40 bytes at offset 0x1a8, runs past the module's 100 bytes; kobj_load would refuse it (\"preloaded object short\"), and the kernel would boot without it"}},
		{"cut in the section table's last byte", 1, tiny[:943], []string{"13 headers of 40 bytes at offset 0x1a8, runs past the module's 943 bytes", `"preloaded object short"`}},
		{"amd64, cut in the section table's last byte", 2, tiny64[:1391], []string{"13 headers of 64 bytes at offset 0x230, runs past the module's 1391 bytes", `"preloaded object short"`}},
		{"cut in the last section's last byte", 1, elftest.Kmod(1, 300)[:299], []string{"section 3 (SHT_PROGBITS), 71 bytes at offset 0xe5, runs past the module's 299 bytes", `"preloaded object short"`}},
		{"amd64, cut in the last section's last byte", 2, elftest.Kmod(2, 400)[:399], []string{"section 3 (SHT_PROGBITS), 55 bytes at offset 0x159, runs past the module's 399 bytes"}},
		{"symbol table past the end", 1, shdr(tiny, l32, 10, l32.offset, 944-0x40), []string{"section 10 (.symtab, SHT_SYMTAB), 128 bytes at offset 0x370, runs past the module's 944 bytes", `"preloaded object short"`}},
		{"string table past the end", 1, shdr(tiny, l32, 11, l32.offset, 944), []string{"section 11 (.strtab, SHT_STRTAB), 56 bytes at offset 0x3b0, runs past the module's 944 bytes"}},
		{"section names past the end", 1, shdr(tiny, l32, 12, l32.offset, 900), []string{"section 12 (SHT_STRTAB), 108 bytes at offset 0x384, runs past the module's 944 bytes"}},
		{"empty code past the end", 1, shdr(tiny, l32, 2, l32.offset, 945), []string{"section 2 (.data, SHT_PROGBITS), 0 bytes at offset 0x3b1, runs past the module's 944 bytes"}},
		{"REL past the end", 1, shdr(tiny, l32, 8, l32.offset, 944-8), []string{"section 8 (.rel.rodata, SHT_REL), 16 bytes at offset 0x3a8, runs past the module's 944 bytes", `"preloaded object short"`}},
		{"RELA past the end", 2, shdr(tiny64, l64, 8, l64.offset, 1392-24), []string{"section 8 (.rela.rodata, SHT_RELA), 48 bytes at offset 0x558, runs past the module's 1392 bytes"}},
		{"REL of a section past the table", 1, shdr(tiny, l32, 8, l32.info, 40), []string{"section 8 (.rel.rodata, SHT_REL) relocates section 40 (sh_info), past its 13 sections", "kobj_load would read that section's header from past its section header table"}},

		{"stripped", 1, stripped, []string{"it has no symbol table (SHT_SYMTAB), as after strip", `"file has no valid symbol table"`}},
		{"two symbol tables", 1, shdr(tiny, l32, 9, l32.typ, 2), []string{"it has 2 symbol tables (SHT_SYMTAB: sections 9, 10), and the loader takes one", `"file has no valid symbol table"`}},
		{"symbol table linking code", 1, shdr(tiny, l32, 10, l32.link, 1), []string{"its symbol table, section 10 (.symtab, SHT_SYMTAB), links (sh_link) section 1 (.text, SHT_PROGBITS), not a string table (SHT_STRTAB)", `"file has invalid symbol strings"`}},
		{"symbol table linking nothing", 1, shdr(tiny, l32, 10, l32.link, 0), []string{"links no string table (sh_link 0)", `"file has invalid symbol strings"`}},
		{"symbol table linking past the table", 2, shdr(tiny64, l64, 10, l64.link, 13), []string{"links (sh_link) section 13, past its 13 sections", `"file has invalid symbol strings"`}},
		{"symbol table of less than a symbol", 1, shdr(least, l32, 1, l32.size, 15), []string{"its symbol table, section 1 (SHT_SYMTAB), is 15 bytes, less than one 16-byte symbol", `"no symbol table"`}},
		{"empty string table", 1, shdr(least, l32, 2, l32.size, 0), []string{"its symbols' string table, section 2 (SHT_STRTAB), is empty", `"no symbol strings"`}},

		{"section headers of 41 bytes", 1, ehdr(tiny, l32.shentsize, 41), []string{"its section headers are 41 bytes (e_shentsize), not the 40 of an ELF32 section header", `"bad sizes"`}},
		{"amd64, ELF32-sized section headers", 2, ehdr(tiny64, l64.shentsize, 40), []string{"its section headers are 40 bytes (e_shentsize), not the 64 of an ELF64 section header", `"bad sizes"`}},
		{"no sections", 1, ehdr(tiny, l32.shnum, 0), []string{"it has no sections (e_shnum 0)", `"bad sizes"`}},
		{"more sections than ELF_MAXSHNUM", 1, ehdr(tiny, l32.shnum, 32769), []string{"it has 32769 sections (e_shnum), more than the 32768 (ELF_MAXSHNUM) the loader takes", `"bad sizes"`}},
		{"no section table offset", 1, func() []byte { b := bytes.Clone(tiny); binary.LittleEndian.PutUint32(b[l32.shoff:], 0); return b }(), []string{"it has no section header table (e_shoff 0)", `"bad sizes"`}},
		{"section names past the table", 1, ehdr(tiny, l32.shstrndx, 13), []string{"its section names are in section 13 (e_shstrndx), past its 13 sections", `"bad shstrndx"`}},
		{"no code or data", 1, shdr(least, l32, 3, l32.typ, 7), []string{"it has no code or data (no SHT_PROGBITS or SHT_NOBITS section)", `"file has no contents"`}},
		{"no code", 1, shdr(tiny, l32, 1, l32.flags, 2), []string{"it has no code (no byte in an SHT_PROGBITS or SHT_NOBITS section with SHF_EXECINSTR)", `"no text"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := stdKernel(tc.class).Build()
			_, err := Load(newMem(), bytes.NewReader(k), int64(len(k)), Options{Append: "console=com", Modules: []Module{{Name: "m.kmod", Data: tc.kmod}}})
			checkKmodLoad(t, err, tc.want)
		})
	}
}

// TestKmodEveryPrefixRefused: gcc puts a kmod's section header table
// last, so every prefix of one lacks bytes the loader reads; each is
// refused as damaged (ErrKmodDamaged) from the ELF magic on, none panics.
func TestKmodEveryPrefixRefused(t *testing.T) {
	for _, tc := range []struct {
		class byte
		file  string
	}{{1, "tiny-i386.kmod"}, {2, "tiny-amd64.kmod"}} {
		kmod := readFixture(t, tc.file)
		k := &kernel{class64: tc.class == 2, version: 901000000}
		if _, err := (Module{Name: tc.file, Data: kmod}).checkKmod(0, k); err != nil {
			t.Fatalf("%s whole: %v", tc.file, err)
		}
		for n := 1; n < len(kmod); n++ {
			_, err := (Module{Name: tc.file, Data: kmod[:n]}).checkKmod(0, k)
			// Less than the ELF magic is no ELF file, not a damaged kmod.
			if !errors.Is(err, ErrModule) || n >= 4 && !errors.Is(err, ErrKmodDamaged) {
				t.Errorf("%s cut to %d of %d bytes: %v, want ErrModule and, from 4 bytes, ErrKmodDamaged", tc.file, n, len(kmod), err)
			}
		}
	}
}

// TestRealKmodKobjChecks: g4u's miniroot.kmod (14 sections, their
// header table at 0x1f4184, .rel.rodata, section 7, its last 16 bytes at
// 0x1f4590) is accepted whole with its kernel, and refused cut short or
// stripped, which the kernel refuses ("preloaded object short", "file has
// no valid symbol table") and boots without, at the root device prompt.
func TestRealKmodKobjChecks(t *testing.T) {
	kernel, module := realKernel(t)
	tests := []struct {
		name string
		kmod []byte
		want []string
	}{
		{"whole", module, nil},
		{"first 100 bytes", module[:100], []string{"its section header table, 14 headers of 40 bytes at offset 0x1f4184, runs past the module's 100 bytes", `"preloaded object short"`}},
		{"first 1000000 bytes", module[:1000000], []string{"14 headers of 40 bytes at offset 0x1f4184, runs past the module's 1000000 bytes"}},
		{"all but the last byte", module[:len(module)-1], []string{"section 7 (.rel.rodata, SHT_REL), 16 bytes at offset 0x1f4590, runs past the module's 2049439 bytes", `"preloaded object short"`}},
	}
	if strip, err := exec.LookPath("strip"); err == nil {
		in, out := filepath.Join(t.TempDir(), "in.kmod"), filepath.Join(t.TempDir(), "out.kmod")
		if err := os.WriteFile(in, module, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(strip, "--strip-all", "-o", out, in).CombinedOutput(); err != nil {
			t.Fatalf("strip: %v: %s", err, b)
		}
		tests = append(tests, struct {
			name string
			kmod []byte
			want []string
		}{"stripped", readFile(t, out), []string{"it has no symbol table (SHT_SYMTAB), as after strip", `"file has no valid symbol table"`}})
	} else {
		t.Log("no strip(1): the stripped miniroot.kmod is left out")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, 128<<20))
			_, err := Load(mem, bytes.NewReader(kernel), int64(len(kernel)), Options{
				KernelName: "netbsd", Append: "console=com root=md0a",
				Modules:  []Module{{Name: "miniroot.kmod", Data: tc.kmod}},
				Headroom: 1 << 20,
			})
			want := tc.want
			if want != nil {
				want = append([]string{"module 0 (miniroot.kmod), a kmod"}, want...)
			}
			checkKmodLoad(t, err, want)
		})
	}
}

// checkKmodLoad fails t unless err, Load's of a kernel with a kmod,
// accepts the kmod (want nil) or refuses it as damaged (ErrModule and
// ErrKmodDamaged) with each of want in its message.
func checkKmodLoad(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Load: %v, want the kmod accepted", err)
		}
		return
	}
	if !errors.Is(err, ErrModule) || !errors.Is(err, ErrKmodDamaged) {
		t.Fatalf("Load: %v, want ErrModule and ErrKmodDamaged", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nlacks %q", err, w)
		}
	}
}

// readFile returns the file at path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
