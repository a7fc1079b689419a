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
