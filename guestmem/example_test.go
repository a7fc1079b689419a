package guestmem_test

import (
	"errors"
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
)

// A device model reads and writes guest RAM by guest-physical address;
// multi-byte values are little-endian, as the x86 guest stores them.
func ExampleMemory() {
	mem := guestmem.New(make([]byte, 64<<10)) // the VMM passes its mmap of guest RAM

	_ = mem.Write32(0x1000, 0x11223344)
	b, _ := mem.Slice(0x1000, 4)
	fmt.Printf("% x\n", b)
	v, _ := mem.Read16(0x1002)
	fmt.Printf("%#x\n", v)

	// A guest-supplied address past the end is an error, never a host fault.
	_, err := mem.Read64(mem.Size() - 4)
	fmt.Println(errors.Is(err, guestmem.ErrOutOfRange))
	// Output:
	// 44 33 22 11
	// 0x1122
	// true
}

// Memory is an io.ReaderAt and io.WriterAt over guest-physical addresses,
// for loaders and block devices that copy whole buffers.
func ExampleMemory_WriteAt() {
	mem := guestmem.New(make([]byte, 4096))
	_, _ = mem.WriteAt([]byte("hello, guest"), 0x100)

	p := make([]byte, 5)
	n, err := mem.ReadAt(p, 0x100)
	fmt.Printf("%d %v %q\n", n, err, p)

	// A buffer that would run past the end copies nothing.
	n, err = mem.WriteAt([]byte("spill"), 4094)
	fmt.Println(n, err)
	last, _ := mem.Slice(4094, 2)
	fmt.Printf("%q\n", last)
	// Output:
	// 5 <nil> "hello"
	// 0 guest range [0xffe, +0x5): outside guest memory (size 0x1000)
	// "\x00\x00"
}
