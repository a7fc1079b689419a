package netbsdboot

import (
	"bytes"
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// TestKmodDamagedSentinel: a kmod refused for its sections (kobj_load's
// checks: cut short, stripped, two symbol tables...) or cut inside its
// ELF header wraps ErrKmodDamaged with ErrModule, so that a caller can
// advise the whole kmod of the release; a kmod refused for its machine,
// its ELF type or its release does not.
func TestKmodDamagedSentinel(t *testing.T) {
	tiny := readFixture(t, "tiny-i386.kmod")
	tiny64 := readFixture(t, "tiny-amd64.kmod")
	for _, tc := range []struct {
		name    string
		class   byte
		version uint32 // the kernel's; 0: stdKernel's
		mod     Module
		damaged bool
	}{
		{"cut in the ELF header", 1, 0, Module{Data: tiny[:40]}, true},
		{"cut before the section table", 1, 0, Module{Data: tiny[:100]}, true},
		{"cut in the section table's last byte", 1, 0, Module{Data: tiny[:943]}, true},
		{"amd64, cut in the section table's last byte", 2, 0, Module{Data: tiny64[:1391]}, true},
		{"cut in the last section's last byte", 1, 0, Module{Data: elftest.Kmod(1, 300)[:299]}, true},
		{"gzipped, cut short", 1, 0, Module{Data: gz(tiny[:943])}, true},
		{"stripped", 1, 0, Module{Data: readFixture(t, "tiny-i386-stripped.kmod")}, true},
		{"two symbol tables", 1, 0, Module{Data: shdr(tiny, layout32, 9, layout32.typ, 2)}, true},
		{"no sections", 1, 0, Module{Data: ehdr(tiny, layout32.shnum, 0)}, true},

		{"amd64 kmod, i386 kernel", 1, 0, Module{Data: tiny64}, false},
		{"not ELF", 1, 0, Module{Data: []byte("not a kmod at all, nor ELF"), Type: ModuleELF}, false},
		{"executable", 1, 0, Module{Data: ehdr(tiny, 16, 2)}, false},
		{"another release", 2, 1000000000, Module{Data: versionedKmod(2, "miniroot", 903000000, "")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := stdKernel(tc.class).Build()
			if tc.version != 0 {
				k = versionKernel(tc.class, tc.version)
			}
			tc.mod.Name = "m.kmod"
			_, err := Load(newMem(), bytes.NewReader(k), int64(len(k)), Options{Append: "console=com", Modules: []Module{tc.mod}})
			if !errors.Is(err, ErrModule) {
				t.Fatalf("Load: %v, want ErrModule", err)
			}
			if got := errors.Is(err, ErrKmodDamaged); got != tc.damaged {
				t.Errorf("Load: %v\nwraps ErrKmodDamaged %v, want %v", err, got, tc.damaged)
			}
		})
	}
}
