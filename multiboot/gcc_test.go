package multiboot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// buildGCCKernel compiles testdata/gcc into a kernel linked at 0xc0100000
// and loaded at 0x100000, skipping the test when gcc or ld is missing.
func buildGCCKernel(t *testing.T) string {
	return buildGCC(t, "testdata/gcc/kernel.c", "testdata/gcc/kernel.ld")
}

// buildGCC compiles the C file src and links it with the linker script
// script, skipping the test when gcc or ld is missing.
func buildGCC(t *testing.T, src, script string) string {
	t.Helper()
	for _, tool := range []string{"gcc", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (CI installs gcc and binutils): %v", tool, err)
		}
	}
	dir := t.TempDir()
	obj, kernel := filepath.Join(dir, "kernel.o"), filepath.Join(dir, "kernel")
	for _, cmd := range [][]string{
		{"gcc", "-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-O1", "-c", src, "-o", obj},
		{"ld", "-m", "elf_i386", "-T", script, "-o", kernel, obj},
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

// TestNetBSDLayoutSymbolCopy loads a kernel linked the way NetBSD/i386 is
// (four PT_LOAD segments, the last one a note that starts at end) and then
// runs NetBSD's copy_syms (arch/i386/i386/multiboot.c) on the result: pick
// the symbol table through the section header array with NetBSD's loose
// type tests, choose the copy order by where the header entries lie
// relative to end, and move both tables to end. The tables the kernel ends
// up with must be the file's.
func TestNetBSDLayoutSymbolCopy(t *testing.T) {
	path := buildGCC(t, "testdata/gcc/netbsd.c", "testdata/gcc/netbsd.ld")
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	loads := 0
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_LOAD {
			loads++
		}
	}
	if loads < 4 {
		t.Fatalf("the test kernel has %d PT_LOAD segments; the layout under test needs text, rodata, data+bss and the note", loads)
	}
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var start, end uint64
	for _, s := range syms {
		switch s.Name {
		case "_start":
			start = s.Value
		case "end":
			end = s.Value
		}
	}
	const kernbase = 0xc0000000
	endp := end - kernbase

	image, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mem := newMem(testMem)
	p, err := Load(mem, bytes.NewReader(image), int64(len(image)), Options{KernelName: "netbsd", Append: "console=com root=ld0a"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.Entry != uint32(start-kernbase) {
		t.Errorf("Entry = %#x, want %#x", p.Entry, start-kernbase)
	}
	if uint64(p.KernelEnd) < endp {
		t.Fatalf("KernelEnd %#x is below end %#x", p.KernelEnd, endp)
	}
	b := mem.Bytes()
	note, _ := ef.Section(".note.netbsd.ident").Data()
	expectBytes(t, b, endp, note, "note segment at end")

	le := binary.LittleEndian
	u32 := func(a uint64) uint64 { return uint64(le.Uint32(b[a:])) }
	info := uint64(p.EBX)
	if u32(info+InfoOffFlags)&InfoELFShdr == 0 {
		t.Fatal("no ELF section headers announced")
	}
	num, arr := u32(info+InfoOffShdrNum), u32(info+InfoOffShdrAddr)
	var symHdr, strHdr uint64
	for i := uint64(0); i < num && symHdr == 0; i++ {
		h := arr + i*elfShdrSize
		link := u32(h + shLink)
		if u32(h+shType)&elfSHTSymtab != 0 && link != 0 && u32(arr+link*elfShdrSize+shType)&elfSHTStrtab != 0 {
			symHdr, strHdr = h, arr+link*elfShdrSize
		}
	}
	if symHdr == 0 {
		t.Fatal("NetBSD's loop finds no symbol table in the section header array")
	}
	symAddr, symSize := u32(symHdr+shAddr), u32(symHdr+shSize)
	strAddr, strSize := u32(strHdr+shAddr), u32(strHdr+shSize)
	var symStart, strStart uint64
	switch {
	case symHdr < endp && strHdr < endp, symHdr > endp && strHdr < endp:
		symStart, strStart = endp, endp+symSize
	case symHdr < endp && strHdr > endp:
		strStart, symStart = endp, endp+strSize
	case symHdr < strHdr:
		symStart, strStart = endp, endp+symSize
	default:
		strStart, symStart = endp, endp+strSize
	}
	// NetBSD's i386 memcpy handles overlap like memmove, as Go's copy does;
	// the order of the two copies is NetBSD's.
	if symStart < strStart {
		copy(b[symStart:symStart+symSize], b[symAddr:symAddr+symSize])
		copy(b[strStart:strStart+strSize], b[strAddr:strAddr+strSize])
	} else {
		copy(b[strStart:strStart+strSize], b[strAddr:strAddr+strSize])
		copy(b[symStart:symStart+symSize], b[symAddr:symAddr+symSize])
	}
	symData, _ := ef.Section(".symtab").Data()
	strData, _ := ef.Section(".strtab").Data()
	expectBytes(t, b, symStart, symData, "symbol table after NetBSD's copy")
	expectBytes(t, b, strStart, strData, "string table after NetBSD's copy")
	if esym := symStart + symSize + strSize; esym > uint64(p.End) {
		t.Errorf("esym %#x lies past everything the loader placed (%#x)", esym, p.End)
	}
}
