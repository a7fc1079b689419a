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
		{0x15, 0x80}, {0x16, 0x02}, // 640 KiB of base memory, as a BIOS leaves it
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

// TestRTCSetBitHoldsFields writes the time the way NetBSD's rtcput does:
// register B's SET bit on, the ten time registers in index order, SET off.
// The fields must land together: applied one by one, day 31 set while the
// running clock is in a 30-day month rolls into the next month before the
// month register is written.
func TestRTCSetBitHoldsFields(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"day past the current month's end", time.Date(2026, 11, 26, 21, 7, 9, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)},
		{"29 February from a non-leap year", time.Date(2027, 2, 10, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 1, 2, 3, 0, time.UTC)},
		{"back to an earlier year", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 31, 12, 34, 56, 0, time.UTC)},
	}
	bcd := func(v int) uint8 { return uint8(v/10<<4 | v%10) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			r := NewRTC(func() time.Time { return now }, 64<<20)
			b := cmos(r, rtcB)
			wr(r, 0, rtcB)
			wr(r, 1, b|rtcBSet)
			w := tt.want
			regs := []uint8{bcd(w.Second()), 0, bcd(w.Minute()), 0, bcd(w.Hour()), 0,
				uint8(w.Weekday()) + 1, bcd(w.Day()), bcd(int(w.Month())), bcd(w.Year() % 100)}
			for i, v := range regs {
				wr(r, 0, uint8(i))
				wr(r, 1, v)
			}
			if got := cmos(r, rtcDay); got != bcd(w.Day()) {
				t.Errorf("day while SET = %#x, want %#x", got, bcd(w.Day()))
			}
			wr(r, 0, rtcB)
			wr(r, 1, cmos(r, rtcB)&^rtcBSet)
			wr(r, 0, rtcCentury)
			wr(r, 1, bcd(w.Year()/100))
			now = now.Add(time.Second)
			w = w.Add(time.Second)
			for _, f := range []struct {
				reg  uint8
				want int
			}{
				{rtcSec, w.Second()}, {rtcMin, w.Minute()}, {rtcHour, w.Hour()},
				{rtcDay, w.Day()}, {rtcMonth, int(w.Month())}, {rtcYear, w.Year() % 100}, {rtcCentury, w.Year() / 100},
			} {
				if got := cmos(r, f.reg); got != bcd(f.want) {
					t.Errorf("register %#x = %#x a second after the set, want %#x", f.reg, got, bcd(f.want))
				}
			}
		})
	}
}

// TestRTCChecksum checks what NetBSD's cmoscheck reads before it trusts the
// century byte: the sum of bytes 0x10-0x2D must equal the big-endian word at
// 0x2E.
func TestRTCChecksum(t *testing.T) {
	for _, mem := range []uint64{2 << 20, 64 << 20, 128 << 20, 3072 << 20} {
		r := NewRTC(nil, mem)
		sum := 0
		for i := uint8(0x10); i <= 0x2D; i++ {
			sum += int(cmos(r, i))
		}
		if got := int(cmos(r, 0x2E))<<8 | int(cmos(r, 0x2F)); got != sum {
			t.Errorf("%d MiB: checksum word %#x, bytes 0x10-0x2D sum to %#x", mem>>20, got, sum)
		}
	}
}

// TestRTCNoTornRead reads the clock as NetBSD's MC146818_GETTOD does
// (register A until UIP is clear, then the time registers one by one)
// across a minute boundary. The real chip promises 244 µs without an update
// once UIP reads clear, so the fields must all come from one instant.
func TestRTCNoTornRead(t *testing.T) {
	now := time.Date(2026, 11, 26, 21, 7, 59, 999_990_000, time.UTC)
	r := NewRTC(func() time.Time { return now }, 64<<20)
	if cmos(r, rtcA)&0x80 != 0 {
		t.Fatal("UIP set")
	}
	sec := cmos(r, rtcSec)
	now = now.Add(50 * time.Microsecond) // the minute rolls over between two reads
	min := cmos(r, rtcMin)
	if sec != 0x59 || min != 0x07 {
		t.Errorf("read 21:%02x:%02x, want 21:07:59 (one instant)", min, sec)
	}
	now = now.Add(time.Millisecond)
	if got := cmos(r, rtcMin); got != 0x08 {
		t.Errorf("minute a millisecond later = %#x, want 0x08: the clock must not stay frozen", got)
	}
	cmos(r, rtcA)
	if got := cmos(r, rtcSec); got != 0x00 {
		t.Errorf("second after a new register A read = %#x, want 0x00", got)
	}
}

// TestRTC12Hour: with register B's 24-hour bit clear, the MC146818 counts
// hours 1-12 with bit 7 for PM: midnight is 12 AM, noon 12 PM, 13:00 is
// 1 PM, in BCD and in binary; a write in that form sets the hour it
// names, read back in 24-hour BCD.
func TestRTC12Hour(t *testing.T) {
	const mode12BCD, mode12Binary = 0, rtcBBinary
	tests := []struct {
		name string
		mode uint8 // register B: 12-hour, BCD or binary
		hour int   // the 24-hour hour
		reg  uint8 // the hour register in that mode
	}{
		{"midnight BCD", mode12BCD, 0, 0x12},
		{"1 AM BCD", mode12BCD, 1, 0x01},
		{"11 AM BCD", mode12BCD, 11, 0x11},
		{"noon BCD", mode12BCD, 12, 0x92},
		{"1 PM BCD", mode12BCD, 13, 0x81},
		{"11 PM BCD", mode12BCD, 23, 0x91},
		{"midnight binary", mode12Binary, 0, 0x0C},
		{"11 AM binary", mode12Binary, 11, 0x0B},
		{"noon binary", mode12Binary, 12, 0x8C},
		{"1 PM binary", mode12Binary, 13, 0x81},
		{"11 PM binary", mode12Binary, 23, 0x8B},
	}
	bcd := func(v int) uint8 { return uint8(v/10<<4 | v%10) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 2, tt.hour, 30, 0, 0, time.UTC)
			r := NewRTC(func() time.Time { return now }, 64<<20)
			wr(r, 0, rtcB)
			wr(r, 1, tt.mode)
			if got := cmos(r, rtcHour); got != tt.reg {
				t.Errorf("hour %d reads %#x, want %#x", tt.hour, got, tt.reg)
			}

			// Write it from a clock at another hour: the hour must
			// come from the write alone.
			other := (tt.hour + 6) % 24
			now = time.Date(2026, 1, 2, other, 30, 0, 0, time.UTC)
			r = NewRTC(func() time.Time { return now }, 64<<20)
			wr(r, 0, rtcB)
			wr(r, 1, tt.mode)
			wr(r, 0, rtcHour)
			wr(r, 1, tt.reg)
			wr(r, 0, rtcB)
			wr(r, 1, rtcB24h)
			if got := cmos(r, rtcHour); got != bcd(tt.hour) {
				t.Errorf("a write of %#x in this mode reads back %#x in 24-hour BCD, want %#x", tt.reg, got, bcd(tt.hour))
			}
		})
	}
}
