package vmm_test

import (
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestKernelImageNamed: with only KernelImage set, errors call it the
// kernel image, not by the name the guest is told ("load kernel kernel:")
// or by an empty path ("decompress kernel :").
func TestKernelImageNamed(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  vmm.Config
		want string // the error's start
	}{
		{"not a kernel", vmm.Config{KernelImage: make([]byte, 8192)}, "load kernel image: "},
		{"bad gzip", vmm.Config{KernelImage: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}}, "decompress kernel image: "},
		{"named", vmm.Config{Kernel: "zeros", KernelImage: make([]byte, 8192)}, "load kernel zeros: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vmm.CheckKernel(tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("CheckKernel: %v; want an error starting %q", err, tt.want)
			}
		})
	}
}
