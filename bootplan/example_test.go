package bootplan_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/multiboot"
)

// A command line's boot protocol option becomes a Protocol; Auto (the
// zero value) leaves the choice to the kernel file.
func ExampleParseProtocol() {
	for _, s := range []string{"auto", "netbsd", "linux"} {
		p, err := bootplan.ParseProtocol(s)
		fmt.Printf("%q: %v, unknown: %v\n", s, p, errors.Is(err, bootplan.ErrProtocol))
	}
	fmt.Println(bootplan.Protocol(0) == bootplan.Auto)
	// Output:
	// "auto": auto, unknown: false
	// "netbsd": netbsd, unknown: false
	// "linux": auto, unknown: true
	// true
}

// A loader's Plan says how the vCPU starts and which memory it wrote:
// copying its Regions into another guest's memory reproduces the boot, as
// a test or a snapshot of the loaded image does.
func ExamplePlan() {
	// A multiboot kernel of a header and "hlt; jmp back to the hlt",
	// loaded at 1 MiB.
	const load = 0x100000
	flags := uint32(multiboot.FlagMemoryInfo | multiboot.FlagAOutKludge)
	kernel := make([]byte, 32, 35)
	for i, v := range []uint32{multiboot.HeaderMagic, flags, -(multiboot.HeaderMagic + flags),
		load, load, 0, 0, load + 32} { // header_addr, load_addr, load_end (EOF), bss_end (none), entry
		binary.LittleEndian.PutUint32(kernel[4*i:], v)
	}
	kernel = append(kernel, 0xF4, 0xEB, 0xFD)

	mem := guestmem.New(make([]byte, 4<<20))
	mb, err := multiboot.Load(mem, bytes.NewReader(kernel), int64(len(kernel)), multiboot.Options{Append: "console=com"})
	if err != nil {
		fmt.Println(err)
		return
	}
	plan := mb.Boot()
	fmt.Printf("%v: EIP %#x, EAX %#x (the multiboot magic)\n", plan.Protocol, plan.EIP, plan.EAX)
	info, image := plan.Regions[0], plan.Regions[len(plan.Regions)-1]
	fmt.Printf("EBX %#x; %s from %#x\n", plan.EBX, info.What, info.Addr)
	fmt.Println(image) // the whole file, as its header's load_end_addr 0 asks

	copyMem := guestmem.New(make([]byte, mem.Size()))
	for _, r := range plan.Regions {
		b, _ := mem.Slice(r.Addr, r.Len)
		_, _ = copyMem.WriteAt(b, int64(r.Addr))
	}
	fmt.Println("same memory in the copy:", bytes.Equal(mem.Bytes(), copyMem.Bytes()))
	code, _ := copyMem.Slice(uint64(plan.EIP), 3)
	fmt.Printf("code at EIP: % x\n", code)
	// Output:
	// multiboot: EIP 0x100020, EAX 0x2badb002 (the multiboot magic)
	// EBX 0x6000; multiboot information, memory map, command line from 0x6000
	// [0x00100000, 0x00100023) a.out image
	// same memory in the copy: true
	// code at EIP: f4 eb fd
}
