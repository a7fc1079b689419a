package vmm

import (
	"strconv"
	"strings"
	"testing"
)

// TestCheckStateMemorySize: a state's memory size is one New takes, or
// the state is refused naming MemoryMiB. A forged snapshot (valid
// digests) of 4096 MiB restored with its RAM across the 32-bit PCI/APIC
// hole, and one of 1 MiB was accepted and ran into a guest crash.
func TestCheckStateMemorySize(t *testing.T) {
	tests := []struct {
		mib int
		ok  bool
	}{
		{0, false},
		{1, false},
		{MinMemoryMiB - 1, false},
		{MinMemoryMiB, true},
		{DefaultMemoryMiB, true},
		{MaxMemoryMiB, true},
		{MaxMemoryMiB + 1, false},
		{4096, false},
		{-1, false},
		{1 << 20, false}, // the most a header's size allows (snapshot's 1 TiB)
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.mib), func(t *testing.T) {
			st := demoState(t)
			st.MemoryMiB = tt.mib
			err := checkState(st)
			if tt.ok {
				if err != nil {
					t.Fatalf("checkState: %v, want nil", err)
				}
				return
			}
			want := "MemoryMiB " + strconv.Itoa(tt.mib) + ": a machine has 3 to 3072 MiB"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("checkState: %v, want an error saying %q", err, want)
			}
		})
	}
}
