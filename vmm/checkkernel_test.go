package vmm_test

import (
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestCheckKernel: CheckKernel refuses, without KVM, what New refuses
// when it loads the kernel, and passes what New boots.
func TestCheckKernel(t *testing.T) {
	nbboot := guests.ForTest(t, "nbboot")
	tests := []struct {
		name  string
		cfg   vmm.Config
		proto bootplan.Protocol
		err   error
	}{
		{"demo", vmm.Config{Kernel: "demo", KernelImage: guests.Demo}, bootplan.Multiboot, nil},
		{"NetBSD kernel", vmm.Config{Kernel: nbboot}, bootplan.NetBSD, nil},
		{"not a kernel", vmm.Config{Kernel: "zeros", KernelImage: make([]byte, 8192)}, 0, vmm.ErrNoBootProtocol},
		{"bad console", vmm.Config{Kernel: nbboot, Append: "console=foo"}, 0, netbsdboot.ErrAppend},
		{"too little memory", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 1}, 0, vmm.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := vmm.CheckKernel(tt.cfg)
			var ve *vmm.Error
			if tt.err != nil && (!errors.Is(err, tt.err) || !errors.As(err, &ve)) {
				t.Fatalf("err %v, want a *vmm.Error wrapping %v", err, tt.err)
			}
			if tt.err == nil && (err != nil || p.Protocol != tt.proto) {
				t.Errorf("protocol %v, err %v; want %v", p.Protocol, err, tt.proto)
			}
		})
	}
}
