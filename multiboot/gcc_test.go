package multiboot

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// buildGCCKernel compiles testdata/gcc into a kernel linked at 0xc0100000
// and loaded at 0x100000, skipping the test when gcc or ld is missing.
func buildGCCKernel(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"gcc", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (CI installs gcc and binutils): %v", tool, err)
		}
	}
	dir := t.TempDir()
	obj, kernel := filepath.Join(dir, "kernel.o"), filepath.Join(dir, "kernel")
	for _, cmd := range [][]string{
		{"gcc", "-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-O1", "-c", "testdata/gcc/kernel.c", "-o", obj},
		{"ld", "-m", "elf_i386", "-T", "testdata/gcc/kernel.ld", "-o", kernel, obj},
	} {
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		if err != nil {
			if cmd[0] == "gcc" && bytes.Contains(out, []byte("m32")) {
				t.Skipf("gcc cannot build 32-bit code here: %s", out)
			}
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	return kernel
}

func TestLoadGCCKernel(t *testing.T) {
	path := buildGCCKernel(t)
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	addr := map[string]uint64{}
	for _, s := range syms {
		addr[s.Name] = s.Value
	}
	const kernbase = 0xc0000000

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem := newMem(testMem)
	p, err := Load(mem, f, st.Size(), Options{KernelName: "kernel", Append: "console=com root=ld0a"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := uint32(addr["_start"] - kernbase); p.Entry != want {
		t.Errorf("Entry = %#x, want _start's physical address %#x", p.Entry, want)
	}
	if want := uint32(addr["end"] - kernbase); p.KernelStart != kp || p.KernelEnd != want {
		t.Errorf("kernel extent [%#x, %#x), want [%#x, %#x) (the physical address of end)", p.KernelStart, p.KernelEnd, kp, want)
	}
	b := mem.Bytes()
	bss := addr["bss_area"] - kernbase
	expectBytes(t, b, bss, make([]byte, 0x3000), "bss_area")
	text := ef.Section(".text")
	textData, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	expectBytes(t, b, text.Addr-kernbase, textData, ".text")
	if !p.Symbols {
		t.Fatal("no symbols loaded")
	}
	// NetBSD copies the symbol table to end and the string table after it:
	// the loader must have put them there already, in that order.
	symtab, strtab := ef.Section(".symtab"), ef.Section(".strtab")
	symData, _ := symtab.Data()
	strData, _ := strtab.Data()
	expectBytes(t, b, uint64(p.KernelEnd), symData, ".symtab at end")
	expectBytes(t, b, alignUp(uint64(p.KernelEnd)+symtab.Size, 4), strData, ".strtab after .symtab")
}
