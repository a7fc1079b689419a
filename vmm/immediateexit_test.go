package vmm

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestImmediateExit: with immediateExitSet stored, KVM_RUN returns EINTR
// without entering the guest (a spin loop, which would hold it until a
// signal). Storing 1 set request_interrupt_window instead: KVM ran the
// guest, so a snapshot's completion run went on to the next exit.
func TestImmediateExit(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	atomic.StoreUint32(m.vcpu.immediateExit(), immediateExitSet)
	if b := m.vcpu.runPage[:4]; b[0] != 0 || b[1] != 1 || b[2] != 0 || b[3] != 0 {
		t.Errorf("kvm_run bytes 0-3 are % x, want request_interrupt_window 0 and immediate_exit 1", b)
	}
	tid := make(chan int)
	done := make(chan unix.Errno, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		_, _, errno := syscallKVMRun(m.vcpu.fd)
		done <- errno
	}()
	id := <-tid
	select {
	case errno := <-done:
		if errno != unix.EINTR {
			t.Fatalf("KVM_RUN with immediate_exit set: %v, want EINTR", errno)
		}
	case <-time.After(20 * time.Second):
		_ = unix.Tgkill(unix.Getpid(), id, unix.SIGURG)
		<-done
		t.Fatal("KVM_RUN with immediate_exit set entered the guest (it spun until a signal 20 s later)")
	}
}
