package vmm

import (
	"testing"
	"time"
)

// oldKVMTSC models how KVM before Linux 6.7 takes a host write of the TSC
// (kvm_synchronize_tsc): a value within a second of the one it expects,
// the last one written plus the time since (the vCPU's creation wrote 0),
// is taken for a vCPU synchronising and the TSC it has is kept.
type oldKVMTSC struct {
	hz         uint64 // TSC ticks a second
	sinceWrite uint64 // ticks since the last write
	last       uint64 // the last value written
	tsc        uint64 // the vCPU's TSC now
}

func (k *oldKVMTSC) set(msrs []MSR) error {
	for _, m := range msrs {
		if m.Index != msrTSC {
			continue
		}
		exp := k.last + k.sinceWrite
		sync := m.Data == 0 || (m.Data < exp+k.hz && m.Data+k.hz > exp)
		if !sync {
			k.tsc = m.Data
		}
		k.last, k.sinceWrite = m.Data, 0
	}
	return nil
}

// TestRestoreMSRsTSC restores TSCs of snapshots taken early and late in a
// guest's life, 10 ms after the vCPU's creation, on a model of KVM before
// Linux 6.7: each is the snapshot's, not the fresh vCPU's (a snapshot 0.78 s
// in went 746 ms backwards on such a host when written once).
func TestRestoreMSRsTSC(t *testing.T) {
	const hz = 2_000_000_000
	ticks := func(d time.Duration) uint64 { return uint64(d.Seconds() * hz) }
	for _, tc := range []struct {
		name string
		at   time.Duration // guest time at the snapshot
	}{
		{"100ms", 100 * time.Millisecond},
		{"780ms", 780 * time.Millisecond},
		{"1.1s", 1100 * time.Millisecond},
		{"20s", 20 * time.Second},
		{"a year", 365 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := ticks(10 * time.Millisecond)
			k := &oldKVMTSC{hz: hz, sinceWrite: since, tsc: since}
			want := ticks(tc.at)
			msrs := []MSR{{Index: 0x1b, Data: 0xfee00900}, {Index: msrTSC, Data: want}, {Index: 0x6e0, Data: want + 5}}
			if err := restoreMSRs(k.set, msrs); err != nil {
				t.Fatal(err)
			}
			if k.tsc != want {
				t.Errorf("TSC %#x after the restore, want the snapshot's %#x", k.tsc, want)
			}
		})
	}
}
