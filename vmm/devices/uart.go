package devices

import (
	"io"
	"sync"
	"time"

	"github.com/smolvmm/smolvmm/bus"
)

// 16550A register offsets from the base port.
const (
	uartRBR = 0 // receive buffer (read), transmit holding (write), DLL with DLAB
	uartIER = 1 // interrupt enable, DLM with DLAB
	uartIIR = 2 // interrupt identification (read), FIFO control (write)
	uartLCR = 3
	uartMCR = 4
	uartLSR = 5
	uartMSR = 6
	uartSCR = 7
)

// Register bits.
const (
	ierRDA  = 0x01 // received data available
	ierTHRE = 0x02 // transmit holding register empty
	ierRLS  = 0x04 // receiver line status
	ierMS   = 0x08 // modem status

	iirNone  = 0x01
	iirMS    = 0x00
	iirTHRE  = 0x02
	iirRDA   = 0x04
	iirRLS   = 0x06
	iirFIFOs = 0xC0

	fcrEnable  = 0x01
	fcrClearRX = 0x02
	fcrDMA     = 0x08 // DMA mode select
	fcrTrigger = 0xC0 // receive FIFO trigger level

	lcrWordLen = 0x03 // data bits - 5
	lcrStop2   = 0x04 // two stop bits (1.5 with 5 data bits)
	lcrParity  = 0x08
	lcrDLAB    = 0x80

	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08
	mcrLoop = 0x10

	lsrDR   = 0x01
	lsrOE   = 0x02
	lsrTHRE = 0x20
	lsrTEMT = 0x40

	msrDCTS = 0x01
	msrDDSR = 0x02
	msrTERI = 0x04
	msrDDCD = 0x08
	msrCTS  = 0x10
	msrDSR  = 0x20
	msrRI   = 0x40
	msrDCD  = 0x80
)

// The register bits a guest's writes keep, the rest reading as zero; a
// restored state holding any other is refused (UARTState.Check).
const (
	ierWritable = ierRDA | ierTHRE | ierRLS | ierMS
	// The FIFO clear bits act once and are not kept; bits 4-5 are the
	// 16750's.
	fcrWritable = fcrEnable | fcrDMA | fcrTrigger
	mcrWritable = mcrDTR | mcrRTS | mcrOUT1 | mcrOUT2 | mcrLoop
)

// uartRXLimit bounds the receive buffer a restored state may hold: the
// receiver now holds at most a FIFO's worth (uartFIFODepth), but a
// snapshot from before it was paced holds up to this many.
const uartRXLimit = 4096

// uartFIFODepth is the 16550A's receive FIFO; with the FIFO disabled the
// receiver holds one byte, as a 16450's does.
const uartFIFODepth = 16

// uartBaseRate is the baud rate of divisor 1: the PC's 1.8432 MHz clock
// over 16.
const uartBaseRate = 115200

// uartResetDivisor is the divisor latch of a guest that never programs
// it: 9600 baud, which a PC BIOS leaves the console at (the 16550 itself
// resets it to nothing defined). NetBSD programs it from its console speed.
const uartResetDivisor = 12

