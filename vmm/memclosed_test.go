package vmm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestMemoryAfterClose: the Memory of a closed machine refuses every
// access (guestmem.ErrClosed) instead of faulting on its unmapped pages,
// whether or not the machine ran.
func TestMemoryAfterClose(t *testing.T) {
	needKVM(t)
	for _, ran := range []bool{false, true} {
		m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner()})
		if err != nil {
			t.Fatal(err)
		}
		if ran {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			m.Run(ctx)
			cancel()
		}
		mem := m.Memory()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := mem.Read8(0x100000); !errors.Is(err, guestmem.ErrClosed) {
			t.Errorf("ran %v: Read8 after Close: %v, want ErrClosed", ran, err)
		}
		if b := mem.Bytes(); b != nil {
			t.Errorf("ran %v: Bytes after Close has %d bytes, want none", ran, len(b))
		}
	}
}
