package vmm_test

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestSnapshotAfterRunReturned: once Run has returned, whether the guest
// ran or not (its context was done already, BeforeRun failed), Snapshot
// fails with ErrNotRunning: the machine will not run again, and a
// snapshot of it as New left it would restore a guest that never ran.
func TestSnapshotAfterRunReturned(t *testing.T) {
	needKVM(t)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		beforeRun func() error
	}{
		{"the guest ran and left", context.Background(), nil},
		{"context done before Run", done, nil},
		{"BeforeRun failed", context.Background(), func() error { return errors.New("no sandbox") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8, Console: io.Discard, BeforeRun: tt.beforeRun})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e, err := m.Run(tt.ctx)
			t.Logf("Run: %+v, %v", e, err)
			if _, err := m.Snapshot(io.Discard); !errors.Is(err, vmm.ErrNotRunning) {
				t.Fatalf("Snapshot after Run returned: %v; want ErrNotRunning", err)
			}
		})
	}
}

// stopWriter is one of the writers of TestSnapshotsQueuedAtStop: the
// first to be written blocks in its first Write until released, then
// writes at once; the others take slow each Write. Its SetWriteDeadline reports the
// machine's stop (which sets a deadline in the past) and fails, as on a
// file that has none: the write in progress is not interrupted.
type stopWriter struct {
	first    *atomic.Bool  // some writer was written first
	isFirst  bool          // this one
	blocked  chan struct{} // closed when the first Write blocks
	release  chan struct{}
	stopped  chan struct{} // closed at the stop's deadline
	stopOnce *sync.Once
	n        atomic.Int64
	slow     time.Duration
}

func (w *stopWriter) Write(p []byte) (int, error) {
	switch {
	case w.isFirst:
	case w.first.CompareAndSwap(false, true):
		w.isFirst = true
		close(w.blocked)
		<-w.release
	default:
		time.Sleep(w.slow)
	}
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func (w *stopWriter) SetWriteDeadline(d time.Time) error {
	if !d.IsZero() && d.Before(time.Now()) {
		w.stopOnce.Do(func() { close(w.stopped) })
	}
	return os.ErrNoDeadline
}

// TestSnapshotsQueuedAtStop: of the snapshots asked for together, those
// not begun when the machine is stopped (Close) fail with ErrNotRunning
// and get no byte; the one being written completes, and Close returns
// once it has, without writing the others.
func TestSnapshotsQueuedAtStop(t *testing.T) {
	needKVM(t)
	const n = 4
	m, held, release, allQueued := heldChatty(t, 8, n)
	defer m.Close()
	res := make(chan runResult, 1)
	go func() {
		e, err := m.Run(context.Background())
		res <- runResult{e, err}
	}()
	<-held
	var first atomic.Bool
	var stopOnce sync.Once
	blocked, unblock, stopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
	type result struct {
		w   *stopWriter
		err error
	}
	results := make(chan result, n)
	for range n {
		// Each Write of a snapshot not begun first would take 100 ms:
		// the three of them, seconds.
		w := &stopWriter{first: &first, blocked: blocked, release: unblock, stopped: stopped, stopOnce: &stopOnce, slow: 100 * time.Millisecond}
		go func() { _, err := m.Snapshot(w); results <- result{w, err} }()
	}
	<-allQueued
	close(release) // the vCPU serves the four, one after the other
	select {
	case <-blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("no snapshot was begun in 30 s")
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not stop the machine in 30 s")
	}
	close(unblock)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return in 30 s")
	}
	var ok, refused int
	for range n {
		r := <-results
		switch {
		case r.err == nil && r.w.n.Load() > 0:
			ok++
		case errors.Is(r.err, vmm.ErrNotRunning) && r.w.n.Load() == 0:
			refused++
		default:
			t.Errorf("Snapshot: %v, %d bytes written; want success (the one begun) or ErrNotRunning and nothing written", r.err, r.w.n.Load())
		}
	}
	if ok != 1 || refused != n-1 {
		t.Errorf("%d snapshots completed and %d refused; want 1 and %d", ok, refused, n-1)
	}
	if r := <-res; r.err != nil || r.exit.Reason != vmm.ExitStopped {
		t.Errorf("Run: %+v, %v; want ExitStopped", r.exit, r.err)
	}
}

// blockWriter blocks in its first Write until release is closed, having
// closed blocked; it has no SetWriteDeadline, so nothing interrupts it.
type blockWriter struct {
	once             sync.Once
	blocked, release chan struct{}
}

func (w *blockWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.blocked)
		<-w.release
	})
	return len(p), nil
}

// TestRunDoneWhileSnapshotBeforeRun: Run with a context already done
// returns at once even while a snapshot taken before the guest first runs
// is held by its writer (it used to wait for the writer), and a snapshot
// asked for after Run returned still fails with ErrNotRunning, once that
// one is written.
func TestRunDoneWhileSnapshotBeforeRun(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w := &blockWriter{blocked: make(chan struct{}), release: make(chan struct{})}
	first := make(chan error, 1)
	go func() { _, err := m.Snapshot(w); first <- err }()
	select {
	case <-w.blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the snapshot before Run did not begin in 30 s")
	}
	released := false
	release := func() {
		if !released {
			released = true
			close(w.release)
		}
	}
	defer release()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ran := make(chan runResult, 1)
	go func() {
		e, err := m.Run(done)
		ran <- runResult{e, err}
	}()
	select {
	case r := <-ran:
		if r.err != nil || r.exit.Reason != vmm.ExitStopped {
			t.Errorf("Run: %+v, %v; want ExitStopped", r.exit, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run with a done context waited for the snapshot's writer")
	}
	second := make(chan error, 1)
	go func() { _, err := m.Snapshot(io.Discard); second <- err }()
	release()
	if err := <-first; err != nil {
		t.Errorf("the snapshot before Run: %v", err)
	}
	if err := <-second; !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Snapshot after Run returned: %v; want ErrNotRunning", err)
	}
}
