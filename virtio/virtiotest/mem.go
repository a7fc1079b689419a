package virtiotest

import (
	"github.com/smolvmm/smolvmm/guestmem"
)

// Alloc hands out guest addresses from a fake memory, bump-pointer style.
type Alloc struct {
	Mem  *guestmem.Memory // the memory allocated from
	next uint64
}

// NewAlloc returns an allocator over mem starting at address from.
func NewAlloc(mem *guestmem.Memory, from uint64) *Alloc { return &Alloc{Mem: mem, next: from} }

// Take returns the address of n bytes aligned to align (a power of two).
// It panics when memory runs out: tests size their memory.
func (a *Alloc) Take(n, align uint64) uint64 {
	at := (a.next + align - 1) &^ (align - 1)
	must(a.Mem.Check(at, n))
	a.next = at + n
	return at
}

// Pages returns the PFN of n fresh 4096-byte pages.
func (a *Alloc) Pages(n uint64) uint32 { return uint32(a.Take(4096*n, 4096) / 4096) }
