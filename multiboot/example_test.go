package multiboot_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/multiboot"
)

// A kernel of 35 bytes: a multiboot header asking for memory information and
// giving a.out kludge addresses (load at 1 MiB, entry right after the
// header), then "hlt; jmp $-1".
func Example() {
	const load = 0x100000
	flags := uint32(multiboot.FlagMemoryInfo | multiboot.FlagAOutKludge)
	kernel := make([]byte, 32, 35)
	for i, v := range []uint32{multiboot.HeaderMagic, flags, -(multiboot.HeaderMagic + flags),
		load, load, 0, 0, load + 32} { // header_addr, load_addr, load_end (EOF), bss_end (none), entry
		binary.LittleEndian.PutUint32(kernel[4*i:], v)
	}
	kernel = append(kernel, 0xF4, 0xEB, 0xFD)

	mem := guestmem.New(make([]byte, 16<<20))
	plan, err := multiboot.Load(mem, bytes.NewReader(kernel), int64(len(kernel)),
		multiboot.Options{KernelName: "netbsd", Append: "console=com root=ld0a"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: entry %#x, EAX %#x, EBX %#x, image [%#x, %#x)\n",
		plan.Format, plan.Entry, plan.EAX, plan.EBX, plan.KernelStart, plan.KernelEnd)

	// The guest finds its command line through the info structure.
	flagsSeen, _ := mem.Read32(uint64(plan.EBX))
	upper, _ := mem.Read32(uint64(plan.EBX) + multiboot.InfoOffMemUpper)
	ptr, _ := mem.Read32(uint64(plan.EBX) + multiboot.InfoOffCmdline)
	line, _ := mem.Slice(uint64(ptr), 32)
	fmt.Printf("flags %#x, mem_upper %d KiB, cmdline %q\n", flagsSeen, upper, line[:bytes.IndexByte(line, 0)])
	// Output:
	// aout-kludge: entry 0x100020, EAX 0x2badb002, EBX 0x6000, image [0x100000, 0x100023)
	// flags 0x245, mem_upper 15360 KiB, cmdline "netbsd console=com root=ld0a"
}

// Callers tell a memory shortage apart and suggest a size.
func ExampleMemoryError() {
	const load = 0x100000
	flags := uint32(multiboot.FlagAOutKludge)
	kernel := make([]byte, 36)
	for i, v := range []uint32{multiboot.HeaderMagic, flags, -(multiboot.HeaderMagic + flags),
		load, load, 0, load + 8<<20, load + 32} { // 8 MiB of BSS
		binary.LittleEndian.PutUint32(kernel[4*i:], v)
	}
	_, err := multiboot.Load(guestmem.New(make([]byte, 4<<20)), bytes.NewReader(kernel), int64(len(kernel)), multiboot.Options{})
	var me *multiboot.MemoryError
	if errors.As(err, &me) {
		fmt.Printf("use -m %d\n", me.NeedMiB())
	}
	// Output:
	// use -m 9
}

// FindHeader and Header.Check explain why a kernel is refused, without
// loading it.
func ExampleFindHeader() {
	flags := uint32(multiboot.FlagMemoryInfo | 1<<3) // bit 3 is unknown
	image := make([]byte, 64)
	for i, v := range []uint32{multiboot.HeaderMagic, flags, -(multiboot.HeaderMagic + flags)} {
		binary.LittleEndian.PutUint32(image[16+4*i:], v)
	}
	h, off, err := multiboot.FindHeader(bytes.NewReader(image), int64(len(image)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("header at %#x, flags %#x\n", off, h.Flags)
	fmt.Println(h.Check())
	// Output:
	// header at 0x10, flags 0xa
	// unsupported required multiboot flags: flags 0xa: required bit(s) 3 unknown to this multiboot v1 loader (known: 0 page-align, 1 memory info, 2 video mode)
}
