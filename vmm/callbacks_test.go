package vmm_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/vmm"
)

// The tests of the machine's calls made where Run cannot simply be waited
// for: from its own callbacks, racing its start, or before it.

// deadlockBound is how long a test waits for what must happen before it
// calls it a deadlock: not a timing assertion, the bound of a hang.
const deadlockBound = 20 * time.Second

// gateWriter holds its first Write until open is closed, after closing
// entered.
type gateWriter struct {
	w       io.Writer
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGateWriter(w io.Writer) *gateWriter {
	return &gateWriter{w: w, entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.open
	})
	return g.w.Write(p)
}

// TestSnapshotBeforeRunExclusive: a snapshot taken before the guest first
// runs is written whole before Run starts the guest, before Close releases
// the memory it reads, and before another snapshot is taken; it restores.
func TestSnapshotBeforeRunExclusive(t *testing.T) {
	for _, race := range []string{"Run", "Close", "Snapshot"} {
		t.Run(race, func(t *testing.T) {
			needKVM(t)
			firstRun := make(chan struct{})
			m, err := vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: 16, Console: io.Discard,
				OnEvent: func(e vmm.Event) {
					if e.Phase == vmm.PhaseFirstRun {
						close(firstRun)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			waiting := make(chan struct{}, 1)
			vmm.OnSnapshotWait(m, func() {
				select {
				case waiting <- struct{}{}:
				default:
				}
			})
			path := filepath.Join(t.TempDir(), "s.snap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			g := newGateWriter(f) // not an io.WriteSeeker: every page is written
			snapped := make(chan error, 1)
			go func() { _, err := m.Snapshot(g); snapped <- err }()
			<-g.entered

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			other := make(chan error, 1) // the racing call's result
			var otherErr error
			gotOther := false
			switch race {
			case "Run":
				go func() { _, err := m.Run(ctx); other <- err }()
				select {
				case <-waiting:
				case <-firstRun:
					t.Error("the guest ran while the snapshot taken before Run was written")
				}
			case "Close":
				go func() { other <- m.Close() }()
				select {
				case <-waiting:
				case otherErr = <-other:
					gotOther = true
					t.Errorf("Close returned (%v) while the snapshot taken before Run was written", otherErr)
				}
			case "Snapshot":
				go func() { _, err := m.Snapshot(io.Discard); other <- err }()
				select {
				case <-waiting:
				case otherErr = <-other:
					gotOther = true
					t.Errorf("a second Snapshot returned (%v) while the first was written", otherErr)
				}
			}
			close(g.open)
			if err := <-snapped; err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			f.Close()
			cancel()
			if !gotOther {
				otherErr = <-other
			}
			if otherErr != nil {
				t.Errorf("%s: %v", race, otherErr)
			}
			if race == "Close" {
				if _, err := m.Snapshot(io.Discard); !errors.Is(err, vmm.ErrNotRunning) {
					t.Errorf("Snapshot after Close: %v, want ErrNotRunning", err)
				}
			}
			r, err := vmm.Restore(vmm.Config{}, path)
			if err != nil {
				t.Fatalf("Restore of the snapshot taken before Run: %v", err)
			}
			r.Close()
		})
	}
}

// TestConcurrentSnapshots: Snapshots asked for together, before the vCPU
// serves any (it is held in OnEvent here), are all taken, one after the
// other, instead of all but one failing.
func TestConcurrentSnapshots(t *testing.T) {
	needKVM(t)
	const n = 3
	m, held, release, allQueued := heldChatty(t, 16, n)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan runResult, 1)
	go func() {
		e, err := m.Run(ctx)
		res <- runResult{e, err}
	}()
	<-held
	snaps := make(chan error, n)
	for range n {
		go func() { _, err := m.Snapshot(io.Discard); snaps <- err }()
	}
	select {
	case <-allQueued:
	case err := <-snaps:
		snaps <- err
		t.Errorf("a Snapshot returned %v while the vCPU was held", err)
	}
	close(release)
	for i := range n {
		if err := <-snaps; err != nil {
			t.Errorf("Snapshot %d: %v", i+1, err)
		}
	}
	cancel()
	if r := <-res; r.err != nil || r.exit.Reason != vmm.ExitStopped {
		t.Errorf("Run = %+v, %v; want stopped", r.exit, r.err)
	}
}

// heldChatty is a machine of the chatty guest whose vCPU is held at the
// guest's first console byte (held is closed then) until release is
// closed; allQueued is closed once n Snapshots are queued.
func heldChatty(t *testing.T, memMiB int, n int32) (m *vmm.Machine, held, release, allQueued chan struct{}) {
	t.Helper()
	held, release, allQueued = make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	m, err := vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: memMiB, Console: io.Discard,
		OnEvent: func(e vmm.Event) {
			if e.Phase == vmm.PhaseFirstOutput {
				once.Do(func() {
					close(held)
					<-release
				})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	vmm.OnSnapshotQueued(m, func() {
		if asked.Add(1) == n {
			close(allQueued)
		}
	})
	return m, held, release, allQueued
}

// closingFile is a vmm.FileInput whose Read calls closeIt.
type closingFile struct {
	f       *os.File
	closeIt func()
}

func (c closingFile) File() *os.File { return c.f }

func (c closingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.closeIt()
	return n, err
}

// closingConn is a net.Conn whose Read calls closeIt.
type closingConn struct {
	net.Conn
	closeIt func()
}

func (c closingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.closeIt()
	return n, err
}

// closingReader gives one byte, calling closeIt, then ends.
type closingReader struct {
	closeIt func()
	read    atomic.Bool
}

func (c *closingReader) Read(p []byte) (int, error) {
	if c.read.Swap(true) {
		return 0, io.EOF
	}
	c.closeIt()
	p[0] = 'a'
	return 1, nil
}

// closingConsole calls closeIt at its first Write.
type closingConsole struct{ closeIt func() }

func (c closingConsole) Write(p []byte) (int, error) {
	c.closeIt()
	return len(p), nil
}

// TestCloseFromCallback: Close called from a goroutine Run waits for (a
// callback on the vCPU thread or Run's own, the input pump's Read, the
// console's Write) stops the guest and returns, and Run releases the
// machine: neither waits for the other.
func TestCloseFromCallback(t *testing.T) {
	onPhase := func(p vmm.Phase, closeIt func()) func(vmm.Event) {
		return func(e vmm.Event) {
			if e.Phase == p {
				closeIt()
			}
		}
	}
	tests := []struct {
		name string
		cfg  func(t *testing.T, closeIt func()) vmm.Config
		want vmm.ExitReason
	}{
		{"Input Read of a FileInput", func(t *testing.T, closeIt func()) vmm.Config {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			w.Write([]byte("k"))
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Input: closingFile{r, closeIt}}
		}, vmm.ExitStopped},
		{"Input Read of a net.Conn", func(t *testing.T, closeIt func()) vmm.Config {
			r, w := net.Pipe()
			t.Cleanup(func() { r.Close(); w.Close() })
			go w.Write([]byte("k"))
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Input: closingConn{r, closeIt}}
		}, vmm.ExitStopped},
		{"Input Read of an io.Reader", func(t *testing.T, closeIt func()) vmm.Config {
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Input: &closingReader{closeIt: closeIt}}
		}, vmm.ExitStopped},
		{"OnEvent on the vCPU thread", func(t *testing.T, closeIt func()) vmm.Config {
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), OnEvent: onPhase(vmm.PhaseFirstOutput, closeIt)}
		}, vmm.ExitStopped},
		{"OnEvent at PhaseExit", func(t *testing.T, closeIt func()) vmm.Config {
			return vmm.Config{Kernel: "exit", KernelImage: exitGuest(), OnEvent: onPhase(vmm.PhaseExit, closeIt)}
		}, vmm.ExitDebug},
		{"OnSnapshot", func(t *testing.T, closeIt func()) vmm.Config {
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Ready: regexp.MustCompile("x"),
				SnapshotOnReady: io.Discard, OnSnapshot: func(vmm.SnapshotInfo, error) { closeIt() }}
		}, vmm.ExitStopped},
		{"BeforeRun", func(t *testing.T, closeIt func()) vmm.Config {
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), BeforeRun: func() error { closeIt(); return nil }}
		}, vmm.ExitStopped},
		{"Console Write", func(t *testing.T, closeIt func()) vmm.Config {
			return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Console: closingConsole{closeIt}}
		}, vmm.ExitStopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			before := goroutines()
			var m *vmm.Machine
			inner := make(chan error, 1)
			var once sync.Once
			closeIt := func() { once.Do(func() { inner <- m.Close() }) }
			m, err := vmm.New(tt.cfg(t, closeIt))
			if err != nil {
				t.Fatal(err)
			}
			res := make(chan runResult, 1)
			go func() {
				e, err := m.Run(context.Background())
				res <- runResult{e, err}
			}()
			select {
			case r := <-res:
				if r.err != nil || r.exit.Reason != tt.want {
					t.Errorf("Run = %+v, %v; want %s", r.exit, r.err, tt.want)
				}
			case <-time.After(deadlockBound):
				t.Fatalf("deadlock: Run has not returned after Close from %s", tt.name)
			}
			// Waited for: Run does not wait for a plain io.Reader's Read,
			// which it cannot interrupt, so the pump can pass on Close's
			// result after Run returned.
			select {
			case err := <-inner:
				if err != nil {
					t.Errorf("Close from %s: %v", tt.name, err)
				}
			case <-time.After(deadlockBound):
				t.Fatal("Close was not called")
			}
			closedForGood(t, m, before)
		})
	}
}

