package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/vmm"
)

// The lifecycle tests: Close from anywhere at any time, Run's goroutines
// joined, and Config.Input left to the program once Run returns.

// keyGuest waits for a byte on COM1 and leaves through the debug-exit port
// with it as the code.
func keyGuest() []byte {
	return codeGuest(
		0x66, 0xBA, 0xFD, 0x03, // wait: mov dx, 0x3fd (LSR)
		0xEC,       // in al, dx
		0xA8, 0x01, // test al, 1 (data ready)
		0x74, 0xF7, // jz wait
		0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8 (RBR)
		0xEC,                   // in al, dx
		0x66, 0xBA, 0x01, 0x05, // mov dx, 0x501
		0xEE, // out dx, al
	)
}

// exitGuest leaves at once through the debug-exit port with code 7.
func exitGuest() []byte {
	return codeGuest(0x66, 0xBA, 0x01, 0x05, 0xB0, 0x07, 0xEE) // mov dx, 0x501; mov al, 7; out dx, al
}

// goroutines returns the stacks of the live goroutines by id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		out[id] = g
	}
	return out
}

// noGoroutinesLeft fails t if goroutines started after before still exist.
// Goroutines that closed the channel their joiner waits on may take a
// moment to return: they get a bounded wait.
// closedForGood checks a machine whose Run has returned: Close (again)
// succeeds, Run is refused, and no goroutine is left beside those in
// before.
func closedForGood(t *testing.T, m *vmm.Machine, before map[string]string) {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
	if _, err := m.Run(context.Background()); !errors.Is(err, vmm.ErrConfig) {
		t.Errorf("Run after Close: %v, want ErrConfig", err)
	}
	noGoroutinesLeft(t, before)
}

func noGoroutinesLeft(t *testing.T, before map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		for id, stack := range goroutines() {
			if _, ok := before[id]; !ok {
				left = append(left, stack)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(left)
			t.Fatalf("%d goroutines left behind:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startRun runs m on a goroutine and returns Run's results once it is
// running the guest (its first console output).
func startRun(t *testing.T, cfg vmm.Config) (*vmm.Machine, <-chan runResult) {
	t.Helper()
	needKVM(t)
	printed := make(chan struct{})
	var once sync.Once
	cfg.OnEvent = func(e vmm.Event) {
		if e.Phase == vmm.PhaseFirstOutput {
			once.Do(func() { close(printed) })
		}
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan runResult, 1)
	go func() {
		e, err := m.Run(context.Background())
		res <- runResult{e, err}
	}()
	select {
	case <-printed:
	case r := <-res:
		t.Fatalf("Run returned %+v, %v before the guest printed", r.exit, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the guest printed nothing in 30 s")
	}
	return m, res
}

type runResult struct {
	exit vmm.Exit
	err  error
}

// TestClose closes a machine before, during and after Run, once or from
// several goroutines at once: Close stops a running guest and returns only
// after Run did, and Run after Close or a second Run is refused.
func TestClose(t *testing.T) {
	tests := []struct {
		name    string
		when    string // "before", "during" or "after" Run
		closers int
	}{
		{"before Run", "before", 1},
		{"during Run", "during", 1},
		{"during Run from four goroutines", "during", 4},
		{"after Run", "after", 1},
		{"after Run from four goroutines", "after", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			before := goroutines()
			var m *vmm.Machine
			var res <-chan runResult
			var err error
			switch tt.when {
			case "before":
				if m, err = vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest()}); err != nil {
					t.Fatal(err)
				}
			case "during":
				m, res = startRun(t, vmm.Config{Kernel: "chatty", KernelImage: chattyGuest()})
			case "after":
				if m, err = vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest()}); err != nil {
					t.Fatal(err)
				}
				e, err := m.Run(context.Background())
				if err != nil || e.Reason != vmm.ExitDebug || e.Code != 7 {
					t.Fatalf("Run = %+v, %v; want debug-exit 7", e, err)
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, tt.closers)
			for i := range tt.closers {
				wg.Go(func() { errs[i] = m.Close() })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Close %d: %v", i, err)
				}
			}
			if res != nil {
				// Close has returned, so Run must have: no wait here.
				select {
				case r := <-res:
					if r.err != nil || r.exit.Reason != vmm.ExitStopped {
						t.Errorf("Run = %+v, %v; want stopped", r.exit, r.err)
					}
				default:
					t.Fatal("Close returned before Run")
				}
			}
			closedForGood(t, m, before)
		})
	}
}

