package devices

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// FuzzUARTRestore restores fuzzed state into a UART, as a machine
// restores a snapshot's, and checks that a refused state changes nothing
// and an accepted one reads back as restored with its line where its
// registers call for; then the guest drives it (ops: register, value,
// read or write per three bytes), the line following the registers after
// every access, to a state Restore accepts again.
func FuzzUARTRestore(f *testing.F) {
	// testdata holds the demo guest's UART as its snapshot has it (`make
	// bench` takes one); here it takes input, a byte waits with its
	// interrupt enabled, and the receive buffer is full and overrun.
	f.Add([]byte{}, uint8(0), uint8(3), uint8(3), uint8(0), uint8(0), uint8(1), uint8(0), uint8(0xC1), uint8(0xB0), true, false, []byte{5, 0, 0x80, 0, 'x', 0})
	f.Add([]byte("x"), uint8(1), uint8(3), uint8(0x0B), uint8(0), uint8(0), uint8(1), uint8(0), uint8(0xC1), uint8(0xB0), false, true, []byte{2, 0, 0x80, 0, 0, 0x80, 2, 0, 0x80})
	f.Add(bytes.Repeat([]byte("y"), uartRXLimit), uint8(5), uint8(3), uint8(0x0B), uint8(lsrOE), uint8(0), uint8(1), uint8(0), uint8(0xC1), uint8(0xB0), false, true, []byte{5, 0, 0x80, 2, 0x02, 0})
	f.Fuzz(func(t *testing.T, rx []byte, ier, lcr, mcr, lsrErr, scr, dll, dlm, fcr, msr uint8, thr, irqHigh bool, ops []byte) {
		var irq recIRQ
		u := NewUART(nil, &irq)
		fresh := u.State()
		s := UARTState{RX: rx, IER: ier, LCR: lcr, MCR: mcr, LSRErr: lsrErr, SCR: scr, DLL: dll, DLM: dlm,
			FCR: fcr, MSR: msr, THRIntr: thr, IRQHigh: irqHigh}
		if err := u.Restore(s); err != nil {
			if got := u.State(); !uartStatesEqual(got, fresh) || len(irq.levels) != 0 {
				t.Fatalf("Restore refused %+v (%v) but changed the UART: %+v", s, err, got)
			}
			return
		}
		if got := u.State(); !uartStatesEqual(got, s) {
			t.Fatalf("restored %+v, reads back %+v", s, got)
		}
		lineFollows := func(when string) {
			u.mu.Lock()
			want := u.pending() != iirNone
			u.mu.Unlock()
			if irq.high() != want {
				t.Fatalf("%s: line high=%v, the registers call for %v", when, irq.high(), want)
			}
		}
		lineFollows("restored")
		for n := 0; len(ops) >= 3 && n < 64; n++ {
			reg, v, w := uint64(ops[0]%8), ops[1], ops[2]
			ops = ops[3:]
			if w&0x80 != 0 {
				rd(u, reg)
			} else {
				wr(u, reg, v)
			}
			if w&0x40 != 0 {
				u.Receive([]byte{v})
			}
			lineFollows("driven")
		}
		if err := NewUART(nil, nil).Restore(u.State()); err != nil {
			t.Fatalf("the UART reached %+v, which Restore refuses: %v", u.State(), err)
		}
	})
}

func uartStatesEqual(a, b UARTState) bool {
	return bytes.Equal(a.RX, b.RX) && reflect.DeepEqual(a, UARTState{RX: a.RX, IER: b.IER, LCR: b.LCR, MCR: b.MCR,
		LSRErr: b.LSRErr, SCR: b.SCR, DLL: b.DLL, DLM: b.DLM, FCR: b.FCR, MSR: b.MSR, THRIntr: b.THRIntr, IRQHigh: b.IRQHigh})
}

// FuzzRTCRestore restores fuzzed state into a CMOS clock (its RAM this
// machine's XOR the fuzzer's bytes, so most inputs stay close to a valid
// one), checks that a refused state changes nothing and an accepted one
// reads back as restored, then lets the guest read and write it (ops:
// port, value, read or write per three bytes) to a state Restore accepts
// again.
func FuzzRTCRestore(f *testing.F) {
	// testdata holds the demo guest's clock as its snapshot has it (the
	// clock as made, which the demo never sets); here the guest sets it,
	// the offset is at its extremes, and register B has SET on (the guest
	// between rtcput's writes).
	f.Add(uint8(0), []byte{}, int64(0), []byte{0, rtcB, 0, 1, 0, 0, 0, rtcSec, 0, 1, 0, 0x80})
	f.Add(uint8(rtcYear), []byte{}, int64(1<<63-1), []byte{1, 0, 0x80, 0, rtcCentury, 0, 1, 0x99, 0})
	f.Add(uint8(rtcHour), []byte{}, int64(-1<<63), []byte{1, 0x23, 0, 1, 0, 0x80})
	f.Add(uint8(rtcB), make([]byte, rtcB+1), int64(0), []byte{1, rtcB24h, 0, 0, rtcDay, 0, 1, 0x31, 0})
	f.Fuzz(func(t *testing.T, index uint8, ram []byte, offset int64, ops []byte) {
		now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		r := NewRTC(func() time.Time { return now }, 128<<20)
		fresh := r.State()
		s := RTCState{Index: index, RAM: fresh.RAM, Offset: time.Duration(offset)}
		if len(ram) > len(s.RAM) {
			ram = ram[:len(s.RAM)]
		}
		for i, b := range ram {
			s.RAM[i] ^= b
		}
		if err := r.Restore(s); err != nil {
			if got := r.State(); got != fresh {
				t.Fatalf("Restore refused %+v (%v) but changed the clock: %+v", s, err, got)
			}
			return
		}
		if got := r.State(); got != s {
			t.Fatalf("restored %+v, reads back %+v", s, got)
		}
		for n := 0; len(ops) >= 3 && n < 64; n++ {
			port, v, w := uint64(ops[0]&1), ops[1], ops[2]
			ops = ops[3:]
			now = now.Add(time.Duration(w&0x3F) * 100 * time.Microsecond)
			if w&0x80 != 0 {
				rd(r, port)
			} else {
				wr(r, port, v)
			}
		}
		if err := NewRTC(nil, 0).Restore(r.State()); err != nil {
			t.Fatalf("the clock reached %+v, which Restore refuses: %v", r.State(), err)
		}
	})
}
