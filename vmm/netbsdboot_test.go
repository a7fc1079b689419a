package vmm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestNetBSDHandoffOnKVM boots, through the native handoff, a NetBSD-noted
// ELF whose code adds two of its stack arguments (boothowto and the
// bootinfo address) and writes the sum to the debug-exit port: the vCPU
// starts with the plan's EIP and ESP and the stack words in place.
func TestNetBSDHandoffOnKVM(t *testing.T) {
	code := []byte{
		0x8b, 0x44, 0x24, 0x04, // mov eax, [esp+4]   boothowto
		0x03, 0x44, 0x24, 0x0c, // add eax, [esp+12]  bootinfo
		0x66, 0xba, 0x01, 0x05, // mov dx, 0x501
		0xef, // out dx, eax
		0xf4, // hlt
	}
	kernel := elftest.File{Entry: 0xc0100000,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: code, Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)}},
	}.Build()
	var log guests.Console
	_, exit, err := boot(t, vmm.Config{Kernel: "netbsd", KernelImage: kernel, MemoryMiB: 16,
		Append: "-s console=com root=ld0a", Verbose: true, Log: &log}, 10*time.Second)
	wantDebugExit(t, exit, err, 0x7000+0x2) // bootinfo table + RB_SINGLE
	wantLines(t, log.String(), "boot protocol netbsd (elf32 kernel): EIP 0x100000 ESP 0x6fe4", "bootinfo table and records")
}

// TestMultibootStaysMultiboot: the project's multiboot guest boots by
// multiboot under auto, as it did before the native handoff existed.
func TestMultibootStaysMultiboot(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := m.Plan()
	if p.Protocol != bootplan.Multiboot || p.EAX != 0x2BADB002 || p.ESP != 0x6000 || !strings.HasPrefix(p.Format, "elf") {
		t.Errorf("plan %+v", p)
	}
}
