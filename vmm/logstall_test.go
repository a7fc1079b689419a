package vmm_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// stallLog is a Config.Log whose Write, once a message holding trigger
// comes, calls action (nil: blocks until release is closed).
type stallLog struct {
	trigger string
	hit     chan struct{} // closed when the trigger came
	release chan struct{}
	once    sync.Once
	action  func()
}

func (l *stallLog) Write(p []byte) (int, error) {
	if strings.Contains(string(p), l.trigger) {
		l.once.Do(func() {
			close(l.hit)
			if l.action != nil {
				l.action()
				return
			}
			<-l.release
		})
	}
	return len(p), nil
}

// TestLogStallsOrCloses: a device the guest breaks (a looping descriptor
// chain) warns to Config.Log while its serving goroutine holds the
// device's locks, which the vCPU's next access to the device waits for.
// A Log whose Write blocked there held the vCPU, so cancelling Run's
// context did not stop it; one whose Write called Close deadlocked in
// Close waiting for that goroutine. The vCPU thread's own notes (the VGA
// window) were written on it, and a Log that blocked there held it too.
// Now Log is written from a goroutine of its own: Run returns on its
// context's end, and Close or Snapshot from Write returns.
func TestLogStallsOrCloses(t *testing.T) {
	needKVM(t)
	tests := []struct {
		name, kernel, append, trigger string
		call                          string // what Write calls: "Close", "Snapshot", "" (it blocks)
	}{
		{"device warning, Log blocks", "vblk", "evil=loop", "needs reset", ""},
		{"device warning, Log closes", "vblk", "evil=loop", "needs reset", "Close"},
		{"device warning, Log snapshots", "vblk", "evil=loop", "needs reset", "Snapshot"},
		{"vCPU's note, Log blocks", "bad", "vga", "no display", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := diskImage(t)
			var m *vmm.Machine
			closed := make(chan error, 1)
			lg := &stallLog{trigger: tc.trigger, hit: make(chan struct{}), release: make(chan struct{})}
			switch tc.call {
			case "Close":
				lg.action = func() { closed <- m.Close() }
			case "Snapshot":
				lg.action = func() { _, err := m.Snapshot(io.Discard); closed <- err }
			}
			var err error
			m, err = vmm.New(vmm.Config{Kernel: guest(t, tc.kernel), Append: tc.append, MemoryMiB: 32,
				Disks: []blk.Spec{{Path: path}}, Log: lg, Console: &guests.Console{}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			defer close(lg.release) // before Close, should the test fail
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := m.Run(ctx); done <- err }()
			select {
			case <-lg.hit:
			case <-time.After(30 * time.Second):
				t.Fatal("the broken device's warning was never logged")
			}
			if tc.call != "" {
				select {
				case err := <-closed:
					if err != nil {
						t.Errorf("%s from Log's Write: %v", tc.call, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s called from Config.Log's Write did not return", tc.call)
				}
				cancel()
			} else {
				// The guest goes on (to read the device's status, where
				// the vCPU waited), while Write blocks.
				time.Sleep(2 * time.Second)
				cancel()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return once stopped, while Config.Log's Write blocks")
			}
		})
	}
}

// panicLog is a Config.Log whose Write panics.
type panicLog struct{}

func (panicLog) Write(p []byte) (int, error) { panic("log bug") }

// TestLogPanicIsRunsError: a Log whose Write panics (here at the vCPU's
// note about VGA memory) is Run's error, as Console's is, not the end of
// the program on a goroutine of the machine's.
func TestLogPanicIsRunsError(t *testing.T) {
	needKVM(t)
	kernel := guest(t, "bad")
	m, err := vmm.New(vmm.Config{Kernel: kernel, Append: "vga", Log: panicLog{}, Console: &guests.Console{}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = m.Run(ctx)
	var pe *vmm.PanicError
	var ve *vmm.Error
	if !errors.As(err, &pe) || !errors.As(err, &ve) || ve.Field != "Log" || pe.Call != "Config.Log's Write" {
		t.Fatalf("Run: %v, want a *PanicError of Config.Log's Write in an *Error with Field Log", err)
	}
}

// TestLogPanicInNewIsNewsError: a Log whose Write panics at a message New
// logged (Verbose's boot plan, logged before the vCPU is made) is New's
// error, the machine released. Before, the panic stopped the machine
// being built: stop kicked a vCPU not made yet, and the program ended
// with a nil pointer dereference on the log's goroutine.
func TestLogPanicInNewIsNewsError(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Verbose: true, Log: panicLog{}, Console: &guests.Console{}})
	if err == nil {
		m.Close()
		t.Fatal("New returned no error, want Config.Log's Write's panic")
	}
	if m != nil {
		t.Errorf("New returned a machine with its error %v", err)
	}
	var pe *vmm.PanicError
	var ve *vmm.Error
	if !errors.As(err, &pe) || !errors.As(err, &ve) || ve.Field != "Log" || pe.Call != "Config.Log's Write" {
		t.Fatalf("New: %v, want a *PanicError of Config.Log's Write in an *Error with Field Log", err)
	}
}

// TestLogPanicInRestoreIsRestoresError: as New, Restore returns the panic
// of a Config.Log's Write at a message it logged, the machine released,
// rather than a machine whose Run then reports it.
func TestLogPanicInRestoreIsRestoresError(t *testing.T) {
	needKVM(t)
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	m, err := vmm.Restore(vmm.Config{Verbose: true, Log: panicLog{}, Console: &guests.Console{}}, path)
	if err == nil {
		m.Close()
		t.Fatal("Restore returned no error, want Config.Log's Write's panic")
	}
	var pe *vmm.PanicError
	var ve *vmm.Error
	if !errors.As(err, &pe) || !errors.As(err, &ve) || ve.Field != "Log" || pe.Call != "Config.Log's Write" {
		t.Fatalf("Restore: %v, want a *PanicError of Config.Log's Write in an *Error with Field Log", err)
	}
}
