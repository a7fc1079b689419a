package devices

import (
	"sync"
	"time"
)

// MC146818 register indices.
const (
	rtcSec     = 0x00
	rtcMin     = 0x02
	rtcHour    = 0x04
	rtcWeekday = 0x06
	rtcDay     = 0x07
	rtcMonth   = 0x08
	rtcYear    = 0x09
	rtcA       = 0x0A
	rtcB       = 0x0B
	rtcC       = 0x0C
	rtcD       = 0x0D
	rtcDiag    = 0x0E
	rtcCentury = 0x32

	rtcBSet    = 0x80
	rtcBBinary = 0x04
	rtcB24h    = 0x02
	rtcDVRT    = 0x80
)

// RTC is the MC146818 CMOS clock at ports 0x70 (index) and 0x71 (data). KVM
// does not emulate it, and NetBSD's inittodr spins on the update-in-progress
// bit when the ports read all ones. The clock runs from the host's time plus
// whatever offset the guest sets; it reports no update in progress, valid
// RAM and time (register D), and a clean BIOS diagnostic (register 0x0E). It
// raises no interrupts. The data format follows register B (BCD and 24-hour
// as NetBSD programs it). While register B's SET bit is on, the time
// registers hold what the guest writes and the new time takes effect as a
// whole when SET goes off, as NetBSD's rtcput expects.
type RTC struct {
	mu     sync.Mutex
	index  uint8
	ram    [128]byte
	offset time.Duration
	now    func() time.Time
	// held is the time being written while SET is on: fields, not a
	// time.Time, because a half-written date (31 November) must survive
	// until the month is written.
	held rtcFields
	// snap is the time register A last showed "no update in progress",
	// taken at host time snapAt. The real chip does not update for
	// 244 µs after that, so time registers read within that window all
	// show snap and a reader never sees a minute roll between two fields.
	snap, snapAt time.Time
}

// updateGuard is how long after register A reads "no update in
// progress" the MC146818 guarantees that no update starts.
const updateGuard = 244 * time.Microsecond

// rtcFields is a calendar time by field, in binary.
type rtcFields struct {
	year, month, day, hour, min, sec, nsec int
}

func fieldsOf(t time.Time) rtcFields {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return rtcFields{y, int(mo), d, h, mi, s, t.Nanosecond()}
}

func (f rtcFields) time() time.Time {
	return time.Date(f.year, time.Month(f.month), f.day, f.hour, f.min, f.sec, f.nsec, time.UTC)
}

// NewRTC returns a CMOS clock; now is the host clock (time.Now when nil).
// memBytes fills the BIOS memory-size bytes firmware would leave in CMOS.
func NewRTC(now func() time.Time, memBytes uint64) *RTC {
	if now == nil {
		now = time.Now
	}
	r := &RTC{now: now}
	r.ram[rtcA] = 0x26 // 32.768 kHz time base, 1024 Hz rate
	r.ram[rtcB] = rtcB24h
	r.ram[rtcD] = rtcDVRT
	// Base memory in KiB (0x15/0x16): all below the VGA window, 640 KiB,
	// as the BIOS data area and the boot protocols report it.
	baseKiB := uint16(0xA0000 >> 10)
	r.ram[0x15], r.ram[0x16] = uint8(baseKiB), uint8(baseKiB>>8)
	// Extended memory above 1 MiB in KiB (0x17/0x18 and 0x30/0x31, capped
	// at 0xFFFF) and above 16 MiB in 64 KiB units (0x34/0x35).
	ext := uint64(0)
	if memBytes > 1<<20 {
		ext = (memBytes - 1<<20) >> 10
	}
	ext = min(ext, 0xFFFF)
	r.ram[0x17], r.ram[0x18] = uint8(ext), uint8(ext>>8)
	r.ram[0x30], r.ram[0x31] = uint8(ext), uint8(ext>>8)
	high := uint64(0)
	if memBytes > 16<<20 {
		high = min((memBytes-16<<20)>>16, 0xFFFF)
	}
	r.ram[0x34], r.ram[0x35] = uint8(high), uint8(high>>8)
	// NetBSD trusts the century byte (0x32) only when this checksum of
	// bytes 0x10-0x2D matches, as a BIOS leaves it.
	sum := 0
	for _, b := range r.ram[0x10:0x2E] {
		sum += int(b)
	}
	r.ram[0x2E], r.ram[0x2F] = uint8(sum>>8), uint8(sum)
	return r
}

// Read serves port 0x70 (offset 0) and 0x71 (offset 1).
func (r *RTC) Read(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		switch off + uint64(i) {
		case 0:
			data[i] = 0xFF // the index register is write-only
		case 1:
			data[i] = r.readReg(r.index)
		default:
			data[i] = 0xFF
		}
	}
}

// Write serves port 0x70 (offset 0) and 0x71 (offset 1).
func (r *RTC) Write(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range data {
		switch off + uint64(i) {
		case 0:
			r.index = v & 0x7F // bit 7 masks NMI
		case 1:
			r.writeReg(r.index, v)
		}
	}
}

