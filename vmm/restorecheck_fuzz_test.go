package vmm

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/vmm/devices"
)

// FuzzCheckState decodes a fuzzed state in machineState's JSON encoding
// (the state section's layout around it is FuzzDecodeState's), and
// also over the demo guest's state (testdata/demo-state.json, from
// `smolvmm run --snapshot`: a field the input gives replaces the demo's,
// so that a small input edits a real state; decoding the whole 18 KB
// state took 0.74 ms a time here, too slow to fuzz), and checks each as
// Restore does before anything is applied. An accepted state must hold
// what restoreState then uses without looking (a memory size New takes,
// which becomes the machine's, three interrupt controllers of KVM's
// size, a clock, XSAVE or FPU state), and UART and RTC state their
// Restore takes.
func FuzzCheckState(f *testing.F) {
	b, err := os.ReadFile("testdata/demo-state.json")
	if err != nil {
		f.Fatal(err)
	}
	var demo machineState
	if err := json.Unmarshal(b, &demo); err != nil {
		f.Fatal(err)
	}
	if err := checkState(&demo); err != nil {
		f.Fatalf("the demo guest's state: %v", err)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"IRQChips":[],"Clock":""}`))
	f.Add([]byte(`{"VCPU":{"XSave":null,"FPU":null}}`))
	f.Add([]byte(`{"UART":{"IER":1,"RX":"eA==","IRQHigh":true},"RTC":{"Index":139}}`))
	f.Add([]byte(`{"MACs":["02:00:00:00:00:01"],"Virtio":[{"Type":1,"Queues":[{"PFN":1}]}]}`))
	f.Add([]byte(`{"MemoryMiB":4096}`))
	f.Add([]byte(`{"MemoryMiB":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 2048 {
			// encoding/json's cost grows with the input, and what a
			// longer one reaches (over the demo's state) a short one
			// does too: keep each input to microseconds.
			return
		}
		check := func(st *machineState) {
			if checkState(st) != nil {
				return
			}
			if st.MemoryMiB < MinMemoryMiB || st.MemoryMiB > MaxMemoryMiB {
				t.Fatalf("accepted a memory size of %d MiB, which New refuses", st.MemoryMiB)
			}
			if len(st.IRQChips) != irqchipCount || len(st.Clock) != sizeClock || st.VCPU.XSave == nil && st.VCPU.FPU == nil {
				t.Fatalf("accepted a state restoreState cannot use: %d interrupt controllers, clock of %d bytes, XSAVE %d bytes, FPU %d",
					len(st.IRQChips), len(st.Clock), len(st.VCPU.XSave), len(st.VCPU.FPU))
			}
			for chip, buf := range st.IRQChips {
				if len(buf) != sizeIRQChip {
					t.Fatalf("accepted interrupt controller %d of %d bytes", chip, len(buf))
				}
			}
			if err := devices.NewUART(nil, nil).Restore(st.UART); err != nil {
				t.Fatalf("accepted UART state its Restore refuses: %v", err)
			}
			if err := devices.NewRTC(nil, 0).Restore(st.RTC); err != nil {
				t.Fatalf("accepted RTC state its Restore refuses: %v", err)
			}
		}
		st := new(machineState)
		if json.Unmarshal(b, st) == nil {
			check(st)
		}
		st = cloneState(&demo)
		if json.Unmarshal(b, st) == nil {
			check(st)
		}
	})
}

// cloneState copies s deeply enough that decoding JSON into the copy
// leaves s alone: encoding/json decodes an array into the slice it finds
// (elements included) but gives a []byte a new array.
func cloneState(s *machineState) *machineState {
	c := *s
	c.VCPU.MSRs = slices.Clone(s.VCPU.MSRs)
	c.VCPU.CPUID = slices.Clone(s.VCPU.CPUID)
	c.IRQChips = slices.Clone(s.IRQChips)
	c.PCI.Functions = slices.Clone(s.PCI.Functions)
	c.Virtio = slices.Clone(s.Virtio)
	for i := range c.Virtio {
		c.Virtio[i].Queues = slices.Clone(c.Virtio[i].Queues)
	}
	c.MACs = slices.Clone(s.MACs)
	c.Disks = slices.Clone(s.Disks)
	return &c
}
