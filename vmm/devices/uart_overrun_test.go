package devices

import (
	"bytes"
	"testing"
)

// TestUARTOverrun: Overrun reports a byte lost as a full receiver's
// overrun does (16550: LSR OE set, cleared by the LSR read; the line
// status interrupt when enabled), and queues no byte: the guest, reading
// as NetBSD's com(4) does (RBR while LSR shows any receive status, OE
// included), reads only what it had, in order. On an empty receiver the
// overrun shows with the next byte: OE alone sent com(4) to read RBR and
// hand its tty a NUL nobody typed.
func TestUARTOverrun(t *testing.T) {
	tests := []struct {
		name    string
		ier     uint8
		had     []byte
		wantOE  bool // at once, with what the receiver had
		wantIRQ bool
	}{
		{"full, line status interrupt enabled", ierRLS | ierRDA, bytes.Repeat([]byte{'g'}, uartFIFODepth), true, true},
		{"full, interrupts off", 0, bytes.Repeat([]byte{'g'}, uartFIFODepth), true, false},
		{"with room, line status interrupt enabled", ierRLS, []byte("ab"), true, true},
		{"empty, line status interrupt enabled", ierRLS | ierRDA, nil, false, false},
		{"empty, only data interrupt enabled", ierRDA, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			irq := &recIRQ{}
			u, clock := pacedUART(irq)
			wr(u, uartIIR, fcrEnable)
			wr(u, uartIER, tt.ier)
			u.Receive(tt.had)
			space := u.RXSpace()
			u.Overrun()
			if irq.high() != tt.wantIRQ {
				t.Errorf("IRQ line high = %v after Overrun, want %v", irq.high(), tt.wantIRQ)
			}
			if got := rd(u, uartIIR) &^ iirFIFOs; tt.wantIRQ && got != iirRLS {
				t.Errorf("IIR = %#x, want receiver line status %#x", got, iirRLS)
			}
			if n := u.RXSpace(); n != space {
				t.Errorf("RXSpace %d after Overrun, %d before: it queued a byte", n, space)
			}
			got, lsrs := comRxLoop(u, 2048)
			if !bytes.Equal(got, tt.had) {
				t.Errorf("the guest read %q, want the %d bytes it had", got, len(tt.had))
			}
			if oe := len(lsrs) > 0 && lsrs[0]&lsrOE != 0; oe != tt.wantOE {
				t.Errorf("LSR before the first byte %#x: overrun %v, want %v", lsrs, oe, tt.wantOE)
			}
			if lsr := rd(u, uartLSR); lsr&lsrOE != 0 {
				t.Errorf("LSR = %#x once the guest read all, want OE cleared", lsr)
			}
			if tt.ier&ierRDA == 0 && irq.high() {
				t.Error("IRQ line still high once LSR was read")
			}
			// The next byte shows the overrun not yet reported.
			clock.advance(u.CharTime())
			u.Receive([]byte("n"))
			got, lsrs = comRxLoop(u, 2048)
			if string(got) != "n" || (lsrs[0]&lsrOE != 0) == tt.wantOE {
				t.Errorf("next byte: read %q with LSR %#x; want \"n\", overrun %v", got, lsrs, !tt.wantOE)
			}
		})
	}
}
