package vmm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm"
)

// codeGuest is the spinner with code at its entry, followed by `jmp .`.
func codeGuest(code ...byte) []byte {
	b := append(spinner()[:32], code...)
	return append(b, 0xEB, 0xFE)
}

// TestHostileCPUStates puts the vCPU where no device exit will ever come:
// asleep with interrupts off, hit by an INIT IPI it sent itself, or
// fetching code from unbacked MMIO. Run must end either way: with a
// CrashError naming the place, or stopped when its context ends.
func TestHostileCPUStates(t *testing.T) {
	tests := []struct {
		name  string
		code  []byte
		crash string // "" : the guest must run until stopped
	}{
		{"cli hlt", []byte{0xFA, 0xF4}, ""},
		// mov dword [0xFEE00300], 0x000C4500: INIT, all including self.
		{"INIT to self", []byte{0xC7, 0x05, 0x00, 0x03, 0xE0, 0xFE, 0x00, 0x45, 0x0C, 0x00}, ""},
		// mov eax, 0xE0000000; jmp eax
		{"run from MMIO", []byte{0xB8, 0x00, 0x00, 0x00, 0xE0, 0xFF, 0xE0}, "EIP=e0000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			m, err := vmm.New(vmm.Config{Kernel: "x", KernelImage: codeGuest(tt.code...)})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			// A guest that must crash has its crash end Run, however
			// late a loaded machine starts it: with 500 ms it could be
			// stopped first ("want a CrashError").
			d := 500 * time.Millisecond
			if tt.crash != "" {
				d = time.Minute
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			e, err := m.Run(ctx)
			if late := time.Since(deadline(ctx)); late > 20*time.Second {
				t.Errorf("Run returned %v after its context ended", late)
			}
			var crash *vmm.CrashError
			switch {
			case tt.crash == "" && (err != nil || e.Reason != vmm.ExitStopped):
				t.Fatalf("Run = %+v, %v; want stopped by the context", e, err)
			case tt.crash != "" && (!errors.As(err, &crash) || !strings.Contains(crash.Regs, tt.crash)):
				t.Fatalf("Run = %+v, %v; want a CrashError with %s", e, err, tt.crash)
			}
		})
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
