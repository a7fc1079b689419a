package multiboot

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"golang.org/x/sys/unix"
)

// Addresses of the standard test kernel: linked at KERNBASE+1 MiB, loaded at
// 1 MiB, as NetBSD is.
const (
	kv      = 0xc0100000
	kp      = 0x100000
	fill    = 0xAA    // guest memory's pattern before loading
	testMem = 4 * mib // guest memory of most tests
)

// newMem returns guest memory of n bytes filled with the fill pattern, so
// tests see what the loader wrote and what it zeroed.
func newMem(n int) *guestmem.Memory {
	return guestmem.New(bytes.Repeat([]byte{fill}, n))
}

// sparseMem returns guest memory of n bytes mapped on demand, as the
// machine maps it, its first testMem bytes filled with the fill pattern
// (where the loader writes): for sizes no test should allocate. The test
// is skipped, with the reason, where such a mapping is refused.
func sparseMem(t *testing.T, n int) *guestmem.Memory {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Skipf("mapping %d bytes of guest memory: %v", n, err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	copy(b, bytes.Repeat([]byte{fill}, testMem))
	return guestmem.New(b)
}

// pattern returns n bytes counting from start, distinct from fill and 0.
func pattern(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i%200)
	}
	return b
}

// textSeg is a 0x200-byte text segment starting with a multiboot header
// whose flags are given.
func textSeg(flags uint32) []byte {
	t := pattern(0x200, 1)
	copy(t, mbHeader(flags))
	return t
}

// testSymtab is three Elf32_Sym entries naming "start" and "end".
func testSymtab() (symtab, strtab []byte) {
	strtab = []byte("\x00start\x00end\x00")
	symtab = make([]byte, 3*16)
	le := binary.LittleEndian
	le.PutUint32(symtab[16:], 1)
	le.PutUint32(symtab[20:], kv+0x20)
	symtab[28] = 0x12 // global function
	le.PutUint16(symtab[30:], tSecText)
	le.PutUint32(symtab[32:], 7)
	le.PutUint32(symtab[36:], kv+0x4000)
	symtab[44] = 0x10
	le.PutUint16(symtab[46:], 0xfff1)
	return symtab, strtab
}

// stdELF is a NetBSD-like kernel: header flags 0x3, text at 1 MiB linked at
// 0xc0100000 with the entry 0x20 bytes in, a data segment with 0x2f80 bytes
// of BSS, and a symbol table.
func stdELF() tELF {
	sym, str := testSymtab()
	return tELF{
		entry: kv + 0x20,
		segs: []tSeg{
			{vaddr: kv, paddr: kp, data: textSeg(FlagPageAlign | FlagMemoryInfo)},
			{vaddr: kv + 0x1000, paddr: kp + 0x1000, data: pattern(0x80, 50), memsz: 0x3000},
		},
		symtab: sym, strtab: str,
	}
}

// aoutImage is an a.out-kludge kernel: header at file offset 0x40, image
// loaded at 0x200000 from file offset 0, 0x1000 bytes of BSS after it.
func aoutImage() []byte {
	const load = 0x200000
	b := pattern(0x800, 3)
	copy(b[0x40:], mbHeader(FlagPageAlign|FlagMemoryInfo|FlagAOutKludge,
		load+0x40, load, load+0x800, load+0x1800, load+0x100))
	return b
}

// changed returns the address of the first byte of mem that is not the fill
// pattern, or -1.
func changed(mem []byte) int {
	for i, b := range mem {
		if b != fill {
			return i
		}
	}
	return -1
}