// UART is a 16550A serial port (COM1 at 0x3F8 on IRQ 4 on a PC). Transmitted
// bytes go to Out at once, so the transmitter is always empty; received bytes
// come from Receive, paced as a serial line carries them: at most one a
// character time at the rate and framing the guest programmed (CharTime),
// into a 16-byte receive FIFO (one byte with the FIFO off). RXSpace says how
// many the line has carried since and the FIFO has room for; the caller
// keeps the rest until then, as a sender waits on flow control, so that a
// guest reading at the line's rate is never handed more at once than a
// real port's FIFO: NetBSD's tty drops what one interrupt hands it past its
// 1 KiB limit. The interrupt output follows the 16550's priority rules
// and drives its IRQ line level: high while an enabled condition is pending,
// low once the guest has served it. On the PC's edge-triggered 8259 that is
// one edge per new event, which is what NetBSD's com(4) waits for once its
// tty layer runs.
type UART struct {
	mu  sync.Mutex
	out io.Writer
	irq bus.IRQ

	rx      []byte // the receive FIFO
	ier     uint8
	lcr     uint8
	mcr     uint8
	lsrErr  uint8 // overrun, cleared by reading LSR
	scr     uint8
	dll     uint8
	dlm     uint8
	fcr     uint8
	thrIntr bool  // THRE interrupt pending (cleared by reading IIR or writing THR)
	msr     uint8 // delta bits and loopback state
	irqHigh bool

	// now is the host's monotonic clock (time.Now), a test's clock in
	// tests; lineAt is when the line finished carrying the last byte it
	// delivered (zero: idle since the UART was made or restored). Host
	// times are not machine state: a snapshot has neither.
	now    func() time.Time
	lineAt time.Time
	// lostOE is an overrun reported while the receiver held nothing,
	// shown with the next byte that arrives.
	lostOE bool
	// room is RXWait's callback, called once when the guest may have made
	// room (nil: nobody waits).
	room func()

	// OnOutput, when set, sees every transmitted byte after it was written
	// to out (the machine watches for NetBSD's halt message with it).
	OnOutput func(b byte)
}

// NewUART returns a UART writing to out and interrupting through irq.
func NewUART(out io.Writer, irq bus.IRQ) *UART {
	if out == nil {
		out = io.Discard
	}
	if irq == nil {
		irq = bus.NoIRQ{}
	}
	return &UART{out: out, irq: irq, msr: msrDCD | msrDSR | msrCTS, dll: uartResetDivisor, now: time.Now}
}

// Receive hands the guest bytes typed on the console: the first RXSpace
// of them arrive, the rest are lost as a line's overrun loses them (LSR
// OE, shown as Overrun shows it), so a caller hands at most RXSpace and
// keeps the rest for later; Offer does that under one lock.
func (u *UART) Receive(p []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.offer(p) < len(p) {
		u.overrun()
	}
	u.update()
}

// Offer hands the guest what the line has carried of p, as far as the
// receiver has room (RXSpace), and returns how many it took: the caller
// keeps the rest, no overrun. Measured and taken at once, a guest that
// turns its FIFO off or slows its line meanwhile costs no byte.
func (u *UART) Offer(p []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.offer(p)
	u.update()
	return n
}

// offer is Offer with mu held and the IRQ line left to the caller.
func (u *UART) offer(p []byte) int {
	start, due := u.lineDue(u.now())
	n := min(len(p), due)
	for _, b := range p[:n] {
		u.push(b)
	}
	if n > 0 {
		u.lineAt = start.Add(time.Duration(n) * u.charTime())
	}
	return n
}

// Overrun reports a received byte lost for want of room, as the
// receiver reports one it drops when full: LSR's overrun bit (OE) is set
// until the guest reads LSR, with the receiver line status interrupt if
// enabled; on an empty receiver, from the next byte's arrival (a real
// receiver overruns only when it holds data, and NetBSD's com(4) reads RBR
// whenever LSR shows an error: OE alone would hand it a NUL never typed).
// No byte is queued, so the guest still reads what it had, in order; the
// caller that held the byte back (the machine's input pump) need not race
// the guest's reads to have it dropped.
func (u *UART) Overrun() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.overrun()
	u.update()
}

// overrun is Overrun with mu held and the IRQ line left to the caller.
func (u *UART) overrun() {
	if len(u.rx) == 0 {
		u.lostOE = true
		return
	}
	u.lsrErr |= lsrOE
}

// push appends b to the receiver, or reports an overrun when it is full.
// Caller holds mu.
func (u *UART) push(b byte) {
	if len(u.rx) >= u.depth() {
		u.overrun()
		return
	}
	u.rx = append(u.rx, b)
	if u.lostOE {
		u.lsrErr |= lsrOE
		u.lostOE = false
	}
}

// depth is how many bytes the receiver holds. Caller holds mu.
func (u *UART) depth() int {
	if u.fcr&fcrEnable != 0 {
		return uartFIFODepth
	}
	return 1
}

