package devices

import (
	"testing"
	"time"
)

// TestUARTOffer: Offer takes what the line has carried of the bytes
// offered, as far as the receiver has room, and says how many: the rest
// are the caller's, not an overrun. It measures and takes under one lock,
// so a guest turning its FIFO off between a sender's look at RXSpace and
// its Offer costs no byte.
func TestUARTOffer(t *testing.T) {
	tests := []struct {
		name    string
		fifo    bool
		advance time.Duration // line time before the offer, in characters
		had     int           // bytes already in the receiver
		offer   string
		want    string
	}{
		{"idle line, FIFO on", true, 0, 0, "0123456789abcdefXYZ", "0123456789abcdef"},
		{"idle line, FIFO off", false, 0, 0, "0123", "0"},
		{"full FIFO", true, 0, uartFIFODepth, "Q", ""},
		{"two characters after a full FIFO read", true, 2, 0, "0123", "01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, clock := pacedUART(nil)
			program(u, 1, 0x03)
			if tt.fifo {
				wr(u, uartIIR, fcrEnable)
			}
			if tt.advance > 0 {
				u.Offer(make([]byte, uartFIFODepth))
				comRxLoop(u, 2048)
				clock.advance(tt.advance*u.CharTime() + u.CharTime()/2)
			}
			u.Offer(make([]byte, tt.had))
			n := u.Offer([]byte(tt.offer))
			if n != len(tt.want) {
				t.Errorf("Offer took %d, want %d", n, len(tt.want))
			}
			got, lsrs := comRxLoop(u, 2048)
			if string(got[tt.had:]) != tt.want {
				t.Errorf("the guest read %q after the %d it had, want %q", got[tt.had:], tt.had, tt.want)
			}
			for _, l := range lsrs {
				if l&lsrOE != 0 {
					t.Errorf("LSRs %x: an overrun for bytes Offer left to the caller", lsrs)
					break
				}
			}
		})
	}
}

// TestUARTRXWait: RXWait says when the next byte may arrive (the line's
// due time, not a fixed tick) and, the receiver full, that only the guest
// can make room; its callback is called once the guest reads from the
// full receiver or reprograms the receiver or the line, so that a waiting
// sender sleeps until then.
func TestUARTRXWait(t *testing.T) {
	u, clock := pacedUART(nil)
	program(u, 12, 0x03) // 9600 8N1: 1.04 ms a character
	wr(u, uartIIR, fcrEnable)
	ct := u.CharTime()
	calls := 0
	room := func() { calls++ }
	if n, wait := u.RXWait(room); n != uartFIFODepth || wait != 0 {
		t.Fatalf("idle line: RXWait %d, %v; want %d, 0", n, wait, uartFIFODepth)
	}
	u.Offer(make([]byte, 3))
	// Three of the FIFO's worth the idle line carried are taken: 13 left.
	u.Offer(make([]byte, 13))
	rd(u, uartRBR)
	if n, wait := u.RXWait(room); n != 0 || wait != ct {
		t.Errorf("a byte read from a full FIFO: RXWait %d, %v; want 0, a character's %v", n, wait, ct)
	}
	clock.advance(ct / 4)
	if n, wait := u.RXWait(room); n != 0 || wait != ct-ct/4 {
		t.Errorf("a quarter character later: RXWait %d, %v; want 0, %v", n, wait, ct-ct/4)
	}
	rd(u, uartRBR)
	if calls != 0 {
		t.Errorf("room called %d times by a read from a receiver with room, which changes no due time", calls)
	}
	clock.advance(ct - ct/4)
	if n, wait := u.RXWait(room); n != 1 || wait != 0 {
		t.Errorf("a character later: RXWait %d, %v; want 1, 0", n, wait)
	}
	u.Offer([]byte("x"))
	clock.advance(ct)
	u.Offer([]byte("y")) // for the byte read above
	calls = 0
	if n, wait := u.RXWait(room); n != 0 || wait >= 0 {
		t.Fatalf("full FIFO: RXWait %d, %v; want 0 and a negative wait (no time makes room)", n, wait)
	}
	if calls != 0 {
		t.Fatalf("room called %d times before the guest did anything", calls)
	}
	rd(u, uartLSR)
	rd(u, uartIIR)
	if calls != 0 {
		t.Errorf("room called %d times by reads that free nothing", calls)
	}
	rd(u, uartRBR)
	rd(u, uartRBR)
	if calls != 1 {
		t.Errorf("room called %d times for two RBR reads after one RXWait, want 1", calls)
	}
	for _, w := range []struct {
		name string
		reg  uint64
		v    uint8
	}{{"FCR", uartIIR, fcrEnable | fcrClearRX}, {"LCR", uartLCR, 0x03}} {
		calls = 0
		u.RXWait(room)
		wr(u, w.reg, w.v)
		if calls != 1 {
			t.Errorf("a %s write after RXWait called room %d times, want 1", w.name, calls)
		}
	}
	clock.advance(20 * ct)
	u.Offer(make([]byte, uartFIFODepth))
	calls = 0
	u.RXWait(room)
	u.RXWait(nil)
	rd(u, uartRBR)
	if calls != 0 {
		t.Errorf("RXWait(nil) left the earlier callback set: called %d times", calls)
	}
}