func (r *RTC) guestTime() time.Time { return r.now().Add(r.offset).UTC() }

// setMode reports whether register B's SET bit holds the clock.
func (r *RTC) setMode() bool { return r.ram[rtcB]&rtcBSet != 0 }

// clock returns the time the time registers show: the held fields while
// SET is on, the snapshot just after a register A read, the running clock
// otherwise.
func (r *RTC) clock() time.Time {
	if r.setMode() {
		return r.held.time()
	}
	if !r.snapAt.IsZero() {
		if d := r.now().Sub(r.snapAt); d >= 0 && d < updateGuard {
			return r.snap
		}
	}
	return r.guestTime()
}

func (r *RTC) encode(v int) uint8 {
	if r.ram[rtcB]&rtcBBinary != 0 {
		return uint8(v)
	}
	return uint8(v/10<<4 | v%10)
}

func (r *RTC) decode(v uint8) int {
	if r.ram[rtcB]&rtcBBinary != 0 {
		return int(v)
	}
	return int(v>>4)*10 + int(v&0x0F)
}

func (r *RTC) encodeHour(h int) uint8 {
	if r.ram[rtcB]&rtcB24h != 0 {
		return r.encode(h)
	}
	pm := uint8(0)
	if h >= 12 {
		pm = 0x80
	}
	h %= 12
	if h == 0 {
		h = 12
	}
	return r.encode(h) | pm
}

func (r *RTC) decodeHour(v uint8) int {
	if r.ram[rtcB]&rtcB24h != 0 {
		return r.decode(v)
	}
	h := r.decode(v&0x7F) % 12
	if v&0x80 != 0 {
		h += 12
	}
	return h
}

func (r *RTC) readReg(reg uint8) uint8 {
	t := r.clock()
	if r.setMode() {
		switch reg {
		case rtcDay:
			return r.encode(r.held.day)
		case rtcMonth:
			return r.encode(r.held.month)
		}
	}
	switch reg {
	case rtcSec:
		return r.encode(t.Second())
	case rtcMin:
		return r.encode(t.Minute())
	case rtcHour:
		return r.encodeHour(t.Hour())
	case rtcWeekday:
		return r.encode(int(t.Weekday()) + 1)
	case rtcDay:
		return r.encode(t.Day())
	case rtcMonth:
		return r.encode(int(t.Month()))
	case rtcYear:
		return r.encode(t.Year() % 100)
	case rtcCentury:
		return r.encode(t.Year() / 100)
	case rtcA:
		r.snapAt = r.now()
		r.snap = r.snapAt.Add(r.offset).UTC()
		return r.ram[rtcA] &^ 0x80 // never "update in progress"
	case rtcC:
		v := r.ram[rtcC]
		r.ram[rtcC] = 0 // reading C acknowledges interrupt flags
		return v
	case rtcD:
		return rtcDVRT
	}
	return r.ram[reg&0x7F]
}

func (r *RTC) writeReg(reg uint8, v uint8) {
	r.snapAt = time.Time{} // a set moves the clock: no stale snapshot
	switch reg {
	case rtcSec, rtcMin, rtcHour, rtcDay, rtcMonth, rtcYear, rtcCentury:
		r.setField(reg, v)
	case rtcA:
		r.ram[rtcA] = v &^ 0x80
	case rtcB:
		was := r.setMode()
		if v&rtcBSet != 0 && !was {
			r.held = fieldsOf(r.guestTime())
		}
		r.ram[rtcB] = v
		if was && !r.setMode() {
			r.offset = r.held.time().Sub(r.now())
		}
	case rtcC, rtcD:
		// Read-only status registers.
	default:
		r.ram[reg&0x7F] = v
	}
}

// setField makes field reg read v. While SET is on it changes the held
// fields only; otherwise it moves the running clock at once, keeping the
// other fields.
func (r *RTC) setField(reg uint8, v uint8) {
	f := r.held
	if !r.setMode() {
		f = fieldsOf(r.guestTime())
	}
	switch reg {
	case rtcSec:
		f.sec = r.decode(v)
	case rtcMin:
		f.min = r.decode(v)
	case rtcHour:
		f.hour = r.decodeHour(v)
	case rtcDay:
		f.day = r.decode(v)
	case rtcMonth:
		f.month = r.decode(v)
	case rtcYear:
		// The register holds the year of the century: a value past 99
		// (BCD garbage, or binary up to 255) must not carry into the
		// century, or writes of it would add up to any year, past what
		// a snapshot's check lets a clock hold.
		f.year = f.year/100*100 + r.decode(v)%100
	case rtcCentury:
		f.year = r.decode(v)*100 + f.year%100
	}
	if r.setMode() {
		r.held = f
		return
	}
	// From the host clock, not added to the old offset: a guest setting
	// far-apart times must not make it overflow (Sub saturates).
	r.offset = f.time().Sub(r.now())
}
