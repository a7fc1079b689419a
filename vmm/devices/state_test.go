package devices

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestUARTStateRoundTrip: a UART restored from another's state reads the
// same registers, holds the same received bytes and drives its line as
// the first did.
func TestUARTStateRoundTrip(t *testing.T) {
	var irq1 recIRQ
	a := NewUART(nil, &irq1)
	wr(a, uartLCR, 0x83)
	wr(a, uartRBR, 0x01) // divisor 1
	wr(a, uartLCR, 0x03)
	wr(a, uartMCR, 0x0B)
	wr(a, uartSCR, 0x5A)
	wr(a, uartIER, 0x01) // received data available
	wr(a, uartIIR, fcrEnable)
	a.Receive([]byte("hi"))
	if !irq1.high() {
		t.Fatal("setup: the line is not high with data and IER RDA")
	}
	var irq2 recIRQ
	b := NewUART(nil, &irq2)
	if err := b.Restore(a.State()); err != nil {
		t.Fatal(err)
	}
	if !irq2.high() {
		t.Fatalf("restored line levels %v, want high", irq2.levels)
	}
	for _, reg := range []uint64{uartLCR, uartMCR, uartSCR, uartIER, uartLSR, uartMSR} {
		if got, want := rd(b, reg), rd(a, reg); got != want {
			t.Errorf("register %d: restored %#x, original %#x", reg, got, want)
		}
	}
	if got := string([]byte{rd(b, uartRBR), rd(b, uartRBR)}); got != "hi" {
		t.Errorf("restored receive buffer reads %q", got)
	}
	if irq2.high() {
		t.Error("line still high after the restored buffer was read")
	}
	if err := b.Restore(UARTState{RX: make([]byte, uartRXLimit+1)}); err == nil {
		t.Error("Restore took a receive buffer over the limit")
	}
}

// TestRTCStateRoundTrip: the restored clock has the same CMOS bytes and
// index, and the guest's offset from the host clock.
func TestRTCStateRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := NewRTC(clock, 64<<20)
	wr(a, 0, 0x40)
	wr(a, 1, 0x99) // a CMOS byte the guest keeps
	wr(a, 0, rtcB)
	wr(a, 1, rd(a, 1)|rtcBSet)
	wr(a, 0, 0x04) // hours
	wr(a, 1, 0x13)
	wr(a, 0, rtcB)
	wr(a, 1, rd(a, 1)&^rtcBSet) // the guest set its clock 3 hours ahead
	b := NewRTC(clock, 0)
	if err := b.Restore(a.State()); err != nil {
		t.Fatal(err)
	}
	for _, reg := range []uint8{0x40, 0x17, 0x04, rtcB} {
		wr(a, 0, reg)
		wr(b, 0, reg)
		if got, want := rd(b, 1), rd(a, 1); got != want {
			t.Errorf("CMOS %#x: restored %#x, original %#x", reg, got, want)
		}
	}
}

// TestUARTRestoreRefusesUnreachableState: Restore refuses, naming the
// register and its value, what no guest could have brought the UART to:
// bits its writes mask off, status it never raises, modem lines that
// never change, and a line level its registers do not call for. A refused
// Restore changes nothing.
func TestUARTRestoreRefusesUnreachableState(t *testing.T) {
	a := NewUART(nil, nil)
	wr(a, uartIER, ierRDA)
	a.Receive([]byte("x"))
	tests := []struct {
		name string
		edit func(s *UARTState)
		want string
	}{
		{"IER", func(s *UARTState) { s.IER |= 0x10 }, "IER 0x11"},
		{"MCR", func(s *UARTState) { s.MCR = 0x20 }, "MCR 0x20"},
		{"FCR", func(s *UARTState) { s.FCR = 0x02 }, "FCR 0x2"},
		{"LSR error", func(s *UARTState) { s.LSRErr = 0x08 }, "LSR error bits 0x8"},
		{"MSR", func(s *UARTState) { s.MSR = 0x30 }, "MSR 0x30"},
		{"line low with data pending", func(s *UARTState) { s.IRQHigh = false }, "IRQHigh false"},
		{"line high with nothing pending", func(s *UARTState) { s.RX, s.IRQHigh = nil, true }, "IRQHigh true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NewUART(nil, nil).Restore(a.State()); err != nil {
				t.Fatalf("the unedited state: %v", err)
			}
			s := a.State()
			tt.edit(&s)
			var irq recIRQ
			b := NewUART(nil, &irq)
			fresh := b.State()
			err := b.Restore(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
			if got := b.State(); !reflect.DeepEqual(got, fresh) || len(irq.levels) != 0 {
				t.Fatalf("refused Restore changed the UART: %+v, line %v", got, irq.levels)
			}
		})
	}
}

