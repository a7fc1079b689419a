package devices

import (
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
	b.Restore(a.State())
	for _, reg := range []uint8{0x40, 0x17, 0x04, rtcB} {
		wr(a, 0, reg)
		wr(b, 0, reg)
		if got, want := rd(b, 1), rd(a, 1); got != want {
			t.Errorf("CMOS %#x: restored %#x, original %#x", reg, got, want)
		}
	}
}
