package devices

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// fakeClock is a UART's clock that moves only when the test says.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// pacedUART returns a UART on a fake clock.
func pacedUART(irq interface{ Set(bool) }) (*UART, *fakeClock) {
	u := NewUART(nil, irq)
	c := &fakeClock{t: time.Unix(1000, 0)}
	u.now = c.now
	return u, c
}

// program sets the divisor latch and the line control register as a
// driver does.
func program(u *UART, divisor uint16, lcr uint8) {
	wr(u, uartLCR, lcrDLAB)
	wr(u, uartRBR, uint8(divisor))
	wr(u, uartIER, uint8(divisor>>8))
	wr(u, uartLCR, lcr)
}

// bitsAt is how long n/2 bits take at baud.
func bitsAt(baud int, halfBits int64) time.Duration {
	return time.Duration(halfBits * int64(time.Second) / int64(2*baud))
}

// TestUARTPacing: the receiver takes host bytes no faster than the line
// the guest programmed carries them (115200/divisor baud; start bit, data
// bits, parity, stop bits), into a 16-byte FIFO or, with the FIFO off,
// one byte: a sender that offers bytes whenever RXSpace allows, to a guest
// that reads them all at once, gets through one a character time.
func TestUARTPacing(t *testing.T) {
	tests := []struct {
		name     string
		reset    bool // the guest never programs the line
		divisor  uint16
		lcr      uint8
		fifo     bool
		wantChar time.Duration
	}{
		{"from reset: 9600 baud, 5N1", true, 0, 0, true, bitsAt(9600, 14)},
		{"9600 8N1", false, 12, 0x03, true, bitsAt(9600, 20)},
		{"115200 8N1", false, 1, 0x03, true, bitsAt(115200, 20)},
		{"115200 8N1, FIFO off", false, 1, 0x03, false, bitsAt(115200, 20)},
		{"38400 7E1", false, 3, 0x02 | lcrParity, true, bitsAt(38400, 20)},
		{"9600 8O2", false, 12, 0x03 | lcrParity | lcrStop2, true, bitsAt(9600, 24)},
		{"9600 5 bits, 1.5 stop bits", false, 12, lcrStop2, true, bitsAt(9600, 15)},
		{"300 baud 8N1", false, 384, 0x03, false, bitsAt(300, 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, clock := pacedUART(nil)
			if !tt.reset {
				program(u, tt.divisor, tt.lcr)
			}
			depth := 1
			if tt.fifo {
				wr(u, uartIIR, fcrEnable)
				depth = uartFIFODepth
			}
			if got := u.CharTime(); got != tt.wantChar {
				t.Fatalf("CharTime %v, want %v", got, tt.wantChar)
			}
			// The receiver holds what the idle line could have
			// brought it before; then the guest reads what is there
			// and the sender offers more, every third of a character.
			if n := u.RXSpace(); n != depth {
				t.Fatalf("RXSpace on an idle line %d, want the receiver's %d", n, depth)
			}
			const chars = 300
			sent, steps := 0, 0
			step := tt.wantChar / 3
			for elapsed := time.Duration(0); elapsed < chars*tt.wantChar; elapsed += step {
				for rd(u, uartLSR)&lsrDR != 0 {
					rd(u, uartRBR)
				}
				n := u.RXSpace()
				msg := make([]byte, n)
				u.Receive(msg)
				sent += n
				// Never more than one a character time, but for the
				// receiver's worth at the start.
				if limit := depth + int(elapsed/tt.wantChar); sent > limit {
					t.Fatalf("after %v (%d characters' time) the line delivered %d bytes, at most %d", elapsed, elapsed/tt.wantChar, sent, limit)
				}
				clock.advance(step)
				steps++
			}
			if sent < chars-1 {
				t.Errorf("in %d characters' time the line delivered %d: slower than its rate", chars, sent)
			}
			if lsr := rd(u, uartLSR); lsr&lsrOE != 0 {
				t.Errorf("LSR %#x: an overrun while the sender kept to RXSpace", lsr)
			}
		})
	}
}

// TestUARTReceivePastSpaceOverruns: bytes handed to Receive beyond what
// the line has carried are lost as an overrun, LSR OE, and those within
// it arrive in order. The guest reads as NetBSD's com(4) does (RBR while
// LSR shows any receive status): an overrun on an empty receiver shows
// with the next byte, never alone, which sent com(4) to read a NUL nobody
// typed.
func TestUARTReceivePastSpaceOverruns(t *testing.T) {
	u, clock := pacedUART(nil)
	wr(u, uartIIR, fcrEnable)
	program(u, 12, 0x03)
	u.Receive([]byte("0123456789abcdefXYZ"))
	got, lsrs := comRxLoop(u, 2048)
	if string(got) != "0123456789abcdef" {
		t.Errorf("the guest read %q, want the FIFO's 16", got)
	}
	if len(lsrs) == 0 || lsrs[0]&lsrOE == 0 {
		t.Errorf("LSRs %x: the 3 bytes past the FIFO lost without an overrun", lsrs)
	}
	u.Receive([]byte("Q")) // the line has carried nothing since
	if got, lsrs := comRxLoop(u, 2048); len(got) != 0 {
		t.Errorf("com(4) read %q (LSRs %x) with no byte arrived: an overrun alone on an empty receiver", got, lsrs)
	}
	clock.advance(u.CharTime())
	u.Receive([]byte("R"))
	got, lsrs = comRxLoop(u, 2048)
	if string(got) != "R" || lsrs[0]&(lsrOE|lsrDR) != lsrOE|lsrDR {
		t.Errorf("a character time later com(4) read %q with LSRs %x, want \"R\" with data and the overrun of \"Q\"", got, lsrs)
	}
}

