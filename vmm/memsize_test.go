package vmm_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestMemoryPastInt: where int is 32 bits, 2048 MiB and more was mapped
// as a negative int of bytes (2048<<20 is -2^31 there), and New and
// CheckKernel failed "mmap guest memory: invalid argument", a cause the
// memory size was not named in. Such memory is refused as what this
// process cannot map, naming MemoryMiB; a 64-bit process takes it.
func TestMemoryPastInt(t *testing.T) {
	for _, mib := range []int{2047, 2048, 3072} {
		cfg := vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: mib}
		fits := uint64(mib)<<20 <= uint64(^uint(0)>>1)
		want := fmt.Sprintf("mmap guest memory: guest memory of %d MiB does not fit a 32-bit process's address space, which maps at most 2047 MiB in one piece (give the VM less memory, or run a 64-bit build)", mib)
		check := func(what string, err error) {
			t.Helper()
			var ve *vmm.Error
			switch {
			case fits && err != nil:
				t.Errorf("%s, %d MiB: %v, want it mapped", what, mib, err)
			case !fits && (!errors.As(err, &ve) || ve.Field != "MemoryMiB" || err.Error() != want):
				t.Errorf("%s, %d MiB: %v, want a *vmm.Error of field MemoryMiB: %q", what, mib, err, want)
			}
		}
		t.Run(strconv.Itoa(mib)+" MiB", func(t *testing.T) {
			_, err := vmm.CheckKernel(cfg)
			check("CheckKernel", err)
			needKVM(t)
			m, err := vmm.New(cfg)
			if err == nil {
				m.Close()
			}
			check("New", err)
		})
	}
}
