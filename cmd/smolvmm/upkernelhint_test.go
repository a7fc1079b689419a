package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestReleaseKernelHint: up's advice about its own kernel suggests another
// release or machine only for a kernel of a kind smolvmm does not boot; a
// file the loader refuses for its own damage (no hint of the library's)
// is only to be stripped again.
func TestReleaseKernelHint(t *testing.T) {
	tests := []struct {
		name           string
		hint           string
		want, unwanted string
	}{
		{"not a kernel smolvmm boots", "pass a multiboot v1 kernel", "try another --version or --arch", ""},
		{"a damaged file", "", "remove that file to have up strip it again", "--arch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := releaseKernelHint(&vmm.Error{Op: "load kernel k", Err: errors.New("unsupported ELF file"), Hint: tt.hint, Field: "Kernel"}, "10.1", "i386", "/c/netbsd")
			msg := err.Error()
			if !strings.Contains(msg, "NetBSD 10.1/i386's own kernel, fetched and stripped by up (/c/netbsd)") || !strings.Contains(msg, tt.want) ||
				(tt.unwanted != "" && strings.Contains(msg, tt.unwanted)) {
				t.Errorf("got %q; want the release named, %q, and not %q", msg, tt.want, tt.unwanted)
			}
		})
	}
}
