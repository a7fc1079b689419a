package vmm

import (
	"errors"
	"strings"
	"testing"
)

// TestNonX86HostRefused: on a host whose KVM runs another architecture's
// guests, New and CheckKVM refuse at once (as a restore does, through the
// same openKVM), naming the host's architecture, before any x86 ioctl
// fails obscurely.
func TestNonX86HostRefused(t *testing.T) {
	defer func(arch string, x86 bool) { hostArch, x86Host = arch, x86 }(hostArch, x86Host)
	hostArch, x86Host = "arm64", false
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"New", func() error {
			m, err := New(Config{KernelImage: []byte("not reached"), MemoryMiB: 16})
			if m != nil {
				m.Close()
			}
			return err
		}},
		{"CheckKVM", func() error { return CheckKVM("") }},
	} {
		err := tc.call()
		if err == nil {
			t.Errorf("%s on an arm64 host: no error", tc.name)
			continue
		}
		if !errors.Is(err, ErrNoKVM) || !strings.Contains(err.Error(), "arm64") || !strings.Contains(err.Error(), "x86") {
			t.Errorf("%s on an arm64 host: %v; want ErrNoKVM naming arm64 and x86", tc.name, err)
		}
	}
}
