package vmm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestSnapshotAfterBeforeRun: with a BeforeRun (where the CLI installs its
// seccomp filter), the facts a snapshot reads from files are read before
// it, so a snapshot taken on demand later opens nothing: here BeforeRun
// hides boot_id, and the snapshot still names this KVM.
func TestSnapshotAfterBeforeRun(t *testing.T) {
	needKVM(t)
	kvm, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := vmm.ReadKVMIdentity(kvm)
	kvm.Close()
	if !ok {
		t.Skip("this host's KVM identity cannot be read")
	}
	var undo func()
	defer func() {
		if undo != nil {
			undo()
		}
	}()
	running := make(chan struct{})
	m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(),
		BeforeRun: func() error { undo = vmm.SetBootIDPath("/nonexistent/boot_id"); return nil },
		OnEvent: func(e vmm.Event) {
			if e.Phase == vmm.PhaseFirstRun {
				close(running)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { _, err := m.Run(ctx); runDone <- err }()
	select {
	case <-running:
	case err := <-runDone:
		t.Fatalf("Run ended before the guest ran: %v", err)
	}
	path := filepath.Join(t.TempDir(), "s.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Snapshot(f)
	f.Close()
	cancel()
	<-runDone
	if err != nil {
		t.Fatal(err)
	}
	hf, err := snapshot.OpenHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if hf.Header.KVM != want {
		t.Fatalf("the snapshot names KVM %x, want %x: its identity was read after BeforeRun", hf.Header.KVM, want)
	}
}
