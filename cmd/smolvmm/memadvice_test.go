package main

import (
	"fmt"
	"testing"

	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// A kernel that needs guest memory up to the most -m may be is told that
// size alone: -m takes no more.
func TestMemoryAdviceAtMost(t *testing.T) {
	tests := []struct {
		needMiB uint64
		advice  string
	}{
		{64, "give -m 64 or more"},
		{vmm.MaxMemoryMiB - 1, fmt.Sprintf("give -m %d or more", vmm.MaxMemoryMiB-1)},
		{vmm.MaxMemoryMiB, fmt.Sprintf("give -m %d, the most", vmm.MaxMemoryMiB)},
		{vmm.MaxMemoryMiB + 1, fmt.Sprintf("no -m reaches it: the kernel is linked, or its --module files placed, beyond the %d MiB this VMM can give a 32-bit guest", vmm.MaxMemoryMiB)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.needMiB), func(t *testing.T) {
			e := &vmm.Error{Op: "load kernel", Field: "MemoryMiB", Err: &multiboot.MemoryError{What: "segment 0", Need: tt.needMiB << 20, Have: 32 << 20}}
			if got := vmFlagHint(e); got != tt.advice {
				t.Errorf("vmFlagHint: %q, want %q", got, tt.advice)
			}
		})
	}
}
