package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestCheckKVM: CheckKVM refuses a KVM device New could not use with
// New's own error and hint, so that a caller can say so before long work.
func TestCheckKVM(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("not a KVM device"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "kvm"), "open " + filepath.Join(dir, "kvm") + ": KVM is not available (this host has no KVM"},
		{"a regular file", text, "KVM_GET_API_VERSION"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := vmm.CheckKVM(tt.path)
			var ve *vmm.Error
			if !errors.Is(err, vmm.ErrNoKVM) || !errors.As(err, &ve) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("CheckKVM(%s) = %v, want a *vmm.Error wrapping ErrNoKVM beginning %q", tt.path, err, tt.want)
			}
		})
	}
	if _, err := os.Stat("/dev/kvm"); err == nil {
		if err := vmm.CheckKVM(""); err != nil && !errors.Is(err, vmm.ErrKVMPermission) {
			t.Errorf("CheckKVM(\"\") = %v on a host with /dev/kvm", err)
		}
	}
}