// charTime is how long one character takes on the line at the divisor
// latch's rate: a start bit, 5 to 8 data bits, the parity bit if enabled
// and 1, 1.5 or 2 stop bits. Caller holds mu.
func (u *UART) charTime() time.Duration {
	div := int64(u.dlm)<<8 | int64(u.dll)
	if div == 0 {
		// Undefined on the chip: taken as the fastest rate rather
		// than a line that carries a byte every few seconds.
		div = 1
	}
	halfBits := int64(2 * (1 + 5 + int(u.lcr&lcrWordLen)))
	if u.lcr&lcrParity != 0 {
		halfBits += 2
	}
	switch {
	case u.lcr&lcrStop2 == 0:
		halfBits += 2
	case u.lcr&lcrWordLen == 0:
		halfBits += 3
	default:
		halfBits += 4
	}
	return time.Duration(halfBits * div * int64(time.Second) / (2 * uartBaseRate))
}

// lineDue returns how many bytes may arrive at now, the line's carrying
// them at one a character time and a full receiver holding it back, and
// when the first of them began: the later of the last byte's arrival and
// as far back as the receiver's room reaches, for an idle line's bytes
// arrive no faster than it could have carried them. Caller holds mu.
func (u *UART) lineDue(now time.Time) (start time.Time, due int) {
	room := u.depth() - len(u.rx)
	if room <= 0 {
		return now, 0
	}
	ct := u.charTime()
	start = now.Add(-time.Duration(room) * ct)
	if u.lineAt.After(start) {
		start = u.lineAt
	}
	if now.Before(start) {
		return start, 0
	}
	return start, min(room, int(now.Sub(start)/ct))
}

// RXSpace reports how many bytes Offer takes now: those the line has
// carried since the last it delivered, as far as the receiver has room.
func (u *UART) RXSpace() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, due := u.lineDue(u.now())
	return due
}

// RXWait is RXSpace for a sender that sleeps while the UART takes
// nothing: it returns how many bytes Offer takes now and, when none, how
// long until the line carries the next, or a negative wait when the
// receiver is full, which only the guest's reading undoes. When none,
// room (unless nil) is called once the guest reads a byte from the full
// receiver or reprograms the receiver or the line, any of which may make
// room sooner; it replaces the room of an earlier call, and is called with
// the UART's lock held, so it must neither block nor call the UART.
func (u *UART) RXWait(room func()) (n int, wait time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	start, due := u.lineDue(now)
	u.room = nil
	if due > 0 {
		return due, 0
	}
	u.room = room
	if len(u.rx) >= u.depth() {
		return 0, -1
	}
	return 0, start.Add(u.charTime()).Sub(now)
}

// roomChanged calls RXWait's room, once. Caller holds mu.
func (u *UART) roomChanged() {
	if f := u.room; f != nil {
		u.room = nil
		f()
	}
}

// CharTime is how long the line takes to carry one character at the rate
// and framing the guest last programmed (115200/divisor baud; from reset,
// 9600 baud and 7 bits a character).
func (u *UART) CharTime() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.charTime()
}

// Read serves a guest read of a UART register.
func (u *UART) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = u.readReg(off + uint64(i))
	}
}

// Write serves a guest write of a UART register.
func (u *UART) Write(off uint64, data []byte) {
	for i, v := range data {
		u.writeReg(off+uint64(i), v)
	}
}

