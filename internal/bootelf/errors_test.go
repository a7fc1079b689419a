package bootelf

import "testing"

// TestMemoryErrorFacts: a MemoryError says what did not fit and how much
// memory it needs, not what to give the guest: the loaders' callers
// advise (vmm's MemoryMiB hint, smolvmm's -m), once.
func TestMemoryErrorFacts(t *testing.T) {
	e := &MemoryError{What: "segment 0 [0x100000, 0x1201000)", Need: 0x1201000, Have: 8 * MiB}
	const want = "guest memory too small: segment 0 [0x100000, 0x1201000) needs 19 MiB of guest memory, have 8 MiB"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
