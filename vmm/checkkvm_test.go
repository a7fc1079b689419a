package vmm_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestCheckKVM: CheckKVM refuses a KVM device New could not use with
// New's own error: the sentinel and the system's error both found by
// errors.Is, the path named, a file that is no KVM device told apart
// from a missing one, and the advice about the host's KVM (firmware,
// modules, the kvm group) kept for /dev/kvm.
func TestCheckKVM(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("not a KVM device"), 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.WriteFile(locked, nil, 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Root opens any file, but sysfs refuses even root a write
		// open of a read-only attribute (EACCES).
		locked = "/sys/devices/system/cpu/online"
	}
	missing := filepath.Join(dir, "kvm")
	for _, tt := range []struct {
		name      string
		path      string
		kind, sys error
		want      string
	}{
		{"missing", missing, vmm.ErrNoKVM, fs.ErrNotExist,
			"open " + missing + ": KVM is not available: no such file or directory (no KVM device at this path: check it)"},
		{"unreadable", locked, vmm.ErrKVMPermission, fs.ErrPermission,
			"open " + locked + ": no permission to use KVM: permission denied (give this user read and write access to it, or run as root)"},
		{"a regular file", text, vmm.ErrNoKVM, unix.ENOTTY,
			"KVM_GET_API_VERSION: " + text + " is not a KVM device: inappropriate ioctl for device"},
		{"/dev/null", "/dev/null", vmm.ErrNoKVM, unix.ENOTTY,
			"KVM_GET_API_VERSION: /dev/null is not a KVM device: inappropriate ioctl for device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := vmm.CheckKVM(tt.path)
			var ve *vmm.Error
			if !errors.Is(err, tt.kind) || !errors.Is(err, tt.sys) || !errors.As(err, &ve) || err.Error() != tt.want {
				t.Fatalf("CheckKVM(%s) = %v\nwant a *vmm.Error wrapping %v and %v: %s", tt.path, err, tt.kind, tt.sys, tt.want)
			}
			if tt.sys != unix.ENOTTY {
				if pe := new(fs.PathError); !errors.As(err, &pe) || pe.Path != tt.path {
					t.Errorf("CheckKVM(%s) = %v, want the *fs.PathError in it", tt.path, err)
				}
			}
		})
	}
	if _, err := os.Stat("/dev/kvm"); err == nil {
		if err := vmm.CheckKVM(""); err != nil && !errors.Is(err, vmm.ErrKVMPermission) {
			t.Errorf("CheckKVM(\"\") = %v on a host with /dev/kvm", err)
		}
	}
}