func (u *UART) readReg(reg uint64) uint8 {
	u.mu.Lock()
	defer u.mu.Unlock()
	defer u.update()
	dlab := u.lcr&lcrDLAB != 0
	switch reg {
	case uartRBR:
		if dlab {
			return u.dll
		}
		if len(u.rx) == 0 {
			return 0
		}
		full := len(u.rx) >= u.depth()
		if full {
			// A full receiver held the line back: the byte it
			// carried waits, as in the shift register, and the one
			// after it begins now.
			if held := u.now().Add(-u.charTime()); held.After(u.lineAt) {
				u.lineAt = held
			}
		}
		b := u.rx[0]
		u.rx = u.rx[1:]
		if len(u.rx) == 0 {
			u.rx = nil
		}
		if full {
			// Room where there was none; a read from a receiver with
			// room changes no byte's due time.
			u.roomChanged()
		}
		return b
	case uartIER:
		if dlab {
			return u.dlm
		}
		return u.ier
	case uartIIR:
		id := u.pending()
		if id == iirTHRE {
			// Reading IIR while THRE is the reported source clears it.
			u.thrIntr = false
		}
		if u.fcr&fcrEnable != 0 {
			id |= iirFIFOs
		}
		return id
	case uartLCR:
		return u.lcr
	case uartMCR:
		return u.mcr
	case uartLSR:
		v := uint8(lsrTHRE|lsrTEMT) | u.lsrErr
		if len(u.rx) > 0 {
			v |= lsrDR
		}
		u.lsrErr = 0
		return v
	case uartMSR:
		v := u.msrValue()
		u.msr &^= msrDCTS | msrDDSR | msrTERI | msrDDCD
		return v
	case uartSCR:
		return u.scr
	}
	return 0xFF
}

func (u *UART) writeReg(reg uint64, v uint8) {
	if reg == uartRBR && u.transmits() {
		// Out may wait (a console nobody reads): not under mu, which
		// the input pump needs to go on reading the console's keys,
		// Ctrl-A x among them. Only the vCPU writes THR, so the bytes
		// still leave in order. A failing console writer must not
		// stop the guest: the byte is lost as on a disconnected line.
		_, _ = u.out.Write([]byte{v})
		if u.OnOutput != nil {
			u.OnOutput(v)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	defer u.update()
	dlab := u.lcr&lcrDLAB != 0
	switch reg {
	case uartRBR:
		if dlab {
			u.dll = v
			u.roomChanged()
			return
		}
		if u.mcr&mcrLoop != 0 {
			u.push(v)
		}
		// The byte left at once: the holding register is empty again.
		u.thrIntr = true
	case uartIER:
		if dlab {
			u.dlm = v
			u.roomChanged()
			return
		}
		old := u.ier
		u.ier = v & ierWritable
		if u.ier&ierTHRE != 0 && old&ierTHRE == 0 {
			// Enabling THRE with an empty transmitter raises it at once.
			u.thrIntr = true
		}
	case uartIIR:
		u.fcr = v & fcrWritable
		if v&fcrClearRX != 0 {
			u.rx = nil
		}
		u.roomChanged()
	case uartLCR:
		u.lcr = v
		u.roomChanged()
	case uartMCR:
		u.mcr = v & mcrWritable
	case uartLSR, uartMSR:
		// Read-only on a 16550A; factory test writes are ignored.
	case uartSCR:
		u.scr = v
	}
}

// transmits reports whether a write of THR now sends the byte out: not
// the divisor latch, not looped back.
func (u *UART) transmits() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lcr&lcrDLAB == 0 && u.mcr&mcrLoop == 0
}

func (u *UART) msrValue() uint8 {
	if u.mcr&mcrLoop == 0 {
		return u.msr
	}
	// Loopback ties the modem outputs to the inputs.
	v := u.msr & 0x0F
	if u.mcr&mcrRTS != 0 {
		v |= msrCTS
	}
	if u.mcr&mcrDTR != 0 {
		v |= msrDSR
	}
	if u.mcr&mcrOUT1 != 0 {
		v |= msrRI
	}
	if u.mcr&mcrOUT2 != 0 {
		v |= msrDCD
	}
	return v
}

// pending returns the IIR identification of the highest-priority enabled
// interrupt, or iirNone.
func (u *UART) pending() uint8 {
	switch {
	case u.ier&ierRLS != 0 && u.lsrErr != 0:
		return iirRLS
	case u.ier&ierRDA != 0 && len(u.rx) > 0:
		return iirRDA
	case u.ier&ierTHRE != 0 && u.thrIntr:
		return iirTHRE
	case u.ier&ierMS != 0 && u.msr&0x0F != 0:
		return iirMS
	}
	return iirNone
}

// update drives the IRQ line to match the pending state. Caller holds mu.
func (u *UART) update() {
	high := u.pending() != iirNone
	if high != u.irqHigh {
		u.irqHigh = high
		u.irq.Set(high)
	}
}
