package vmm_test

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm"
)

// promptGuest prints a line of n 'x' and then "login: ", with no newline,
// and spins without another exit.
func promptGuest(n uint32) []byte {
	b := spinner()[:32]
	b = append(b,
		0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xB9, byte(n), byte(n>>8), byte(n>>16), byte(n>>24), // mov ecx, n
		0xB0, 'x', // mov al, 'x'
		0xEE,       // out dx, al
		0xE2, 0xFD, // loop back to the out
	)
	for _, c := range []byte("login: ") {
		b = append(b, 0xB0, c, 0xEE) // mov al, c; out dx, al
	}
	return append(b, 0xEB, 0xFE) // jmp .
}

// TestReadyPromptWithoutNewline: a prompt with no newline after it is
// ready, on a short line (matched as it grows) and on a long one, where
// the line is matched a moment after the output stopped, while the guest
// spins and never exits on its own.
func TestReadyPromptWithoutNewline(t *testing.T) {
	needKVM(t)
	for _, tc := range []struct {
		name     string
		n        uint32
		snapshot bool // SnapshotOnReady: the snapshot is taken too
	}{
		{"short line", 3, false},
		{"long line", 1000, false},
		{"long line, snapshot on ready", 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ready := make(chan struct{})
			var out bytes.Buffer
			cfg := vmm.Config{
				Kernel: "prompt", KernelImage: promptGuest(tc.n), Console: &out, Log: io.Discard,
				Ready: regexp.MustCompile(`login: `),
			}
			done := func() { close(ready); cancel() }
			if tc.snapshot {
				cfg.SnapshotOnReady = io.Discard
				cfg.OnSnapshot = func(_ vmm.SnapshotInfo, err error) {
					if err != nil {
						t.Errorf("snapshot on ready: %v", err)
					}
					done()
				}
			} else {
				cfg.OnEvent = func(e vmm.Event) {
					if e.Phase == vmm.PhaseReady {
						done()
					}
				}
			}
			m, err := vmm.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if _, err := m.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			select {
			case <-ready:
			default:
				t.Fatalf("no ready (or snapshot) after the prompt (console: %d bytes)", out.Len())
			}
		})
	}
}
