package netbsdboot_test

import (
	"bytes"
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// ExampleLoad boots a tiny NetBSD/i386 kernel natively with a module, and
// shows where everything went.
func ExampleLoad() {
	kernel := elftest.File{
		Entry: 0xc0100000,
		Segs:  []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: make([]byte, 0x1000), Memsz: 0x2000}},
		Secs:  []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)}},
	}.Build()
	// The least a kmod can be, 230 bytes: a relocatable object (ET_REL)
	// for i386 whose section headers name a symbol table, its string
	// table and a byte of code.
	kmod := elftest.Kmod(1, 0)
	mem := guestmem.New(make([]byte, 8<<20))
	p, err := netbsdboot.Load(mem, bytes.NewReader(kernel), int64(len(kernel)), netbsdboot.Options{
		KernelName: "netbsd",
		Append:     "-s console=com root=ld0a",
		Modules:    []netbsdboot.Module{{Name: "tmpfs.kmod", Data: kmod}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %s: EIP %#x ESP %#x\n", p.Protocol, p.Format, p.EIP, p.ESP)
	for _, r := range p.Regions {
		fmt.Println(r)
	}
	// Output:
	// netbsd elf32: EIP 0x100000 ESP 0x6fe4
	// [0x00006000, 0x00007000) stack: return address, boothowto, bootdev, bootinfo, esym, biosextmem, biosbasemem
	// [0x00007000, 0x000071b0) bootinfo table and records
	// [0x00100000, 0x00102000) segment 0
	// [0x00102000, 0x001020cc) symbols: ELF header copy, section headers, section names, symbol and string tables, CTF
	// [0x00103000, 0x001030e6) module tmpfs.kmod (kmod)
}

// ExampleParseAppend shows what an append line becomes under the native
// handoff.
func ExampleParseAppend() {
	a, _ := netbsdboot.ParseAppend("-s console=com root=ld0a init=/bin/sh")
	fmt.Printf("boothowto %#x, console %s at %#x, %d baud, root %s\n", a.Howto, a.Console, a.ConsoleAddr, a.ConsoleSpeed, a.Root)
	fmt.Println(len(a.Warnings), "word not passed")
	// Output:
	// boothowto 0x2, console com at 0x3f8, 9600 baud, root ld0a
	// 1 word not passed
}
