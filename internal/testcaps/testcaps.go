// Package testcaps runs test code with a root process's permission
// checks those of an ordinary user, for tests of files the user may not
// read or write.
package testcaps

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// WithoutDAC runs fn, on the calling goroutine, with file permissions
// checked as for a user other than root: for root, its OS thread loses
// CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER (capabilities are
// per thread on Linux) while fn runs, and gets them back after; a thread
// that cannot get them back is left locked, so that it ends with the
// test's goroutine instead of running other code. For any other user fn
// runs as it is. A process that may not change its capabilities skips
// the test.
func WithoutDAC(t testing.TB, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		fn()
		return
	}
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("capget: %v", err)
	}
	dropped := caps
	for _, c := range []int{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER} {
		dropped[c/32].Effective &^= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &dropped[0]); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("capset: %v", err)
	}
	defer func() {
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			t.Errorf("giving the thread its capabilities back: %v", err)
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	fn()
}
