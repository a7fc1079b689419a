package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// panicDevice is a caller's bus device whose every access panics.
type panicDevice struct{}

func (panicDevice) Read(uint64, []byte)  { panic("device bug") }
func (panicDevice) Write(uint64, []byte) { panic("device bug") }

// vmmGoroutines returns the stacks of the goroutines in package vmm's
// code but the tests'.
func vmmGoroutines() string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	var out []string
	for _, blk := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(blk, "smolvmm/vmm.") && !strings.Contains(blk, "vmm_test.") {
			out = append(out, blk)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestCallbackPanicOnVCPU: a panic of the caller's code on the vCPU
// thread (Config.OnSnapshot, a device on MMIOBus) is Run's error, a
// *PanicError in an *Error, and Run's cleanup runs: the input pump is
// gone when Close returns, and the program reads its input itself. The
// panic unwound Run past its cleanup: the pump went on reading the
// program's stdin after Close.
func TestCallbackPanicOnVCPU(t *testing.T) {
	needKVM(t)
	bad := guest(t, "bad")
	tests := []struct {
		name  string
		cfg   vmm.Config
		setup func(*vmm.Machine) error
		field string
		call  string
	}{
		{name: "OnSnapshot",
			cfg: vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Ready: regexp.MustCompile("^smolvmm-demo: hello"),
				SnapshotOnReady: io.Discard, OnSnapshot: func(vmm.SnapshotInfo, error) { panic("user bug") }},
			field: "OnSnapshot", call: "Config.OnSnapshot"},
		{name: "MMIOBus device",
			cfg: vmm.Config{Kernel: bad, Append: "mmio"},
			setup: func(m *vmm.Machine) error {
				return m.MMIOBus().Register("buggy", 0xfed40000, 4, panicDevice{})
			},
			call: "MMIO device buggy's Read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			cfg := tc.cfg
			cfg.Console, cfg.Input = io.Discard, pr
			m, err := vmm.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				if err := tc.setup(m); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("Run panicked: %v", r)
					}
				}()
				_, err = m.Run(ctx)
				var pe *vmm.PanicError
				var ve *vmm.Error
				if !errors.As(err, &pe) || !errors.As(err, &ve) || ve.Field != tc.field || pe.Call != tc.call {
					t.Errorf("Run: %v, want a *PanicError of %s in an *Error with Field %q", err, tc.call, tc.field)
				}
			}()
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			pw.Write([]byte("typed after Close\n"))
			time.Sleep(100 * time.Millisecond) // a pump left behind would read it meanwhile
			pr.SetReadDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 64)
			n, err := pr.Read(buf)
			if string(buf[:n]) != "typed after Close\n" {
				t.Errorf("the program read %q, %v from its input after Close, want what was typed", buf[:n], err)
			}
			if g := vmmGoroutines(); g != "" {
				t.Errorf("goroutines of the machine left after Close:\n%s", g)
			}
		})
	}
}