// TestRunOnce: a second Run is refused, not a second boot on a used vCPU.
func TestRunOnce(t *testing.T) {
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if e, err := m.Run(context.Background()); err != nil || e.Code != 7 {
		t.Fatalf("Run = %+v, %v", e, err)
	}
	if _, err := m.Run(context.Background()); !errors.Is(err, vmm.ErrConfig) || !strings.Contains(err.Error(), "already run") {
		t.Fatalf("second Run: %v, want ErrConfig (already run)", err)
	}
}

// TestInputAfterRun gives the guest one key through Config.Input, then
// writes a line after Run returned: the program must still read it, from
// its own end for a file or a reader with deadlines, from RemainingInput
// for a reader that cannot be interrupted.
func TestInputAfterRun(t *testing.T) {
	tests := []struct {
		name string
		// open returns the machine's input, the writer, and the reader the
		// program reads on from after Run (given the machine).
		open func(t *testing.T) (io.Reader, io.Writer, func(*vmm.Machine) io.Reader)
	}{
		{"os.Pipe", func(t *testing.T) (io.Reader, io.Writer, func(*vmm.Machine) io.Reader) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return r, w, func(*vmm.Machine) io.Reader {
				r.SetReadDeadline(time.Now().Add(20 * time.Second))
				return r
			}
		}},
		{"net.Pipe", func(t *testing.T) (io.Reader, io.Writer, func(*vmm.Machine) io.Reader) {
			r, w := net.Pipe()
			t.Cleanup(func() { r.Close(); w.Close() })
			return r, w, func(*vmm.Machine) io.Reader {
				r.SetReadDeadline(time.Now().Add(20 * time.Second))
				return r
			}
		}},
		{"FileInput over os.Pipe", func(t *testing.T) (io.Reader, io.Writer, func(*vmm.Machine) io.Reader) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return dropZ{r}, w, func(*vmm.Machine) io.Reader {
				r.SetReadDeadline(time.Now().Add(20 * time.Second))
				return r
			}
		}},
		{"io.Pipe", func(t *testing.T) (io.Reader, io.Writer, func(*vmm.Machine) io.Reader) {
			r, w := io.Pipe()
			t.Cleanup(func() { r.Close(); w.Close() })
			return r, w, (*vmm.Machine).RemainingInput
		}},
	}
	for _, tt := range tests {
		for _, stop := range []string{"guest exits", "Close"} {
			t.Run(tt.name+"/"+stop, func(t *testing.T) {
				needKVM(t)
				before := goroutines()
				in, w, rest := tt.open(t)
				cfg := vmm.Config{Kernel: "key", KernelImage: keyGuest(), Input: in}
				if stop == "Close" {
					cfg = vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Input: in}
				}
				var wrote sync.WaitGroup
				write := func(s string) {
					// Pipes without a buffer return once a reader took it.
					wrote.Go(func() {
						if _, err := io.WriteString(w, s); err != nil {
							t.Errorf("write %q: %v", s, err)
						}
					})
				}
				var m *vmm.Machine
				if stop == "guest exits" {
					var err error
					if m, err = vmm.New(cfg); err != nil {
						t.Fatal(err)
					}
					// dropZ leaves the x; the others pass it all on, and
					// the guest takes the first key: the UART takes no
					// more than its receiver holds (one byte, with the
					// FIFO off), so a second would be left to
					// RemainingInput, or block a pipe's writer.
					want := uint32('z')
					if _, ok := in.(dropZ); ok {
						want = 'x'
						write("zzx")
					} else {
						write("z")
					}
					e, err := m.Run(context.Background())
					if err != nil || e.Reason != vmm.ExitDebug || e.Code != want {
						t.Fatalf("Run = %+v, %v; want debug-exit %q: the key never reached the guest", e, err, rune(want))
					}
				} else {
					var res <-chan runResult
					m, res = startRun(t, cfg)
					if err := m.Close(); err != nil {
						t.Fatal(err)
					}
					if r := <-res; r.err != nil || r.exit.Reason != vmm.ExitStopped {
						t.Fatalf("Run = %+v, %v; want stopped", r.exit, r.err)
					}
				}
				wrote.Wait()
				const line = "typed after Run\n"
				write(line)
				got := make([]byte, len(line))
				n, err := io.ReadFull(rest(m), got)
				if err != nil || !bytes.Equal(got, []byte(line)) {
					t.Fatalf("the program read %q, %v after Run; want %q: the machine took it", got[:n], err, line)
				}
				wrote.Wait()
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				noGoroutinesLeft(t, before)
			})
		}
	}
}

