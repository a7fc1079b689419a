package devices

import (
	"bytes"
	"testing"
	"time"
)

// recIRQ records every level change of an IRQ line.
type recIRQ struct{ levels []bool }

func (r *recIRQ) Set(l bool) { r.levels = append(r.levels, l) }
func (r *recIRQ) high() bool { return len(r.levels) > 0 && r.levels[len(r.levels)-1] }

func rd(d interface{ Read(uint64, []byte) }, reg uint64) uint8 {
	b := []byte{0}
	d.Read(reg, b)
	return b[0]
}

func wr(d interface{ Write(uint64, []byte) }, reg uint64, v uint8) { d.Write(reg, []byte{v}) }

func TestUARTRegisters(t *testing.T) {
	tests := []struct {
		name string
		run  func(u *UART) uint8
		want uint8
	}{
		{"LCR reads back", func(u *UART) uint8 { wr(u, uartLCR, 0x03); return rd(u, uartLCR) }, 0x03},
		{"LCR reads back with DLAB set", func(u *UART) uint8 { wr(u, uartLCR, 0x83); return rd(u, uartLCR) }, 0x83},
		{"LCR reads back all 8 bits", func(u *UART) uint8 { wr(u, uartLCR, 0xFF); return rd(u, uartLCR) }, 0xFF},
		{"scratch", func(u *UART) uint8 { wr(u, uartSCR, 0x5A); return rd(u, uartSCR) }, 0x5A},
		{"DLAB divisor low", func(u *UART) uint8 {
			wr(u, uartLCR, 0x83)
			wr(u, uartRBR, 0x01)
			return rd(u, uartRBR)
		}, 0x01},
		{"DLAB divisor high does not touch IER", func(u *UART) uint8 {
			wr(u, uartLCR, 0x83)
			wr(u, uartIER, 0x00)
			wr(u, uartLCR, 0x03)
			return rd(u, uartIER)
		}, 0x00},
		{"IIR idle without FIFO", func(u *UART) uint8 { return rd(u, uartIIR) }, 0x01},
		{"IIR FIFO bits once enabled", func(u *UART) uint8 { wr(u, uartIIR, 0x07); return rd(u, uartIIR) }, 0xC1},
		{"IIR & 0x38 is zero (NetBSD com probe)", func(u *UART) uint8 { return rd(u, uartIIR) & 0x38 }, 0},
		{"LSR transmitter empty", func(u *UART) uint8 { return rd(u, uartLSR) }, 0x60},
		{"MSR carrier, DSR, CTS", func(u *UART) uint8 { return rd(u, uartMSR) }, 0xB0},
		{"MCR masks unused bits", func(u *UART) uint8 { wr(u, uartMCR, 0xFF); return rd(u, uartMCR) }, 0x1F},
		{"loopback MSR mirrors MCR", func(u *UART) uint8 { wr(u, uartMCR, 0x1F); return rd(u, uartMSR) & 0xF0 }, 0xF0},
		// 16550 loopback ties each modem output to one input.
		{"loopback RTS is CTS", func(u *UART) uint8 { wr(u, uartMCR, mcrLoop|mcrRTS); return rd(u, uartMSR) & 0xF0 }, msrCTS},
		{"loopback DTR is DSR", func(u *UART) uint8 { wr(u, uartMCR, mcrLoop|mcrDTR); return rd(u, uartMSR) & 0xF0 }, msrDSR},
		{"loopback OUT1 is RI", func(u *UART) uint8 { wr(u, uartMCR, mcrLoop|mcrOUT1); return rd(u, uartMSR) & 0xF0 }, msrRI},
		{"loopback OUT2 is DCD", func(u *UART) uint8 { wr(u, uartMCR, mcrLoop|mcrOUT2); return rd(u, uartMSR) & 0xF0 }, msrDCD},
		{"loopback no outputs, no inputs", func(u *UART) uint8 { wr(u, uartMCR, mcrLoop); return rd(u, uartMSR) & 0xF0 }, 0},
		// Linux's 8250 autoconfig: MCR=LOOP|OUT2|RTS must read MSR&0xF0 == 0x90.
		{"loopback OUT2 and RTS (Linux probe)", func(u *UART) uint8 {
			wr(u, uartMCR, mcrLoop|mcrOUT2|mcrRTS)
			return rd(u, uartMSR) & 0xF0
		}, 0x90},
		{"loopback data returns", func(u *UART) uint8 {
			wr(u, uartMCR, 0x10)
			wr(u, uartRBR, 'q')
			return rd(u, uartRBR)
		}, 'q'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := NewUART(nil, nil)
			if got := tt.run(u); got != tt.want {
				t.Fatalf("got %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestUARTOutput(t *testing.T) {
	var out bytes.Buffer
	var seen []byte
	u := NewUART(&out, nil)
	u.OnOutput = func(b byte) { seen = append(seen, b) }
	for _, b := range []byte("hello\r\n") {
		wr(u, uartRBR, b)
	}
	if out.String() != "hello\r\n" || string(seen) != "hello\r\n" {
		t.Fatalf("output %q, OnOutput saw %q", out.String(), seen)
	}
	wr(u, uartMCR, 0x10)
	wr(u, uartRBR, 'x')
	if out.Len() != 7 {
		t.Fatalf("loopback byte reached the console: %q", out.String())
	}
}

func TestUARTTransmitInterrupt(t *testing.T) {
	irq := &recIRQ{}
	u := NewUART(nil, irq)
	wr(u, uartIER, ierTHRE)
	if !irq.high() {
		t.Fatal("enabling THRE with an empty transmitter must raise the IRQ")
	}
	if got := rd(u, uartIIR); got != iirTHRE {
		t.Fatalf("IIR = %#x, want THRE %#x", got, iirTHRE)
	}
	if irq.high() {
		t.Fatal("reading IIR must clear the THRE interrupt and lower the line")
	}
	if got := rd(u, uartIIR); got != iirNone {
		t.Fatalf("IIR after service = %#x, want no interrupt", got)
	}
	wr(u, uartRBR, 'a')
	if !irq.high() {
		t.Fatal("transmitting a byte must raise THRE again (a new edge for the 8259)")
	}
	wr(u, uartIER, 0)
	if irq.high() {
		t.Fatal("disabling the interrupt must lower the line")
	}
}

func TestUARTReceive(t *testing.T) {
	irq := &recIRQ{}
	u, clock := pacedUART(irq)
	wr(u, uartIER, ierRDA)
	wr(u, uartIIR, fcrEnable)
	u.Receive([]byte("ab"))
	if !irq.high() || rd(u, uartIIR) != iirRDA|iirFIFOs {
		t.Fatal("received data must raise RDA")
	}
	if rd(u, uartLSR)&lsrDR == 0 {
		t.Fatal("LSR must report data ready")
	}
	if a, b := rd(u, uartRBR), rd(u, uartRBR); a != 'a' || b != 'b' {
		t.Fatalf("read %q %q", a, b)
	}
	if irq.high() || rd(u, uartLSR)&lsrDR != 0 {
		t.Fatal("an empty receiver must lower the line and clear DR")
	}
	// Flooding past the FIFO sets overrun once and keeps what fits.
	clock.advance(time.Second)
	u.Receive(make([]byte, uartFIFODepth+10))
	if rd(u, uartLSR)&lsrOE == 0 {
		t.Fatal("overrun not reported")
	}
	if rd(u, uartLSR)&lsrOE != 0 {
		t.Fatal("reading LSR must clear overrun")
	}
	if u.RXSpace() != 0 {
		t.Fatalf("RXSpace = %d, want 0", u.RXSpace())
	}
	wr(u, uartIIR, fcrEnable|fcrClearRX)
	clock.advance(time.Second)
	if n := u.RXSpace(); n != uartFIFODepth {
		t.Fatalf("RXSpace = %d after FCR clear-RX, want %d: it must empty the receiver", n, uartFIFODepth)
	}
}

func TestUARTPriority(t *testing.T) {
	u := NewUART(nil, nil)
	wr(u, uartIER, ierRDA|ierTHRE)
	u.Receive([]byte("z"))
	if got := rd(u, uartIIR); got != iirRDA {
		t.Fatalf("IIR = %#x, want RDA before THRE", got)
	}
	rd(u, uartRBR)
	if got := rd(u, uartIIR); got != iirTHRE {
		t.Fatalf("IIR = %#x, want THRE once data is read", got)
	}
}
