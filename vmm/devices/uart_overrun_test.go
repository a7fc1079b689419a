package devices

import (
	"bytes"
	"testing"
)

// TestUARTOverrun: Overrun reports a byte lost as a full receiver's
// overrun does (16550: LSR OE set, cleared by the LSR read; the line
// status interrupt when enabled), and queues no byte: the guest reads
// only what it had, in order.
func TestUARTOverrun(t *testing.T) {
	tests := []struct {
		name    string
		ier     uint8
		had     []byte
		wantIRQ bool
	}{
		{"full, line status interrupt enabled", ierRLS | ierRDA, bytes.Repeat([]byte{'g'}, uartRXLimit), true},
		{"full, interrupts off", 0, bytes.Repeat([]byte{'g'}, uartRXLimit), false},
		{"with room, line status interrupt enabled", ierRLS, []byte("ab"), true},
		{"empty, only data interrupt enabled", ierRDA, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			irq := &recIRQ{}
			u := NewUART(nil, irq)
			wr(u, uartIER, tt.ier)
			u.Receive(tt.had)
			// What a dropped overrun leaves, for Overrun to match.
			dropped := NewUART(nil, nil)
			wr(dropped, uartIER, tt.ier)
			dropped.Receive(bytes.Repeat([]byte{'g'}, uartRXLimit+1))
			space := u.RXSpace()
			u.Overrun()
			if irq.high() != tt.wantIRQ {
				t.Errorf("IRQ line high = %v after Overrun, want %v", irq.high(), tt.wantIRQ)
			}
			if got := rd(u, uartIIR); tt.wantIRQ && got != iirRLS {
				t.Errorf("IIR = %#x, want receiver line status %#x", got, iirRLS)
			}
			if got := u.State().LSRErr; got != dropped.State().LSRErr {
				t.Errorf("LSR error bits %#x after Overrun, %#x after a byte dropped by a full receiver", got, dropped.State().LSRErr)
			}
			if got := rd(u, uartLSR); got&lsrOE == 0 {
				t.Errorf("LSR = %#x after Overrun, want OE (%#x)", got, lsrOE)
			}
			if got := rd(u, uartLSR); got&lsrOE != 0 {
				t.Errorf("LSR = %#x on the second read, want OE cleared by the first", got)
			}
			if tt.ier&ierRDA == 0 && irq.high() {
				t.Error("IRQ line still high once LSR was read")
			}
			if n := u.RXSpace(); n != space {
				t.Errorf("RXSpace %d after Overrun, %d before: it queued a byte", n, space)
			}
			var got []byte
			for rd(u, uartLSR)&lsrDR != 0 {
				got = append(got, rd(u, uartRBR))
			}
			if !bytes.Equal(got, tt.had) {
				t.Errorf("the guest read %d bytes, want the %d it had", len(got), len(tt.had))
			}
		})
	}
}
