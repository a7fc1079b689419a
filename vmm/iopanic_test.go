package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// panicFileInput is a FileInput whose Read panics once its file has data.
type panicFileInput struct{ f *os.File }

func (p panicFileInput) Read([]byte) (int, error) { panic("filter broken") }
func (p panicFileInput) File() *os.File           { return p.f }

// TestConsoleIOPanic: a Config.Console whose Write panics, or a
// Config.Input whose Read does, stops the machine and ends Run with the
// panic (a *vmm.PanicError in a *vmm.Error naming the field); the
// program goes on. (The panic, on a goroutine of the machine's, ended the
// program that embeds it.)
func TestConsoleIOPanic(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte("x")) // poll sees data: the filter's Read is called
	tests := []struct {
		name  string
		cfg   vmm.Config
		field string
		call  string
	}{
		// A typed nil: a *bytes.Buffer never set up.
		{"Console's Write", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Console: (*bytes.Buffer)(nil)}, "Console", "Config.Console's Write"},
		{"Input's Read", vmm.Config{Kernel: "spin", KernelImage: spinner(), Input: (*bytes.Reader)(nil)}, "Input", "Config.Input's Read"},
		{"FileInput's Read", vmm.Config{Kernel: "spin", KernelImage: spinner(), Input: panicFileInput{r}}, "Input", "Config.Input's Read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			tt.cfg.MemoryMiB = 16
			m, err := vmm.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			var ve *vmm.Error
			var pe *vmm.PanicError
			if !errors.As(err, &ve) || ve.Field != tt.field || !errors.As(err, &pe) {
				t.Fatalf("Run = %+v, %v; want a *vmm.Error with Field %s wrapping a *vmm.PanicError", e, err, tt.field)
			}
			if pe.Call != tt.call || pe.Value == nil || !strings.Contains(string(pe.Stack), "panic") {
				t.Errorf("PanicError = %q, %v, stack:\n%s", pe.Call, pe.Value, pe.Stack)
			}
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
