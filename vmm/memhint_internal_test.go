package vmm

import (
	"fmt"
	"testing"

	"github.com/smolvmm/smolvmm/multiboot"
)

// A layout that needs guest memory up to the most MemoryMiB may be gets
// that size alone: "or more" is not accepted there.
func TestLoadHintMemoryAtMost(t *testing.T) {
	tests := []struct {
		needMiB uint64
		hint    string
	}{
		{64, "set MemoryMiB to 64 or more"},
		{MaxMemoryMiB - 1, fmt.Sprintf("set MemoryMiB to %d or more", MaxMemoryMiB-1)},
		{MaxMemoryMiB, fmt.Sprintf("set MemoryMiB to %d, the most", MaxMemoryMiB)},
		{MaxMemoryMiB + 1, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.needMiB), func(t *testing.T) {
			err := fmt.Errorf("load: %w", &multiboot.MemoryError{What: "segment 0", Need: tt.needMiB << 20, Have: 32 << 20})
			if f, h := loadHint(err); f != "MemoryMiB" || h != tt.hint {
				t.Errorf("loadHint: %q, %q, want MemoryMiB, %q", f, h, tt.hint)
			}
		})
	}
}
