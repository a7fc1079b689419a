package vmm

import (
	"errors"
	"syscall"
	"testing"
)

// TestRetryEINTR: an ioctl interrupted by a signal is made again, any
// other outcome is returned as it came. (KVM_CREATE_VM gave EINTR under
// load, failing a restore: "KVM_CREATE_VM: interrupted system call".)
func TestRetryEINTR(t *testing.T) {
	other := syscall.ENOMEM
	for _, tt := range []struct {
		name    string
		results []error
		want    error
		calls   int
	}{
		{"at once", []error{nil}, nil, 1},
		{"after two signals", []error{syscall.EINTR, syscall.EINTR, nil}, nil, 3},
		{"another error", []error{other}, other, 1},
		{"another error after a signal", []error{syscall.EINTR, other}, other, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			r, err := retryEINTR(func() (uintptr, error) {
				err := tt.results[calls]
				calls++
				return 7, err
			})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) || calls != tt.calls || r != 7 {
				t.Errorf("retryEINTR = %d, %v after %d calls; want %v after %d", r, err, calls, tt.want, tt.calls)
			}
		})
	}
}
