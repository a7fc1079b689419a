package devices

import (
	"bytes"
	"testing"
)

// pic8259Edge is an edge-triggered 8259 input: it latches a request on
// each rising edge of the line and hands it out once.
type pic8259Edge struct {
	level   bool
	latched int
}

func (p *pic8259Edge) Set(l bool) {
	if l && !p.level {
		p.latched++
	}
	p.level = l
}

// netbsdCom replays the register accesses of NetBSD 9's com(4) on COM1
// as the console (dev/ic/com.c: cominit, com_attach_subr, com_config,
// comopen/com_loadchannelregs, comstart, comintr), for the UART under test.
type netbsdCom struct {
	t   *testing.T
	u   *UART
	ier uint8
	tba []byte // bytes comstart handed to the transmitter, not yet written
	rx  []byte // bytes comintr read
	// txBusy and txDone mirror sc_tx_busy and sc_tx_done.
	txBusy, txDone bool
}

const fifoLen = 16

func (c *netbsdCom) cominit() {
	u := c.u
	wr(u, uartLCR, 0xBF) // LCR_EERS
	wr(u, uartIIR, 0)    // EFR on a 16650; FCR on a 16550
	wr(u, uartLCR, lcrDLAB)
	wr(u, uartRBR, 12) // 9600 baud
	wr(u, uartIER, 0)
	wr(u, uartLCR, 0x03) // 8N1
	wr(u, uartMCR, mcrDTR|mcrRTS)
	wr(u, uartIIR, 0x07) // FIFO enable, reset both, trigger 1
	wr(u, uartIER, 0)
}

// attach is com_attach_subr and com_config for the console: it returns
// what the FIFO probe found.
func (c *netbsdCom) attach() bool {
	u := c.u
	wr(u, uartIER, 0)
	wr(u, uartIIR, 0xC7) // enable, reset, trigger 14
	// com reads IIR twice (the second read only if the first shows FIFOs).
	fifo := rd(u, uartIIR)&0xC0 == 0xC0
	fifo = fifo && rd(u, uartIIR)&0xC0 == 0xC0
	wr(u, uartIIR, 0)
	wr(u, uartIER, 0) // com_config
	rd(u, uartIIR)
	c.ier = ierRLS // com_enable_debugport
	wr(u, uartIER, c.ier)
	wr(u, uartMCR, mcrDTR|mcrRTS)
	return fifo
}

// putc is com_common_putc: the polled console output of kernel printf.
func (c *netbsdCom) putc(b byte) {
	for timo := 150000; rd(c.u, uartLSR)&lsrTHRE == 0; timo-- {
		if timo == 0 {
			c.t.Fatal("putc: LSR never reported TXRDY")
		}
	}
	wr(c.u, uartRBR, b)
}

// open is comopen: receive interrupts on, then com_loadchannelregs.
func (c *netbsdCom) open() {
	u := c.u
	c.ier = ierRDA | ierRLS | ierMS
	wr(u, uartIER, c.ier)
	rd(u, uartMSR)
	for timo := 50000; rd(u, uartLSR)&lsrDR != 0 && timo > 0; timo-- { // com_iflush
		rd(u, uartRBR)
	}
	wr(u, uartIER, 0)
	wr(u, uartLCR, 0x03|lcrDLAB)
	wr(u, uartRBR, 12)
	wr(u, uartIER, 0)
	wr(u, uartLCR, 0x03)
	wr(u, uartMCR, mcrDTR|mcrRTS|mcrOUT2)
	wr(u, uartIIR, 0x81) // FIFO enable, trigger 8
	wr(u, uartIER, c.ier)
}

// start is comstart: enable the transmit interrupt if it is off, preload
// one FIFO's worth, and leave the rest to comintr.
func (c *netbsdCom) start(p []byte) {
	c.tba = p
	c.txBusy = true
	if c.ier&ierTHRE == 0 {
		c.ier |= ierTHRE
		wr(c.u, uartIER, c.ier)
	}
	c.chunk()
}

func (c *netbsdCom) chunk() {
	n := min(len(c.tba), fifoLen)
	for _, b := range c.tba[:n] {
		wr(c.u, uartRBR, b)
	}
	c.tba = c.tba[n:]
}

