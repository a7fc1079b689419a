package devices

import "fmt"

// UARTState is a UART's registers and receive buffer, for snapshots.
type UARTState struct {
	RX                                   []byte
	IER, LCR, MCR, LSRErr, SCR, DLL, DLM uint8
	FCR, MSR                             uint8
	THRIntr, IRQHigh                     bool
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
// of the line is the snapshot's.
func (u *UART) Restore(s UARTState) error {
	if len(s.RX) > uartRXLimit {
		return fmt.Errorf("uart: receive buffer of %d bytes exceeds %d", len(s.RX), uartRXLimit)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rx = append(u.rx[:0], s.RX...)
	u.ier, u.lcr, u.mcr, u.lsrErr, u.scr = s.IER, s.LCR, s.MCR, s.LSRErr, s.SCR
	u.dll, u.dlm, u.fcr, u.msr, u.thrIntr = s.DLL, s.DLM, s.FCR, s.MSR, s.THRIntr
	u.irqHigh = s.IRQHigh
	u.irq.Set(s.IRQHigh)
	u.update()
	return nil
}
