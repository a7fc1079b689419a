package vmm

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/bobuhiro11/gokvm/kvm"
)

// TestCaptureXSave: a snapshot saves the FPU state alone only on a KVM
// without KVM_CAP_XSAVE; a KVM with it that fails KVM_GET_XSAVE (as it
// does, EINVAL, for AMX's state past struct kvm_xsave) fails the
// snapshot, where it fell back to the FPU, dropping XCR0 and the AVX
// registers. A KVM whose XSAVE state is more than a snapshot holds fails
// it with ErrXSaveTooLarge, naming the size.
func TestCaptureXSave(t *testing.T) {
	xsave, xcrs, fpu := []byte("xsave"), []byte("xcrs"), []byte("fpu")
	tests := []struct {
		name string
		size int
		fail []kvmBlob // the structures KVM fails to give
		want [3][]byte // xsave, xcrs, fpu
		err  error     // wrapped by the error; nil when none
	}{
		{"XSAVE", sizeXSave, nil, [3][]byte{xsave, xcrs, nil}, nil},
		{"XSAVE2's size", 3 * sizeXSave, nil, [3][]byte{xsave, xcrs, nil}, nil},
		{"XSAVE2's size, the most a snapshot holds", maxXSave, nil, [3][]byte{xsave, xcrs, nil}, nil},
		{"XSAVE2's size, more than a snapshot holds", maxXSave + 1, nil, [3][]byte{}, ErrXSaveTooLarge},
		{"no XCRs", sizeXSave, []kvmBlob{blobXCRs}, [3][]byte{xsave, nil, nil}, nil},
		{"no KVM_CAP_XSAVE", 0, nil, [3][]byte{nil, nil, fpu}, nil},
		{"KVM_GET_XSAVE fails", sizeXSave, []kvmBlob{blobXSave}, [3][]byte{}, syscall.EINVAL},
		{"KVM_GET_XSAVE2 fails", 3 * sizeXSave, []kvmBlob{blobXSave}, [3][]byte{}, syscall.EINVAL},
		{"KVM_GET_FPU fails", 0, []kvmBlob{blobFPU}, [3][]byte{}, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, c, f, err := captureXSave(tt.size, func(b kvmBlob) ([]byte, error) {
				if slices.Contains(tt.fail, b) {
					return nil, syscall.EINVAL
				}
				return map[kvmBlob][]byte{blobXSave: xsave, blobXCRs: xcrs, blobFPU: fpu}[b], nil
			})
			if (tt.err == nil) != (err == nil) || !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if got := [3][]byte{x, c, f}; string(got[0]) != string(tt.want[0]) || string(got[1]) != string(tt.want[1]) || string(got[2]) != string(tt.want[2]) ||
				(got[0] == nil) != (tt.want[0] == nil) || (got[2] == nil) != (tt.want[2] == nil) {
				t.Fatalf("got xsave %q xcrs %q fpu %q, want %q", x, c, f, tt.want)
			}
		})
	}
}

// TestXSaveSize: the size of XSAVE state a machine records is KVM's
// answer, however large: a KVM moving more than a snapshot holds made
// every New fail, where only a snapshot or a restore (checkXSaveSize)
// is refused now.
func TestXSaveSize(t *testing.T) {
	const kvmFD, vmFD = 3, 4
	tests := []struct {
		name      string
		xsave     uintptr // KVM_CAP_XSAVE's answer
		xsave2    uintptr // KVM_CAP_XSAVE2's
		xsave2Err error
		want      int
		refused   string // checkXSaveSize's refusal; "" when none
	}{
		{"no KVM_CAP_XSAVE", 0, 0, nil, 0, ""},
		{"no KVM_CAP_XSAVE2", 1, 0, nil, sizeXSave, ""},
		{"KVM_CHECK_EXTENSION on a VM fails", 1, 0, syscall.EINVAL, sizeXSave, ""},
		{"KVM_CAP_XSAVE2, struct kvm_xsave's size", 1, sizeXSave, nil, sizeXSave, ""},
		{"KVM_CAP_XSAVE2, AMX", 1, 11008, nil, 11008, ""},
		{"KVM_CAP_XSAVE2, the most a snapshot holds", 1, maxXSave, nil, maxXSave, ""},
		{"KVM_CAP_XSAVE2, more than a snapshot holds", 1, 128 << 10, nil, 128 << 10, "this host's KVM moves more XSAVE state than a snapshot holds: 131072 bytes (KVM_CAP_XSAVE2), at most 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xsaveSizeBy(func(fd uintptr, c kvm.Capability) (uintptr, error) {
				switch {
				case fd == kvmFD && c == capXSave:
					return tt.xsave, nil
				case fd == vmFD && c == capXSave2:
					return tt.xsave2, tt.xsave2Err
				}
				t.Fatalf("KVM_CHECK_EXTENSION(%d) asked of fd %d", c, fd)
				return 0, nil
			}, kvmFD, vmFD)
			if err != nil || got != tt.want {
				t.Fatalf("xsaveSizeBy = %d, %v; want %d", got, err, tt.want)
			}
			err = checkXSaveSize(got)
			if (tt.refused != "") != (err != nil) || (err != nil && (!errors.Is(err, ErrXSaveTooLarge) || err.Error() != tt.refused)) {
				t.Fatalf("checkXSaveSize(%d) = %v; want %q", got, err, tt.refused)
			}
		})
	}
}