// intr is comintr. It reports whether the interrupt was the UART's.
func (c *netbsdCom) intr() bool {
	u := c.u
	iir := rd(u, uartIIR)
	if iir&iirNone != 0 {
		return false
	}
	for rounds := 0; ; rounds++ {
		if rounds > 1000 {
			c.t.Fatal("comintr never saw IIR_NOPEND")
		}
		for {
			lsr := rd(u, uartLSR)
			if lsr&lsrDR != 0 {
				for {
					c.rx = append(c.rx, rd(u, uartRBR))
					if rd(u, uartLSR)&lsrDR == 0 {
						break
					}
				}
			}
			rd(u, uartMSR)
			iir = rd(u, uartIIR)
			if iir&iirNone != 0 || iir&0x0F == iirTHRE {
				break
			}
		}
		if rd(u, uartLSR)&lsrTHRE != 0 {
			if len(c.tba) > 0 {
				c.chunk()
			} else {
				if c.ier&ierTHRE != 0 {
					c.ier &^= ierTHRE
					wr(u, uartIER, c.ier)
				}
				if c.txBusy {
					c.txBusy, c.txDone = false, true
				}
			}
		}
		if rd(u, uartIIR)&iirNone != 0 {
			return true
		}
	}
}

// TestUARTNetBSDComDriver runs com(4)'s console life on the UART: probe,
// polled kernel printf, then tty output that waits for transmit interrupts
// and input that arrives by receive interrupts, through an edge-triggered
// 8259 input. It fails if a transmission never completes (the hang a real
// NetBSD shows at the first login prompt) or the driver loses a byte.
func TestUARTNetBSDComDriver(t *testing.T) {
	var out bytes.Buffer
	pic := &pic8259Edge{}
	u := NewUART(&out, pic)
	c := &netbsdCom{t: t, u: u}
	c.cominit()
	if !c.attach() {
		t.Fatal("com_attach_subr's probe found no FIFO: NetBSD would say ns16550, broken fifo or ns16450")
	}
	for _, b := range []byte("com0: console\r\n") {
		c.putc(b)
	}
	if pic.latched != 0 {
		t.Fatalf("polled output with only IER_ERLS raised %d interrupt edges", pic.latched)
	}
	c.open()

	// service runs interrupts while the PIC holds a request, as the CPU
	// would once the spl drops, and returns how many the UART claimed.
	service := func() (claimed int) {
		for n := 0; pic.latched > 0; n++ {
			if n > 1000 {
				t.Fatal("interrupt storm: the line keeps rising")
			}
			pic.latched--
			if c.intr() {
				claimed++
			}
		}
		return claimed
	}

	tty := bytes.Repeat([]byte("login: "), 20)
	for i := 0; i < 3; i++ {
		out.Reset()
		c.start(tty)
		if pic.latched == 0 {
			t.Fatalf("write %d: comstart enabled IER_ETXRDY with the transmitter empty, but no edge reached the 8259", i)
		}
		if service() == 0 {
			t.Fatalf("write %d: comintr found nothing pending", i)
		}
		if !c.txDone || c.txBusy {
			t.Fatalf("write %d: the transmission never completed (sc_tx_done %v): tty output would hang", i, c.txDone)
		}
		c.txDone = false
		if !bytes.Equal(out.Bytes(), tty) {
			t.Fatalf("write %d: the console got %q, want %q", i, out.Bytes(), tty)
		}
		if pic.level {
			t.Fatalf("write %d: the line stays high after the driver is done", i)
		}
	}

	u.Receive([]byte("root\n"))
	if pic.latched == 0 {
		t.Fatal("received bytes raised no edge with IER_ERXRDY on")
	}
	service()
	if string(c.rx) != "root\n" {
		t.Fatalf("comintr read %q, want %q", c.rx, "root\n")
	}
	if got := rd(u, uartIIR); got != iirFIFOs|iirNone {
		t.Fatalf("IIR at rest = %#x, want %#x (FIFOs on, nothing pending)", got, iirFIFOs|iirNone)
	}
}