// dropZ is a vmm.FileInput: its file through a filter that drops 'z'.
type dropZ struct{ f *os.File }

func (d dropZ) File() *os.File { return d.f }

func (d dropZ) Read(p []byte) (int, error) {
	n, err := d.f.Read(p)
	out := p[:0]
	for _, b := range p[:n] {
		if b != 'z' {
			out = append(out, b)
		}
	}
	return len(out), err
}

// TestNoGoroutineLeft runs a machine with every goroutine-owning part (the
// console writer, the input pump, the ReadyAddr prober, disk and network
// device workers, the user network) and stops it: once Close returns,
// none of them is left.
func TestNoGoroutineLeft(t *testing.T) {
	needKVM(t)
	before := goroutines()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	in, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer in.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := l.Addr().String()
	l.Close() // nothing answers there: the prober runs until Run ends
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	back, err := netback.Open("user", nil, mac)
	if err != nil {
		t.Fatal(err)
	}
	nic, err := vnet.New(back, mac)
	if err != nil {
		back.Close()
		t.Fatal(err)
	}
	m, res := startRun(t, vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Input: in,
		ReadyAddr: nobody, Ready: regexp.MustCompile("never"), Console: &bytes.Buffer{},
		Disks: []blk.Spec{{Path: disk}}, Devices: []virtio.Device{nic, &closeRecorder{}}})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.exit.Reason != vmm.ExitStopped {
		t.Fatalf("Run = %+v, %v; want stopped", r.exit, r.err)
	}
	noGoroutinesLeft(t, before)
}

// TestBeforeRun: Config.BeforeRun is called once, after Run has opened what
// it needs and before the guest first runs; its error ends Run, which then
// leaves nothing behind either.
func TestBeforeRun(t *testing.T) {
	refused := errors.New("refused")
	for _, tt := range []struct {
		name string
		err  error
	}{{"ok", nil}, {"error", refused}} {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			before := goroutines()
			in, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			defer in.Close()
			var calls []string
			m, err := vmm.New(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), Input: in,
				BeforeRun: func() error { calls = append(calls, "BeforeRun"); return tt.err },
				OnEvent: func(e vmm.Event) {
					if e.Phase == vmm.PhaseFirstRun || e.Phase == vmm.PhaseExit {
						calls = append(calls, string(e.Phase))
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			e, err := m.Run(context.Background())
			want := "[BeforeRun first-run exit]"
			if tt.err != nil {
				want = "[BeforeRun]"
				if !errors.Is(err, refused) {
					t.Errorf("Run = %+v, %v; want BeforeRun's error", e, err)
				}
			} else if err != nil || e.Code != 7 {
				t.Errorf("Run = %+v, %v; want debug-exit 7", e, err)
			}
			if got := fmt.Sprint(calls); got != want {
				t.Errorf("calls %s, want %s", got, want)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			noGoroutinesLeft(t, before)
		})
	}
}
