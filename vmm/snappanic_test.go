package vmm_test

import (
	"context"
	"errors"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm"
)

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("writer broke") }

// snapshotPanic calls m.Snapshot(w) and returns the value it panicked
// with (nil if it did not) and its error.
func snapshotPanic(m *vmm.Machine, w io.Writer) (p any, err error) {
	defer func() { p = recover() }()
	_, err = m.Snapshot(w)
	return nil, err
}

// within fails the test unless fn returns within d.
func within(t *testing.T, what string, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestSnapshotBadWriter: a nil writer is refused, and a writer that
// panics makes Snapshot panic on its caller's goroutine (with the
// value, in a *vmm.WriterPanicError) without leaving the machine held:
// before Run, Run and Close go on; while it runs, the guest runs on,
// and a later snapshot is served.
func TestSnapshotBadWriter(t *testing.T) {
	needKVM(t)
	for _, tc := range []struct {
		name    string
		running bool
		nilW    bool
	}{
		{"nil before Run", false, true},
		{"nil while running", true, true},
		{"panic before Run", false, false},
		{"panic while running", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			running := make(chan struct{})
			m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(),
				OnEvent: func(e vmm.Event) {
					if e.Phase == vmm.PhaseFirstRun {
						close(running)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runDone := make(chan error, 1)
			if tc.running {
				go func() { _, err := m.Run(ctx); runDone <- err }()
				<-running
			}
			var p any
			within(t, "Snapshot", 10*time.Second, func() {
				if tc.nilW {
					p, err = snapshotPanic(m, nil)
				} else {
					p, err = snapshotPanic(m, panicWriter{})
				}
			})
			if tc.nilW {
				if p != nil || !errors.Is(err, vmm.ErrConfig) {
					t.Fatalf("Snapshot(nil): panic %v, err %v; want an error wrapping ErrConfig", p, err)
				}
			} else {
				var wp *vmm.WriterPanicError
				if pe, ok := p.(error); !ok || !errors.As(pe, &wp) || wp.Value != "writer broke" {
					t.Fatalf("Snapshot(panicking writer): panic %v, err %v; want a *WriterPanicError with the writer's value", p, err)
				}
			}
			if tc.running {
				// The guest runs on: another snapshot is served.
				within(t, "a second Snapshot", 10*time.Second, func() {
					_, err = m.Snapshot(discard{})
				})
				if err != nil {
					t.Fatalf("second Snapshot: %v", err)
				}
				cancel()
				within(t, "Run", 10*time.Second, func() { err = <-runDone })
			} else {
				within(t, "Run", 10*time.Second, func() {
					c, stop := context.WithTimeout(ctx, 50*time.Millisecond)
					defer stop()
					_, err = m.Run(c)
				})
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			within(t, "Close", 10*time.Second, func() { m.Close() })
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestSnapshotOnReadyPanics: Config.SnapshotOnReady's writer panicking on
// the vCPU thread fails that snapshot (OnSnapshot gets the
// *WriterPanicError) and the guest runs on until stopped.
func TestSnapshotOnReadyPanics(t *testing.T) {
	needKVM(t)
	got := make(chan error, 1)
	m, err := vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: 16,
		Ready: regexp.MustCompile("x"), SnapshotOnReady: panicWriter{},
		OnSnapshot: func(_ vmm.SnapshotInfo, err error) { got <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { _, err := m.Run(ctx); runDone <- err }()
	select {
	case err = <-got:
	case err := <-runDone:
		t.Fatalf("Run ended before the snapshot: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10 s")
	}
	var wp *vmm.WriterPanicError
	if !errors.As(err, &wp) || wp.Value != "writer broke" || len(wp.Stack) == 0 {
		t.Fatalf("OnSnapshot got %v, want a *WriterPanicError with the value and a stack", err)
	}
	select {
	case err := <-runDone:
		t.Fatalf("Run ended after the writer panicked: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	within(t, "Run", 10*time.Second, func() { err = <-runDone })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
}
