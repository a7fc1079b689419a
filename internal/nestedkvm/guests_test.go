package nestedkvm_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/nestedkvm"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestPagedGuests runs the project's own guests that need what this
// machine's KVM lacks, in one rig boot, and compares every line they print
// with what they must print: the paging guest as NetBSD/i386 runs (linked
// at 0xc0100000, paging turned on by itself with 4 KiB pages, 4 MiB pages
// and PAE, a page fault and PIT ticks returning with iret, an idle loop on
// hlt woken by the timer), and long64, an ELF64 NetBSD-noted kernel that
// smolvmm enters through the native /boot handoff at its 32-bit start and
// that switches itself to long mode. (QEMU runs the same guests in the
// guests package's tests.)
func TestPagedGuests(t *testing.T) {
	nestedkvm.SkipIfOff(t)
	paging := guests.ForTest(t, "paging")
	long64 := guests.ForTest(t, "long64")
	modes := []struct{ step, words string }{{"paging-4k", ""}, {"paging-pse", "pse"}, {"paging-pae", "pae"}}
	var script string
	for _, m := range modes {
		script += nestedkvm.Step(m.step, "smolvmm", "run", "--net", "none", "-k", "paging.elf", "-a", m.words)
	}
	// -v: smolvmm says where it entered the guest (stderr; stdout is the
	// guest's alone).
	script += nestedkvm.Step("long64", "smolvmm", "run", "--net", "none", "-k", "long64.elf", "-v")
	r := nestedkvm.Run(t, nestedkvm.Job{
		Files: []nestedkvm.File{
			{Path: "/root/paging.elf", Source: paging},
			{Path: "/root/long64.elf", Source: long64},
		},
		Script: script,
	})
	for _, m := range modes {
		want, err := guests.PagingLines(paging, m.words)
		if err != nil {
			t.Fatal(err)
		}
		exactOutput(t, r.Step(t, m.step), want)
	}
	// long64 prints the stack words and bootinfo records smolvmm's loader
	// wrote. First against values fixed outside the loader (a loader
	// that is wrong both ways would pass the comparison below):
	const (
		// guests/src/link64.ld: `start`, first in .text at KERNBASE +
		// 0x200000, loaded AT 0x200000; /boot enters at e_entry &
		// 0x07ffffff (loadfile_machdep.h LOADADDR).
		entry = 0x200000
		// The handoff's stack (docs/NETBSD-BOOT-NOTES.md, the /boot
		// handoff: a return address, then six words) ends where smolvmm's bootinfo table starts, 0x7000
		// (netbsdboot's loader window): ESP 0x7000 - 7*4.
		bootinfo = 0x7000
		esp      = bootinfo - 4*(1+6)
		// biosbasemem: the KiB below 0xA0000; biosextmem: the KiB above
		// 1 MiB of the default 128 MiB.
		basemem = 0xA0000 / 1024
		extmem  = (vmm.DefaultMemoryMiB - 1) * 1024
	)
	if esp != 0x6fe4 || basemem != 640 || extmem != 130048 {
		t.Fatalf("constants: esp %#x basemem %d extmem %d", esp, basemem, extmem)
	}
	got := r.Step(t, "long64")
	if want := fmt.Sprintf("EIP %#x ESP %#x", entry, esp); !strings.Contains(got.Stderr, want) {
		t.Errorf("long64: smolvmm -v does not say %q:\n%s", want, got.Stderr)
	}
	// esym: the end of everything loaded; with no module, the symbol
	// area's: past the kernel's last segment (file), within the file's
	// size.
	kend, size := elfEnd(t, long64)
	stackRE := regexp.MustCompile(`(?m)^nb: boothowto=0x0 bootdev=0x0 bootinfo=` + fmt.Sprintf("%#x", bootinfo) +
		` esym=(0x[0-9a-f]+) extmem=` + fmt.Sprint(extmem) + ` basemem=` + fmt.Sprint(basemem) + "\r$")
	if m := stackRE.FindStringSubmatch(got.Stdout); m == nil {
		t.Errorf("long64: no line matching %s", stackRE)
	} else if esym, _ := strconv.ParseUint(m[1], 0, 64); esym < kend || esym > kend+size {
		t.Errorf("long64: esym %#x, want past the kernel's end %#x and within the file's %d bytes of it", esym, kend, size)
	}
	for _, line := range []string{
		fmt.Sprintf("nb: esp=%#x return=0x0", esp),
		// vmm.DefaultAppend is "console=com root=ld0a"; COM1 at 9600.
		`nb: btinfo console "com" addr=0x3f8 speed=9600`,
		`nb: btinfo rootdevice "ld0a"`,
		`nb: btinfo bootpath "long64.elf"`,
		"nb: memmap addr=0x0000000000000000 size=0x00000000000a0000 type=1",
		fmt.Sprintf("nb: memmap addr=0x0000000000100000 size=0x%016x type=1", (vmm.DefaultMemoryMiB-1)<<20),
	} {
		if !strings.Contains(got.Stdout, "\n"+line+"\r\n") {
			t.Errorf("long64 did not print %q", line)
		}
	}
	// Then every line, against what the same loader, given what
	// `smolvmm run` gives it, builds on the host.
	raw, err := os.ReadFile(long64)
	if err != nil {
		t.Fatal(err)
	}
	mem := guestmem.New(make([]byte, vmm.DefaultMemoryMiB<<20))
	plan, err := netbsdboot.Load(mem, bytes.NewReader(raw), int64(len(raw)), netbsdboot.Options{
		KernelName: "long64.elf", Append: vmm.DefaultAppend})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Protocol != bootplan.NetBSD || plan.Format != "elf64" || plan.EIP != entry || plan.ESP != esp {
		t.Fatalf("long64 loads as %v %s entered at %#x with ESP %#x, want the native handoff of an ELF64 kernel at %#x with ESP %#x",
			plan.Protocol, plan.Format, plan.EIP, plan.ESP, entry, esp)
	}
	want, err := guests.Long64Lines(long64, mem.Bytes(), plan.ESP)
	if err != nil {
		t.Fatal(err)
	}
	exactOutput(t, got, want)
}

// elfEnd returns the physical end of path's last PT_LOAD and the file's
// size, read with debug/elf.
func elfEnd(t *testing.T, path string) (end, size uint64) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			end = max(end, p.Paddr+p.Memsz)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return end, uint64(st.Size())
}

// exactOutput checks that a guest step printed exactly lines and ended
// through the debug-exit port with value 0 (status 1, as QEMU reports it).
func exactOutput(t *testing.T, s nestedkvm.StepResult, lines []string) {
	t.Helper()
	if s.Status != 1 {
		t.Errorf("%s: status %d, want 1 (debug-exit 0); stderr:\n%s", s.Name, s.Status, s.Stderr)
	}
	if want := strings.Join(lines, "\r\n") + "\r\n"; s.Stdout != want {
		t.Errorf("%s printed:\n%s\nwant:\n%s", s.Name, s.Stdout, want)
	}
}