// TestRTCRestoreRefusesUnreachableState: Restore refuses CMOS bytes no
// guest can write (register A's update-in-progress bit, registers C and
// D) and an index with the NMI mask bit, which the index register drops.
func TestRTCRestoreRefusesUnreachableState(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) }
	a := NewRTC(now, 64<<20)
	tests := []struct {
		name string
		edit func(s *RTCState)
		want string
	}{
		{"update in progress", func(s *RTCState) { s.RAM[rtcA] |= 0x80 }, "register A 0xa6"},
		{"register C", func(s *RTCState) { s.RAM[rtcC] = 0x10 }, "register C 0x10"},
		{"register D", func(s *RTCState) { s.RAM[rtcD] = 0 }, "register D 0x0"},
		{"index", func(s *RTCState) { s.Index = 0x8B }, "index 0x8b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NewRTC(now, 0).Restore(a.State()); err != nil {
				t.Fatalf("the unedited state: %v", err)
			}
			s := a.State()
			tt.edit(&s)
			b := NewRTC(now, 0)
			fresh := b.State()
			err := b.Restore(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error mentioning %q", err, tt.want)
			}
			if got := b.State(); got != fresh {
				t.Fatalf("refused Restore changed the clock: %+v", got)
			}
		})
	}
}

// TestRTCStateMidSet: a snapshot taken while the guest sets the clock
// (register B's SET on, some fields written) keeps the fields written so
// far: after the restore the guest writes the rest, clears SET, and the
// clock shows what it wrote. Before, the restored clock held nothing and
// landed in year 0 when SET went off.
func TestRTCStateMidSet(t *testing.T) {
	now := time.Date(2026, 11, 26, 21, 7, 9, 0, time.UTC)
	clock := func() time.Time { return now }
	a := NewRTC(clock, 64<<20)
	wr(a, 0, rtcB)
	wr(a, 1, cmos(a, rtcB)|rtcBSet)
	for _, w := range []struct{ reg, v uint8 }{{rtcSec, 0x58}, {rtcMin, 0x59}, {rtcHour, 0x23}, {rtcDay, 0x31}, {rtcYear, 0x30}} {
		wr(a, 0, w.reg)
		wr(a, 1, w.v) // 31 November 2030 so far
	}
	b := NewRTC(clock, 0)
	if err := b.Restore(a.State()); err != nil {
		t.Fatal(err)
	}
	wr(b, 0, rtcMonth)
	wr(b, 1, 0x12)
	wr(b, 0, rtcB)
	wr(b, 1, cmos(b, rtcB)&^rtcBSet)
	for _, f := range []struct{ reg, want uint8 }{
		{rtcSec, 0x58}, {rtcMin, 0x59}, {rtcHour, 0x23}, {rtcDay, 0x31}, {rtcMonth, 0x12}, {rtcYear, 0x30}, {rtcCentury, 0x20},
	} {
		if got := cmos(b, f.reg); got != f.want {
			t.Errorf("register %#x = %#x after the restored set, want %#x", f.reg, got, f.want)
		}
	}
	// A held time with SET off is no state a guest can reach.
	s := a.State()
	s.RAM[rtcB] &^= rtcBSet
	if err := NewRTC(clock, 0).Restore(s); err == nil || !strings.Contains(err.Error(), "held time") {
		t.Errorf("Restore of a held time with SET off = %v, want a refusal", err)
	}
}

// TestRTCOffsetSaturates: a guest setting a year the offset cannot reach
// from the host's clock (more than 292 years away) gets the farthest
// time, not a clock wrapped into the past.
func TestRTCOffsetSaturates(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := NewRTC(func() time.Time { return now }, 64<<20)
	if err := r.Restore(RTCState{RAM: r.State().RAM, Offset: time.Duration(1<<63 - 1)}); err != nil {
		t.Fatal(err)
	}
	wr(r, 0, rtcCentury)
	wr(r, 1, 0x99) // year 99xx
	if c := cmos(r, rtcCentury); c < 0x23 {
		t.Errorf("century %#x after setting 99: the offset wrapped into the past", c)
	}
}
