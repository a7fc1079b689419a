package devices

import (
	"strings"
	"testing"
)

// TestUARTWritableBitsRestore: for IER, MCR and FCR, every value a guest
// can write leaves a state Restore takes, and each bit the write drops is
// refused in a restored state, naming the register: the device's masks
// and Check's are one.
func TestUARTWritableBitsRestore(t *testing.T) {
	for _, r := range []struct {
		name  string
		reg   uint64
		field func(*UARTState) *uint8
	}{
		{"IER", uartIER, func(s *UARTState) *uint8 { return &s.IER }},
		{"MCR", uartMCR, func(s *UARTState) *uint8 { return &s.MCR }},
		{"FCR", uartIIR, func(s *UARTState) *uint8 { return &s.FCR }},
	} {
		t.Run(r.name, func(t *testing.T) {
			var kept uint8
			for v := range 256 {
				u := NewUART(nil, nil)
				wr(u, r.reg, uint8(v))
				s := u.State()
				kept |= *r.field(&s)
				if err := NewUART(nil, nil).Restore(s); err != nil {
					t.Fatalf("after writing %#x: Restore = %v", v, err)
				}
			}
			for bit := range 8 {
				b := uint8(1) << bit
				if kept&b != 0 {
					continue
				}
				s := NewUART(nil, nil).State()
				*r.field(&s) = b
				if err := NewUART(nil, nil).Restore(s); err == nil || !strings.Contains(err.Error(), r.name) {
					t.Errorf("%s bit %#x, which no write keeps: Restore = %v, want a refusal naming %s", r.name, b, err, r.name)
				}
			}
		})
	}
}
