package vmm

import (
	"errors"
	"slices"
	"syscall"
	"testing"
)

// TestCaptureXSave: a snapshot saves the FPU state alone only on a KVM
// without KVM_CAP_XSAVE; a KVM with it that fails KVM_GET_XSAVE (as it
// does, EINVAL, for AMX's state past struct kvm_xsave) fails the
// snapshot, where it fell back to the FPU, dropping XCR0 and the AVX
// registers.
func TestCaptureXSave(t *testing.T) {
	xsave, xcrs, fpu := []byte("xsave"), []byte("xcrs"), []byte("fpu")
	tests := []struct {
		name   string
		size   int
		fail   []kvmBlob // the structures KVM fails to give
		want   [3][]byte // xsave, xcrs, fpu
		errNil bool
	}{
		{"XSAVE", sizeXSave, nil, [3][]byte{xsave, xcrs, nil}, true},
		{"XSAVE2's size", 3 * sizeXSave, nil, [3][]byte{xsave, xcrs, nil}, true},
		{"no XCRs", sizeXSave, []kvmBlob{blobXCRs}, [3][]byte{xsave, nil, nil}, true},
		{"no KVM_CAP_XSAVE", 0, nil, [3][]byte{nil, nil, fpu}, true},
		{"KVM_GET_XSAVE fails", sizeXSave, []kvmBlob{blobXSave}, [3][]byte{}, false},
		{"KVM_GET_XSAVE2 fails", 3 * sizeXSave, []kvmBlob{blobXSave}, [3][]byte{}, false},
		{"KVM_GET_FPU fails", 0, []kvmBlob{blobFPU}, [3][]byte{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, c, f, err := captureXSave(tt.size, func(b kvmBlob) ([]byte, error) {
				if slices.Contains(tt.fail, b) {
					return nil, syscall.EINVAL
				}
				return map[kvmBlob][]byte{blobXSave: xsave, blobXCRs: xcrs, blobFPU: fpu}[b], nil
			})
			if tt.errNil != (err == nil) || (err != nil && !errors.Is(err, syscall.EINVAL)) {
				t.Fatalf("err %v, want nil %v", err, tt.errNil)
			}
			if got := [3][]byte{x, c, f}; string(got[0]) != string(tt.want[0]) || string(got[1]) != string(tt.want[1]) || string(got[2]) != string(tt.want[2]) ||
				(got[0] == nil) != (tt.want[0] == nil) || (got[2] == nil) != (tt.want[2] == nil) {
				t.Fatalf("got xsave %q xcrs %q fpu %q, want %q", x, c, f, tt.want)
			}
		})
	}
}
