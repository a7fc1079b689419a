package vmm

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCreateVMError: KVM_CREATE_VM's errno becomes an *Error saying what
// it means, the errno kept: EBUSY (another hypervisor holding VT-x or
// AMD-V, KVM turning them on at the first VM before Linux 6.12) said
// only "KVM_CREATE_VM: device or resource busy". EINTR is asked again.
func TestCreateVMError(t *testing.T) {
	tests := []struct {
		name    string
		errs    []error // what each KVM_CREATE_VM returns, the last for good
		want    string  // the error, "" for none
		is      []error
		calls   int
		wantErr bool
	}{
		{"busy", []error{unix.EBUSY}, "KVM_CREATE_VM: " + ErrVirtualizationInUse.Error() + ": device or resource busy",
			[]error{ErrVirtualizationInUse, unix.EBUSY}, 1, true},
		{"busy after a signal", []error{unix.EINTR, unix.EBUSY}, "KVM_CREATE_VM: " + ErrVirtualizationInUse.Error() + ": device or resource busy",
			[]error{ErrVirtualizationInUse, unix.EBUSY}, 2, true},
		{"out of memory", []error{unix.ENOMEM}, "KVM_CREATE_VM: the kernel has no memory for a new VM (the host's, or this process's memory cgroup's, is used up): cannot allocate memory",
			[]error{unix.ENOMEM}, 1, true},
		{"other", []error{unix.EINVAL}, "KVM_CREATE_VM: invalid argument", []error{unix.EINVAL}, 1, true},
		{"made after a signal", []error{unix.EINTR, nil}, "", nil, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			fd, err := createVMBy(func() (uintptr, error) {
				e := tt.errs[min(calls, len(tt.errs)-1)]
				calls++
				if e != nil {
					return 0, e
				}
				return 7, nil
			})
			if calls != tt.calls {
				t.Errorf("KVM_CREATE_VM made %d times, want %d", calls, tt.calls)
			}
			if !tt.wantErr {
				if err != nil || fd != 7 {
					t.Fatalf("createVMBy = %d, %v; want 7", fd, err)
				}
				return
			}
			var ve *Error
			if !errors.As(err, &ve) || err.Error() != tt.want {
				t.Fatalf("error %v\nwant the *Error %q", err, tt.want)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %v is not %v", err, target)
				}
			}
			if tt.errs[len(tt.errs)-1] != unix.EBUSY && errors.Is(err, ErrVirtualizationInUse) {
				t.Errorf("error %v says the CPU's virtualization is taken", err)
			}
		})
	}
}
