package vmm_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreRefusesForgedState: a snapshot whose state section has a
// valid digest but a state no machine could have written (a forged or
// miswritten file) is refused as corrupt, naming what is wrong, before
// anything of it is applied: before the VM is even needed, so a machine
// without KVM reports the snapshot's fault, not its own.
func TestRestoreRefusesForgedState(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	good := append([]byte(nil), f.State...)
	mem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mem = mem[f.Header.MemOff : f.Header.MemOff+f.Header.MemSize]
	f.Close()
	forge := func(edit func(st map[string]any)) string {
		var st map[string]any
		if err := json.Unmarshal(good, &st); err != nil {
			t.Fatal(err)
		}
		edit(st)
		state, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "forged.snap")
		out, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := snapshot.Write(out, state, mem); err != nil {
			t.Fatal(err)
		}
		return p
	}
	field := func(path ...string) func(st map[string]any, v any) {
		return func(st map[string]any, v any) {
			m := st
			for _, k := range path[:len(path)-1] {
				m = m[k].(map[string]any)
			}
			m[path[len(path)-1]] = v
		}
	}
	tests := []struct {
		name string
		edit func(st map[string]any)
		want string
	}{
		{"two interrupt controllers", func(st map[string]any) { st["IRQChips"] = st["IRQChips"].([]any)[:2] }, "2 interrupt controllers, want 3"},
		{"interrupt controller out of order", func(st map[string]any) {
			c := st["IRQChips"].([]any)
			c[0], c[1] = c[1], c[0]
		}, "interrupt controller 0: chip 1"},
		{"short clock", func(st map[string]any) { st["Clock"] = "AAAA" }, "clock: 3 bytes, want 48"},
		{"no PIT", func(st map[string]any) { delete(st, "PIT2") }, "pit2: 0 bytes, want 112"},
		{"short registers", func(st map[string]any) { field("VCPU", "Regs")(st, "AAAA") }, "regs: 3 bytes, want 144"},
		{"neither XSAVE nor FPU", func(st map[string]any) {
			field("VCPU", "XSave")(st, nil)
			field("VCPU", "FPU")(st, nil)
		}, "neither XSAVE nor FPU"},
		{"no CPUID", func(st map[string]any) { field("VCPU", "CPUID")(st, nil) }, "CPUID: 0 entries"},
		{"UART", func(st map[string]any) { field("UART", "IER")(st, 0xF0) }, "uart: IER 0xf0"},
		{"RTC", func(st map[string]any) { field("RTC", "Index")(st, 0x80) }, "rtc: index 0x80"},
		{"virtio device count", func(st map[string]any) { st["MACs"] = []string{"", ""} }, "2 network addresses for 0 virtio devices"},
	}
	for _, tt := range tests {
		p := forge(tt.edit)
		for _, kvmPath := range []string{"", "/nonexistent/kvm"} {
			t.Run(tt.name+" "+kvmPath, func(t *testing.T) {
				m, err := vmm.Restore(vmm.Config{KVMPath: kvmPath}, p)
				if err == nil {
					m.Close()
					t.Fatal("Restore succeeded")
				}
				if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Restore: %v\nwant %v mentioning %q", err, snapshot.ErrCorrupt, tt.want)
				}
			})
		}
	}
}
