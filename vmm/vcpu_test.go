package vmm

import (
	"context"
	"encoding/binary"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// spinGuest is a multiboot kernel (a.out kludge) whose entry is `jmp .`.
func spinGuest() []byte {
	b := make([]byte, 48)
	le := binary.LittleEndian
	var magic, flags uint32 = 0x1BADB002, 0x00010003
	for i, v := range []uint32{magic, flags, -(magic + flags), 0x100000, 0x100000, 0, 0x101000, 0x100020} {
		le.PutUint32(b[4*i:], v)
	}
	b[32], b[33] = 0xEB, 0xFE
	return b
}

// TestKickStates: a kick reaches the vCPU only while it runs, and once
// KVM_RUN returned for it immediate_exit is clear again, so the vCPU runs
// on (it used to stay set: every later KVM_RUN returned at once).
func TestKickStates(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	running := make(chan struct{})
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest(), OnEvent: func(e Event) {
		if e.Phase == PhaseFirstRun {
			close(running)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := m.vcpu
	if v.kick() {
		t.Fatal("kick before Run reached a vCPU that is not running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx)
		done <- err
	}()
	<-running
	// The run loop marks itself running just before PhaseFirstRun's
	// callback (this one) returns; wait for the state, not for time.
	for deadline := time.Now().Add(20 * time.Second); ; {
		v.mu.Lock()
		state := v.state
		v.mu.Unlock()
		if state == vcpuRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vCPU %s, never running", state)
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 3 {
		if !v.kick() {
			t.Fatalf("kick %d: vCPU not running", i)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			v.mu.Lock()
			ie := atomic.LoadUint32(v.immediateExit())
			v.mu.Unlock()
			if ie == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kick %d: immediate_exit still set 20 s later: the kick is never cleared", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned after a kick that asked for no exit: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v.kick() {
		t.Fatal("kick after Run reached a vCPU that exited")
	}
	v.mu.Lock()
	state := v.state
	v.mu.Unlock()
	if state != vcpuExited {
		t.Fatalf("vCPU %s after Run, want exited", state)
	}
	m.Close()
	if v.state != vcpuClosed {
		t.Fatalf("vCPU %s after Close, want closed", v.state)
	}
}