// comRxLoop replays the receive half of NetBSD 9's comintr
// (sys/dev/ic/com.c:2177-2193): it reads RBR while LSR shows any of
// LSR_RCV_MASK (0x1f: data, overrun, parity, framing, break), not data
// ready alone, at most cc bytes (the soft ring's room). It returns the
// bytes and the LSR read before each.
func comRxLoop(u *UART, cc int) (data, lsrs []byte) {
	const lsrRcvMask = 0x1f
	for lsr := rd(u, uartLSR); lsr&lsrRcvMask != 0 && cc > 0; lsr = rd(u, uartLSR) {
		data = append(data, rd(u, uartRBR))
		lsrs = append(lsrs, lsr)
		cc--
	}
	return data, lsrs
}

// TestUARTPasteWithinTTYHOG: a 3000-byte paste, offered as the input
// pump offers it (whatever RXSpace allows, every millisecond), reaches
// NetBSD's com(4) driver (one receive loop per interrupt edge, into its
// 2048-byte ring, each pass handed to the tty by one soft interrupt) in
// passes of at most a FIFO's worth, far below the tty's 1024-byte TTYHOG
// past which it drops input: whole, in order, without an overrun. It was
// one 2048-byte pass.
func TestUARTPasteWithinTTYHOG(t *testing.T) {
	const ttyhog = 1024
	paste := make([]byte, 3000)
	for i := range paste {
		paste[i] = 'a' + byte(i%23)
	}
	for _, tt := range []struct {
		name    string
		divisor uint16
	}{{"9600", 12}, {"115200", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			pic := &pic8259Edge{}
			u, clock := pacedUART(pic)
			program(u, tt.divisor, 0x03)
			wr(u, uartIIR, 0x81) // FIFO on, trigger 8, as comopen
			wr(u, uartIER, ierRDA|ierRLS)
			var got []byte
			largest := 0
			rest := paste
			for ms := 0; len(got) < len(paste); ms++ {
				if ms > 10*1000 {
					t.Fatalf("after 10 s of line time the guest has %d of %d bytes", len(got), len(paste))
				}
				n := min(u.RXSpace(), len(rest), 256)
				u.Receive(rest[:n])
				rest = rest[n:]
				for pic.latched > 0 {
					pic.latched--
					data, lsrs := comRxLoop(u, 2048)
					for _, l := range lsrs {
						if l&lsrOE != 0 {
							t.Fatalf("LSR %#x: overrun during the paste", l)
						}
					}
					largest = max(largest, len(data))
					got = append(got, data...)
				}
				clock.advance(time.Millisecond)
			}
			if largest > uartFIFODepth || largest > ttyhog {
				t.Errorf("one interrupt handed the tty %d bytes, want at most the FIFO's %d (TTYHOG %d)", largest, uartFIFODepth, ttyhog)
			}
			if !bytes.Equal(got, paste) {
				t.Errorf("the guest read %d bytes, not the %d pasted in order", len(got), len(paste))
			}
		})
	}
}

// TestUARTBurstWithoutTime: however fast the host offers bytes, with no
// time passing a receive interrupt finds at most the FIFO's 16.
func TestUARTBurstWithoutTime(t *testing.T) {
	u, _ := pacedUART(&pic8259Edge{})
	wr(u, uartIIR, fcrEnable)
	wr(u, uartIER, ierRDA|ierRLS)
	for range 100 {
		u.Receive(bytes.Repeat([]byte("x"), u.RXSpace()))
	}
	if got, _ := comRxLoop(u, 2048); len(got) != uartFIFODepth {
		t.Errorf("one receive loop read %d bytes, want the FIFO's %d", len(got), uartFIFODepth)
	}
}

// TestUARTFullFIFOHoldsLine: a full receiver holds the line back, so the
// guest draining it gets the byte the line carried meanwhile and then one
// a character time, not a second FIFO's worth at once.
func TestUARTFullFIFOHoldsLine(t *testing.T) {
	u, clock := pacedUART(nil)
	wr(u, uartIIR, fcrEnable)
	u.Receive(make([]byte, uartFIFODepth))
	clock.advance(time.Second) // the guest reads nothing for a while
	if n := u.RXSpace(); n != 0 {
		t.Fatalf("RXSpace %d with the FIFO full", n)
	}
	comRxLoop(u, 2048)
	if n := u.RXSpace(); n != 1 {
		t.Errorf("RXSpace %d just after the guest emptied a full FIFO, want 1 (the byte the line held back): the line was held", n)
	}
	clock.advance(u.CharTime())
	if n := u.RXSpace(); n != 2 {
		t.Errorf("RXSpace %d a character time later, want 2", n)
	}
}

func ExampleUART_CharTime() {
	u := NewUART(nil, nil)
	program(u, 1, 0x03) // 115200 baud, 8N1
	fmt.Println(u.CharTime())
	// Output: 86.805µs
}
