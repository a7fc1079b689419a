package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestEmptyKernel: an empty kernel file is called empty once, not refused
// by each boot protocol in turn ("in the first 0 bytes").
func TestEmptyKernel(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "netbsd")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []vmm.Config{
		{Kernel: empty, KVMPath: filepath.Join(t.TempDir(), "kvm")},
		{Kernel: "", KernelImage: []byte{}, KVMPath: filepath.Join(t.TempDir(), "kvm")},
	} {
		m, err := vmm.New(cfg)
		if err == nil {
			m.Close()
			t.Fatal("New succeeded")
		}
		var ve *vmm.Error
		if !errors.As(err, &ve) || ve.Field != "Kernel" || !strings.HasSuffix(err.Error(), ": the file is empty (check the path)") ||
			strings.Contains(err.Error(), "0 bytes") {
			t.Errorf("New(%q) = %v; want a Kernel error saying the file is empty", cfg.Kernel, err)
		}
	}
}
