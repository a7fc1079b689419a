package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestEmptyKernel: an empty kernel is called empty once, not refused by
// each boot protocol in turn ("in the first 0 bytes"): an empty file
// names Kernel and asks to check its path, an empty KernelImage names
// KernelImage and gives no path advice (there is no path).
func TestEmptyKernel(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "netbsd")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	kvm := filepath.Join(t.TempDir(), "kvm")
	for _, tt := range []struct {
		name      string
		cfg       vmm.Config
		field     string
		suffix    string
		configErr bool
	}{
		{"empty file", vmm.Config{Kernel: empty, KVMPath: kvm}, "Kernel", ": the file is empty (check the path)", false},
		{"empty KernelImage", vmm.Config{Kernel: "", KernelImage: []byte{}, KVMPath: kvm}, "KernelImage", "KernelImage (for \"\") is empty: invalid configuration", true},
		{"empty KernelImage named x", vmm.Config{Kernel: "x", KernelImage: []byte{}, KVMPath: kvm}, "KernelImage", "KernelImage (for \"x\") is empty: invalid configuration", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.New(tt.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			var ve *vmm.Error
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.HasSuffix(err.Error(), tt.suffix) ||
				strings.Contains(err.Error(), "0 bytes") || errors.Is(err, vmm.ErrConfig) != tt.configErr {
				t.Errorf("New = %v (Field %q); want Field %q, ending %q, ErrConfig %v", err, fieldOf(ve), tt.field, tt.suffix, tt.configErr)
			}
		})
	}
}

func fieldOf(e *vmm.Error) string {
	if e == nil {
		return "<not a *vmm.Error>"
	}
	return e.Field
}