// TestSnapshotFromCallback: Snapshot called where the vCPU would have to
// wait for its caller (on the vCPU thread, in the console's Write) fails
// with ErrSnapshotFromCallback instead of waiting for itself.
func TestSnapshotFromCallback(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(snap func()) vmm.Config
	}{
		{"OnEvent on the vCPU thread", func(snap func()) vmm.Config {
			return vmm.Config{OnEvent: func(e vmm.Event) {
				if e.Phase == vmm.PhaseFirstOutput {
					snap()
				}
			}}
		}},
		{"OnSnapshot", func(snap func()) vmm.Config {
			return vmm.Config{Ready: regexp.MustCompile("x"), SnapshotOnReady: io.Discard,
				OnSnapshot: func(vmm.SnapshotInfo, error) { snap() }}
		}},
		{"Console Write", func(snap func()) vmm.Config {
			return vmm.Config{Console: closingConsole{snap}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			var m *vmm.Machine
			got := make(chan error, 1)
			var once sync.Once
			snap := func() {
				once.Do(func() {
					_, err := m.Snapshot(io.Discard)
					got <- err
				})
			}
			cfg := tt.cfg(snap)
			cfg.Kernel, cfg.KernelImage = "chatty", chattyGuest()
			m, err := vmm.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithCancel(context.Background())
			res := make(chan error, 1)
			go func() { _, err := m.Run(ctx); res <- err }()
			select {
			case err := <-got:
				if !errors.Is(err, vmm.ErrSnapshotFromCallback) {
					t.Errorf("Snapshot from %s: %v, want ErrSnapshotFromCallback", tt.name, err)
				}
			case <-time.After(deadlockBound):
				t.Fatalf("deadlock: Snapshot from %s has not returned", tt.name)
			}
			cancel()
			if err := <-res; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

// TestRunDoneContext: a context done before Run, or while BeforeRun runs,
// stops the machine before the guest first runs: ExitStopped, and no
// PhaseFirstRun and no console output.
func TestRunDoneContext(t *testing.T) {
	for _, tt := range []struct {
		name       string
		beforeRuns int // calls of BeforeRun wanted
	}{{"before Run", 0}, {"in BeforeRun", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.beforeRuns == 0 {
				cancel()
			}
			var out syncBuffer
			var phases []vmm.Phase
			calls := 0
			m, err := vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Console: &out,
				BeforeRun: func() error { calls++; cancel(); return nil },
				OnEvent: func(e vmm.Event) {
					if e.Phase == vmm.PhaseFirstRun || e.Phase == vmm.PhaseFirstOutput {
						phases = append(phases, e.Phase)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e, err := m.Run(ctx)
			if err != nil || e.Reason != vmm.ExitStopped {
				t.Errorf("Run = %+v, %v; want stopped", e, err)
			}
			if calls != tt.beforeRuns || len(phases) != 0 || out.String() != "" {
				t.Errorf("BeforeRun called %d times (want %d), phases %v, guest printed %q: the guest ran", calls, tt.beforeRuns, phases, out.String())
			}
		})
	}
}

// syncBuffer is a console the test reads while the console writer writes.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// TestNilDevice: a nil entry in Config.Devices is refused by New and
// Restore as a configuration error naming the field, without a panic,
// and the other devices are closed and nothing is left open.
func TestNilDevice(t *testing.T) {
	needKVM(t)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	for _, tt := range []struct {
		name string
		make func(vmm.Config) (*vmm.Machine, error)
	}{
		{"New", vmm.New},
		{"Restore", func(cfg vmm.Config) (*vmm.Machine, error) {
			return vmm.Restore(cfg, filepath.Join(t.TempDir(), "none.snap"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := fds()
			rec := &closeRecorder{}
			m, err := tt.make(vmm.Config{Kernel: "spin", KernelImage: spinner(), Devices: []virtio.Device{rec, nil}})
			if err == nil {
				m.Close()
				t.Fatal("it succeeded")
			}
			var ve *vmm.Error
			if !errors.As(err, &ve) || ve.Field != "Devices" || !errors.Is(err, vmm.ErrConfig) {
				t.Errorf("err = %v; want a *vmm.Error for Devices wrapping ErrConfig", err)
			}
			if rec.closed != 1 {
				t.Errorf("the other device was closed %d times, want 1", rec.closed)
			}
			if after := fds(); after != before {
				t.Errorf("%d descriptors open after it failed, %d before", after, before)
			}
		})
	}
}

// TestStopInterruptsSnapshotWriter: a snapshot whose writer blocks (a pipe
// nobody reads) holds the paused guest; Close interrupts the write, so
// that Run and Close return, and the snapshot fails.
func TestStopInterruptsSnapshotWriter(t *testing.T) {
	for _, when := range []string{"running", "before Run"} {
		t.Run(when, func(t *testing.T) {
			needKVM(t)
			var m *vmm.Machine
			var res <-chan runResult
			if when == "running" {
				m, res = startRun(t, vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: 16})
			} else {
				var err error
				if m, err = vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), MemoryMiB: 16}); err != nil {
					t.Fatal(err)
				}
			}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			snapped := make(chan error, 1)
			go func() { _, err := m.Snapshot(w); snapped <- err }()
			// The write has begun; the rest of 16 MiB fills the pipe.
			if _, err := r.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() { closed <- m.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Errorf("Close: %v", err)
				}
			case <-time.After(deadlockBound):
				t.Fatal("deadlock: Close waits for a snapshot writer that blocks")
			}
			if err := <-snapped; !errors.Is(err, vmm.ErrNotRunning) {
				t.Errorf("the snapshot whose write was interrupted: %v; want ErrNotRunning", err)
			}
			if res != nil {
				if r := <-res; r.err != nil || r.exit.Reason != vmm.ExitStopped {
					t.Errorf("Run = %+v, %v; want stopped", r.exit, r.err)
				}
			}
			// The writer has its deadline back: the program writes on.
			go r.Read(make([]byte, 64<<10))
			if _, err := w.Write([]byte("after")); err != nil {
				t.Errorf("write to the snapshot's writer after: %v", err)
			}
		})
	}
}

// emptyReader returns (0, nil) three times, then io.EOF.
type emptyReader struct {
	n    atomic.Int32
	done chan struct{}
}

func (e *emptyReader) Read(p []byte) (int, error) {
	if e.n.Add(1) > 3 {
		if e.n.Load() == 4 {
			close(e.done)
		}
		return 0, io.EOF
	}
	return 0, nil
}

// TestInputEmptyReads: an Input whose Read returns (0, nil) is not asked
// again at once, which would spin a core: the pump waits after each.
func TestInputEmptyReads(t *testing.T) {
	needKVM(t)
	var waits atomic.Int32
	defer vmm.OnEmptyRead(func() { waits.Add(1) })()
	in := &emptyReader{done: make(chan struct{})}
	m, _ := startRun(t, vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Input: in})
	<-in.done
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := waits.Load(); got != 3 {
		t.Errorf("the pump waited %d times after 3 empty reads", got)
	}
}
