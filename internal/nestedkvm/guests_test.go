package nestedkvm_test

import (
	"bytes"
	"os"
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
	paging := guests.ForTest(t, "paging")
	long64 := guests.ForTest(t, "long64")
	modes := []struct{ step, words string }{{"paging-4k", ""}, {"paging-pse", "pse"}, {"paging-pae", "pae"}}
	var script string
	for _, m := range modes {
		script += nestedkvm.Step(m.step, "smolvmm", "run", "--net", "none", "-k", "paging.elf", "-a", m.words)
	}
	script += nestedkvm.Step("long64", "smolvmm", "run", "--net", "none", "-k", "long64.elf")
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
	// wrote: the same loader, given what `smolvmm run` gives it, builds the
	// expected memory on the host.
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
	if plan.Protocol != bootplan.NetBSD || plan.Format != "elf64" {
		t.Fatalf("long64 loads as %v %s, want the native handoff of an ELF64 kernel", plan.Protocol, plan.Format)
	}
	want, err := guests.Long64Lines(long64, mem.Bytes(), plan.ESP)
	if err != nil {
		t.Fatal(err)
	}
	exactOutput(t, r.Step(t, "long64"), want)
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
