package main

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestBenchSmallRAMMemory: with 4 or 8 MiB of guest RAM, the size of the
// Go heap's mappings, every VM's memory is read: the VMM says where its
// guest RAM is, where the bench could not tell it from the heap by size
// ("two anonymous mappings of 4194304 bytes ...: cannot tell which is the
// guest RAM", for 2 or 3 VMs of 4).
func TestBenchSmallRAMMemory(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, mib := range []int{4, 8} {
		t.Run(fmt.Sprintf("parallel, -m %d", mib), func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "p.json")
			status, stdout, stderr := benchRun(t, nil, "-m", fmt.Sprint(mib), "--parallel", "4", "--net", "none", "--json", js)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			res := readParallelJSON(t, js)
			if res.Started != 4 || len(res.VMs) != 4 {
				t.Fatalf("started %d, %d VMs: %s", res.Started, len(res.VMs), stdout)
			}
			for _, v := range res.VMs {
				if m := v.Memory; m == nil || v.MemoryError != "" || m.GuestRSSKiB <= 0 || m.GuestRSSKiB > int64(mib)<<10 {
					t.Errorf("vm %d: memory %+v, error %q: want its guest RAM read", v.Index, m, v.MemoryError)
				}
			}
		})
		t.Run(fmt.Sprintf("one at a time, -m %d", mib), func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "b.json")
			status, stdout, stderr := benchRun(t, nil, "-m", fmt.Sprint(mib), "-n", "1", "--warmup", "0", "--net", "none", "--json", js)
			if status != 0 {
				t.Fatalf("status %d\n%s\n%s", status, stdout, stderr)
			}
			s := readBenchJSON(t, js).Systems[0]
			if m := s.Memory; m == nil || s.MemoryError != "" || m.GuestRAMKiB != int64(mib)<<10 || m.GuestRSSKiB <= 0 {
				t.Errorf("memory %+v, error %q: want its guest RAM read", m, s.MemoryError)
			}
		})
	}
}
