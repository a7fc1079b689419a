package vmm

import (
	"bytes"
	"net"
	"os"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm/devices"
)

// TestInputPumpSleepsWhileGuestNotReading: with input waiting for a
// guest that does not read its console (early boot, no getty, ddb), its
// receiver full, the pump sleeps until the guest reads: it woke every
// millisecond to look again, about 4.5% of a core for as long as the
// guest did not read. Each kind of input, with the FIFO on (16 bytes in
// the receiver) and off from reset (1).
func TestInputPumpSleepsWhileGuestNotReading(t *testing.T) {
	for _, kind := range []string{"pipe", "terminal", "io.Reader"} {
		for _, fifo := range []bool{true, false} {
			name := kind + ", FIFO on"
			uart, depth, typed := fastLine, fifoDepth, 64
			if !fifo {
				name = kind + ", FIFO off from reset"
				uart, depth, typed = func() *devices.UART { return devices.NewUART(nil, nil) }, 1, 2
			}
			t.Run(name, func(t *testing.T) {
				u := uart()
				data := bytes.Repeat([]byte{'k'}, typed)
				var p *inputPump
				switch kind {
				case "pipe":
					r, w, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					defer w.Close()
					if _, err := w.Write(data); err != nil {
						t.Fatal(err)
					}
					var waited goroutineSet
					if p, err = startInput(r, u, &waited, nil); err != nil {
						t.Fatal(err)
					}
				case "terminal":
					ptm, pts := rawPTY(t)
					_, p = startTerminalPump(t, pts, u)
					if _, err := ptm.Write(data); err != nil {
						t.Fatal(err)
					}
				case "io.Reader":
					c1, c2 := net.Pipe()
					defer c2.Close()
					defer c1.Close()
					go c2.Write(data) // ends when c2 closes
					var err error
					var waited goroutineSet
					if p, err = startInput(c1, u, &waited, nil); err != nil {
						t.Fatal(err)
					}
				}
				defer p.stop()
				// Settled: the receiver is full and, from a
				// terminal, the rest is held.
				wantHeld := 0
				if kind == "terminal" {
					wantHeld = typed - depth
				}
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					p.mu.Lock()
					held := len(p.held)
					p.mu.Unlock()
					if lsrOf(u)&0x01 != 0 && u.RXSpace() == 0 && held == wantHeld {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after 10 s the UART has room for %d and the pump holds %d, want 0 and %d", u.RXSpace(), held, wantHeld)
					}
				}
				before := p.wakes.Load()
				time.Sleep(300 * time.Millisecond)
				if n := p.wakes.Load() - before; n > 3 {
					t.Errorf("the pump woke %d times in 300 ms while the guest read nothing, want at most 3", n)
				}
				// And it goes on once the guest reads.
				got := make([]byte, 0, typed)
				reg := make([]byte, 1)
				for deadline := time.Now().Add(10 * time.Second); len(got) < typed && time.Now().Before(deadline); {
					if lsrOf(u)&0x01 == 0 {
						time.Sleep(100 * time.Microsecond)
						continue
					}
					u.Read(0, reg)
					got = append(got, reg[0])
				}
				if !bytes.Equal(got, data) {
					t.Errorf("the guest, reading at last, got %d of the %d bytes sent", len(got), typed)
				}
			})
		}
	}
}
