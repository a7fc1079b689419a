package devices

import (
	"fmt"
	"time"
)

// UARTState is a UART's registers and receive buffer, for snapshots.
type UARTState struct {
	// RX is the bytes received and not yet read: the receive FIFO's, at
	// most 16 (one with the FIFO off); a snapshot from before the
	// receiver was paced holds up to 4096, all of them there to read.
	// Bytes the line has not carried yet are the host's (the input's),
	// not the machine's: a snapshot has none of them.
	RX []byte
	// IER, LCR, MCR, SCR, FCR and MSR are the registers of those names,
	// DLL and DLM the divisor latch's low and high bytes, LSRErr the
	// line status error bits (overrun only).
	IER, LCR, MCR, LSRErr, SCR, DLL, DLM uint8
	FCR, MSR                             uint8
	// THRIntr says a transmitter-empty interrupt is pending; IRQHigh
	// that the IRQ line is up.
	THRIntr, IRQHigh bool
}

// State returns the UART's state.
func (u *UART) State() UARTState {
	u.mu.Lock()
	defer u.mu.Unlock()
	return UARTState{RX: append([]byte(nil), u.rx...), IER: u.ier, LCR: u.lcr, MCR: u.mcr,
		LSRErr: u.lsrErr, SCR: u.scr, DLL: u.dll, DLM: u.dlm, FCR: u.fcr, MSR: u.msr,
		THRIntr: u.thrIntr, IRQHigh: u.irqHigh}
}

// Restore sets the UART's state and drives its line to match it; restore
// the interrupt controller after it, so that the controller's own record
// of the line is the snapshot's. A state no guest could have brought the
// UART to is refused, naming the register, and changes nothing.
func (u *UART) Restore(s UARTState) error {
	if err := s.Check(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rx = append(u.rx[:0], s.RX...)
	u.ier, u.lcr, u.mcr, u.lsrErr, u.scr = s.IER, s.LCR, s.MCR, s.LSRErr, s.SCR
	u.dll, u.dlm, u.fcr, u.msr, u.thrIntr = s.DLL, s.DLM, s.FCR, s.MSR, s.THRIntr
	u.irqHigh = s.IRQHigh
	// The line is idle from here: no host time is machine state.
	u.lineAt, u.lostOE = time.Time{}, false
	u.irq.Set(s.IRQHigh)
	u.update()
	return nil
}

// uartMSRValue is the modem status this UART always shows: carrier, data set
// ready and clear to send up, no change since the last read.
const uartMSRValue = msrDCD | msrDSR | msrCTS

// Check refuses, as Restore does, a receive buffer over the limit, register bits a
// guest's writes mask off (IER, MCR, FCR), line status the UART never
// raises (it only overruns), modem lines it never changes, and a line
// level other than the one its registers call for (it follows them after
// every access).
// It needs no UART: a restore calls it before it changes anything.
func (s UARTState) Check() error {
	if len(s.RX) > uartRXLimit {
		return fmt.Errorf("uart: receive buffer of %d bytes exceeds %d", len(s.RX), uartRXLimit)
	}
	for _, r := range []struct {
		name     string
		v, keeps uint8
	}{{"IER", s.IER, ierWritable}, {"MCR", s.MCR, mcrWritable}, {"FCR", s.FCR, fcrWritable}, {"LSR error bits", s.LSRErr, lsrOE}} {
		if r.v&^r.keeps != 0 {
			return fmt.Errorf("uart: %s %#x: only bits %#x can be set", r.name, r.v, r.keeps)
		}
	}
	if s.MSR != uartMSRValue {
		return fmt.Errorf("uart: MSR %#x: this UART's modem status is always %#x", s.MSR, uartMSRValue)
	}
	probe := UART{rx: s.RX, ier: s.IER, lsrErr: s.LSRErr, thrIntr: s.THRIntr, msr: s.MSR}
	if id := probe.pending(); (id != iirNone) != s.IRQHigh {
		return fmt.Errorf("uart: IRQHigh %v, but the registers call for %v (interrupt identification %#x)", s.IRQHigh, !s.IRQHigh, id)
	}
	return nil
}
