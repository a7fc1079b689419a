package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// versionedKmod is a kmod of the class as MODULE(name) builds it: the
// modinfo_t name_modinfo, a local object 8 bytes into .rodata whose first
// u_int, mi_version, is version, and link_set_modules' pointer to it,
// __link_set_modules_sym_name_modinfo, first in the symbol table and
// zero until relocated. With where "nobits" .rodata is SHT_NOBITS; with
// "past" the symbol lies past its section's end; with "none" the kmod
// has no modinfo symbol.
func versionedKmod(class byte, name string, version uint32, where string) []byte {
	ptr := 4
	if class == 2 {
		ptr = 8
	}
	rodata := append(pattern(8, 3), binary.LittleEndian.AppendUint32(nil, version)...)
	rodata = append(rodata, make([]byte, 5*ptr-4)...)
	value := uint64(8)
	rodataType := uint32(1) // SHT_PROGBITS
	switch where {
	case "nobits":
		rodataType = 8
	case "past":
		value = uint64(len(rodata)) - 2
	}
	syms := []elftest.Sym{
		{Name: "__link_set_modules_sym_" + name + "_modinfo", Value: 0, Size: uint64(ptr), Shndx: 3},
		{Name: name + "_modinfo", Value: value, Size: uint64(5 * ptr), Shndx: 2},
		{Name: name + "_modcmd", Value: 0, Size: 16, Shndx: 1},
	}
	if where == "none" {
		syms = syms[2:]
	}
	sym, str := elftest.Symtab(class, false, syms)
	// The assembler types both modinfo symbols objects (STT_OBJECT),
	// name_modinfo local: elftest makes every symbol a global function.
	entSize, info := 16, 12
	if class == 2 {
		entSize, info = 24, 4
	}
	for i, s := range syms {
		if strings.HasSuffix(s.Name, "_modinfo") {
			sym[(i+1)*entSize+info] = 1 // STB_LOCAL, STT_OBJECT
		}
	}
	return elftest.File{Class: class, Type: 1, Secs: []elftest.Sec{
		{Name: ".text", Type: 1, Flags: 6, Data: bytes.Repeat([]byte{0xc3}, 16)},
		{Name: ".rodata", Type: rodataType, Flags: 2, Data: rodata},
		{Name: "link_set_modules", Type: 1, Flags: 2, Data: make([]byte, ptr)},
		{Name: ".symtab", Type: 2, Data: sym, Link: 5, Info: 1, Entsize: uint64(entSize)},
		{Name: ".strtab", Type: 3, Data: str},
	}}.Build()
}

// versionKernel is the class's stdKernel of NetBSD version.
func versionKernel(class byte, version uint32) []byte {
	k := stdKernel(class)
	k.Secs[1].Data = elftest.NetBSDNote(false, version)
	return k.Build()
}

// NetBSD's module loader refuses a kmod whose modinfo_t.mi_version is
// not compatible with the kernel's __NetBSD_Version__ (9.1
// sys/kern/kern_module.c:622-631 module_compatible, :1106-1114: "module
// `%s' built for `%d', system `%d'") and boots on without it: a release
// takes a kmod of its own major and minor version, -current only one of
// its exact version. Such a kmod is refused (ErrKmodVersion, so that the
// advice is to take the kmod of the kernel's release, not to check the
// module's type); one whose mi_version cannot be found is left to the
// kernel.
func TestKmodVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		class   byte
		kernel  uint32
		kmod    []byte
		wantErr []string // pieces of the error; nil when it loads
	}{
		{"10.0 kmod, 10.0 kernel", 2, 1000000000, versionedKmod(2, "miniroot", 1000000000, ""), nil},
		{"i386: 9.1 kmod, 9.1 kernel", 1, 901000000, versionedKmod(1, "miniroot", 901000000, ""), nil},
		{"9.3 kmod, 10.0 kernel", 2, 1000000000, versionedKmod(2, "miniroot", 903000000, ""),
			[]string{"module 0 (m.kmod) was built for NetBSD 9.3 (mi_version 903000000 in miniroot_modinfo), but the kernel is NetBSD 10.0 (1000000000)",
				"module `miniroot' built for `903000000', system `1000000000'"}},
		{"i386: 10.0 kmod, 10.1 kernel", 1, 1001000000, versionedKmod(1, "tmpfs", 1000000000, ""),
			[]string{"built for NetBSD 10.0 (mi_version 1000000000 in tmpfs_modinfo), but the kernel is NetBSD 10.1 (1001000000)"}},
		{"10.1 kmod, 10.0 kernel", 2, 1000000000, versionedKmod(2, "miniroot", 1001000000, ""),
			[]string{"built for NetBSD 10.1"}},
		// Within 10000 of each other, as the release rule allows.
		{"patch level apart, release", 2, 901000000, versionedKmod(2, "miniroot", 901000900, ""), nil},
		// module_compatible's release rule is abs(v1 - v2) < 10000:
		// 9999 apart either way loads, 10000 apart is refused.
		{"9999 above, release", 2, 901000000, versionedKmod(2, "miniroot", 901009999, ""), nil},
		{"9999 below, release", 2, 901000000, versionedKmod(2, "miniroot", 900990001, ""), nil},
		{"10000 above, release", 2, 901000000, versionedKmod(2, "miniroot", 901010000, ""),
			[]string{"(mi_version 901010000 in miniroot_modinfo), but the kernel is NetBSD 9.1 (901000000)", "module `miniroot' built for `901010000', system `901000000'"}},
		{"10000 below, release", 2, 901000000, versionedKmod(2, "miniroot", 900990000, ""),
			[]string{"(mi_version 900990000 in miniroot_modinfo), but the kernel is NetBSD 9.1 (901000000)"}},
		{"-current, same version", 2, 1099001000, versionedKmod(2, "miniroot", 1099001000, ""), nil},
		{"-current, another 10.99", 2, 1099001000, versionedKmod(2, "miniroot", 1099000900, ""),
			[]string{"built for NetBSD 10.99.9 (mi_version 1099000900 in miniroot_modinfo), but the kernel is NetBSD 10.99.10 (1099001000)", "-current"}},
		{"no modinfo symbol", 2, 1000000000, versionedKmod(2, "miniroot", 903000000, "none"), nil},
		{"modinfo in a NOBITS section", 2, 1000000000, versionedKmod(2, "miniroot", 903000000, "nobits"), nil},
		{"modinfo past its section's end", 1, 1000000000, versionedKmod(1, "miniroot", 903000000, "past"), nil},
		{"only the null symbol", 2, 1000000000, elftest.Kmod(2, 100), nil},
		{"gzipped 9.3 kmod, 10.0 kernel", 2, 1000000000, gz(versionedKmod(2, "miniroot", 903000000, "")), []string{"built for NetBSD 9.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := versionKernel(tc.class, tc.kernel)
			_, err := Load(newMem(), bytes.NewReader(k), int64(len(k)), Options{Append: "console=com", Modules: []Module{{Name: "m.kmod", Data: tc.kmod}}})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrModule) || !errors.Is(err, ErrKmodVersion) {
				t.Fatalf("error %v, want ErrModule and ErrKmodVersion", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want %q in it", err, w)
				}
			}
		})
	}
}
