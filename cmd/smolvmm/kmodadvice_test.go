package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// TestDamagedKmodAdvice: a kmod NetBSD's module loader refuses for its
// sections, cut short or stripped, is refused with the advice to give
// the whole kmod of the release's modules set; it got the generic "check
// the --module files and their types". A kmod of the wrong machine
// keeps that one.
func TestDamagedKmodAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm: the modules are judged when the VM loads the kernel")
	}
	dir := t.TempDir()
	netbsd := filepath.Join(dir, "netbsd")
	stripped, err := os.ReadFile(filepath.Join("..", "..", "netbsdboot", "testdata", "tiny-i386-stripped.kmod"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		netbsd:        netbsdELF(3, nil),
		"cut.kmod":    elftest.Kmod(1, 300)[:299],
		"header.kmod": elftest.Kmod(1, 300)[:40],
		"strip.kmod":  stripped,
		"amd64.kmod":  elftest.Kmod(2, 0),
	}
	for name, data := range files {
		path := name
		if !filepath.IsAbs(name) {
			path = filepath.Join(dir, name)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const damaged = "give --module the whole kmod as the NetBSD release ships it in its modules set (stand/ARCH/VERSION/modules/NAME/NAME.kmod), not a copy cut short or stripped: the module loader reads every section and needs the symbol table"
	const generic = "check the --module files and their types, given as FILE,kmod, FILE,fs, FILE,splash or FILE,rndseed"
	for _, tt := range []struct {
		kmod, why, advice string
	}{
		{"cut.kmod", "runs past the module's 299 bytes", damaged},
		{"header.kmod", "it is 40 bytes, shorter than the kernel's 52-byte ELF header", damaged},
		{"strip.kmod", "it has no symbol table (SHT_SYMTAB), as after strip", damaged},
		{"amd64.kmod", "it is a kernel module for", generic},
	} {
		t.Run(tt.kmod, func(t *testing.T) {
			_, stderr, status := runCLI(t, "run", "--net", "none", "-k", netbsd, "--module", filepath.Join(dir, tt.kmod))
			msg := strings.TrimSuffix(stderr, "\n")
			if status != 1 || !strings.Contains(msg, tt.why) || !strings.HasSuffix(msg, " ("+tt.advice+")") {
				t.Errorf("status %d, stderr %q\nwant 1, %q and the advice (%s)", status, msg, tt.why, tt.advice)
			}
		})
	}
}
