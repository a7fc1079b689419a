package pagemap

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAbsent: in a fresh anonymous mapping, the pages written and the one
// read (mapped to the zero page) are populated, every other is absent;
// memory that is not page-aligned is refused.
func TestAbsent(t *testing.T) {
	ps := os.Getpagesize()
	const pages = 130 // past two words of the set
	mem, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	mem[3*ps] = 1
	mem[64*ps+ps-1] = 2
	mem[129*ps] = 3
	sink = mem[20*ps+5] // read only
	populated := map[int]bool{3: true, 64: true, 129: true, 20: true}
	r, err := Open()
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer r.Close()
	set, err := r.Absent(mem, ps)
	if err != nil {
		t.Fatal(err)
	}
	for p := range pages {
		if absent := set[p/64]&(1<<(p%64)) != 0; absent == populated[p] {
			t.Errorf("page %d: absent %v, want %v", p, absent, !populated[p])
		}
	}
	if _, err := r.Absent(mem[1:ps+1], ps); err == nil {
		t.Error("unaligned memory accepted")
	}
}

// sink keeps a read the test makes from being compiled away.
var sink byte
