package devices

import (
	"testing"
	"time"
)

func cmos(r *RTC, reg uint8) uint8 {
	wr(r, 0, reg)
	return rd(r, 1)
}

func TestRTCRegisters(t *testing.T) {
	now := time.Date(2026, 11, 26, 21, 7, 9, 0, time.UTC) // a Thursday
	r := NewRTC(func() time.Time { return now }, 128<<20)
	tests := []struct {
		reg  uint8
		want uint8
	}{
		{rtcSec, 0x09}, {rtcMin, 0x07}, {rtcHour, 0x21},
		{rtcWeekday, 0x05}, {rtcDay, 0x26}, {rtcMonth, 0x11}, {rtcYear, 0x26}, {rtcCentury, 0x20},
		{rtcA, 0x26}, {rtcB, 0x02}, {rtcD, 0x80}, {rtcDiag, 0x00},
		{0x17, 0xFF}, {0x18, 0xFF}, // 127 MiB above 1 MiB in KiB, capped at 0xFFFF
		{0x34, 0x00}, {0x35, 0x07}, // (128-16) MiB / 64 KiB = 0x700
	}
	for _, tt := range tests {
		if got := cmos(r, tt.reg); got != tt.want {
			t.Errorf("register %#x = %#x, want %#x", tt.reg, got, tt.want)
		}
	}
	if cmos(r, rtcA)&0x80 != 0 {
		t.Error("UIP must never be set")
	}
	if rd(r, 0) != 0xFF {
		t.Error("the index port is write-only")
	}
	// Bit 7 of the index is the NMI mask, not part of the index.
	wr(r, 0, 0x80|rtcMonth)
	if got := rd(r, 1); got != 0x11 {
		t.Errorf("month with NMI bit = %#x", got)
	}
}

func TestRTCFormatAndSet(t *testing.T) {
	now := time.Date(2026, 11, 26, 21, 7, 9, 0, time.UTC)
	r := NewRTC(func() time.Time { return now }, 64<<20)
	wr(r, 0, rtcB)
	wr(r, 1, rtcB24h|rtcBBinary)
	if got := cmos(r, rtcHour); got != 21 {
		t.Fatalf("binary hour = %d", got)
	}
	wr(r, 0, rtcB)
	wr(r, 1, 0) // 12-hour BCD
	if got := cmos(r, rtcHour); got != 0x89 {
		t.Fatalf("12-hour hour = %#x, want 0x89 (9 PM)", got)
	}
	wr(r, 0, rtcB)
	wr(r, 1, rtcB24h)
	wr(r, 0, rtcYear)
	wr(r, 1, 0x30) // the guest sets 2030
	if got := cmos(r, rtcYear); got != 0x30 {
		t.Fatalf("year after set = %#x", got)
	}
	if got := cmos(r, rtcMonth); got != 0x11 {
		t.Fatalf("setting the year moved the month: %#x", got)
	}
	now = now.Add(2 * time.Second)
	if got := cmos(r, rtcSec); got != 0x11 {
		t.Fatalf("clock must keep running after a set: sec %#x", got)
	}
	wr(r, 0, 0x40)
	wr(r, 1, 0xAB)
	if got := cmos(r, 0x40); got != 0xAB {
		t.Fatalf("CMOS RAM = %#x", got)
	}
}
