package snapshot

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMapMemoryPastInt: a memory section larger than an int maps whole on
// a 64-bit host and is refused as too large for a 32-bit one, where the
// length wrapped (4 GiB and a page mapped one page). Run under
// GOARCH=386 to see the refusal.
func TestMapMemoryPastInt(t *testing.T) {
	for _, size := range []uint64{2 << 30, 4<<30 + PageSize} {
		path := filepath.Join(t.TempDir(), "big.snap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := Header{MemOff: PageSize, MemSize: size}
		if err := f.Truncate(int64(h.MemOff + h.MemSize)); err != nil {
			t.Skipf("a sparse %d-byte file: %v", h.MemOff+h.MemSize, err)
		}
		s := &File{Header: h, Path: path, f: f, size: int64(h.MemOff + h.MemSize)}
		mem, err := s.MapMemory()
		if size <= math.MaxInt {
			if err != nil {
				t.Fatalf("%d bytes: %v", size, err)
			}
			if uint64(len(mem)) != size {
				t.Errorf("%d bytes mapped as %d", size, len(mem))
			}
			unix.Munmap(mem)
			continue
		}
		if err == nil {
			unix.Munmap(mem)
			t.Fatalf("%d bytes on a %d-bit host: mapped %d bytes, want a refusal", size, 32, len(mem))
		}
		if !strings.Contains(err.Error(), "address space") {
			t.Errorf("%d bytes: %v; want it to say the address space is too small", size, err)
		}
	}
}
