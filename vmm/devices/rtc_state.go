package devices

import (
	"fmt"
	"time"
)

// RTCState is the CMOS clock's RAM, index register and the guest's offset
// from the host clock, for snapshots.
type RTCState struct {
	Index  uint8         // the index register: the CMOS byte port 0x71 reads and writes
	RAM    [128]byte     // the CMOS bytes; the clock's own are computed on each read
	Offset time.Duration // the guest's clock less the host's
	// Held is the time the guest is writing while register B's SET bit
	// is on (NetBSD's rtcput between its writes), which becomes the
	// clock's when SET goes off; zero while SET is off.
	Held RTCHeld
}

// RTCHeld is a calendar time by field, as the guest wrote them: a date
// may be half written (31 November until the month follows).
type RTCHeld struct {
	// Year (century included), Month, Day, Hour, Min, Sec and Nsec are
	// the fields in binary, whatever encoding the guest wrote them in.
	Year, Month, Day, Hour, Min, Sec, Nsec int
}

// State returns the clock's state.
func (r *RTC) State() RTCState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := RTCState{Index: r.index, RAM: r.ram, Offset: r.offset}
	if r.setMode() {
		h := r.held
		s.Held = RTCHeld{h.year, h.month, h.day, h.hour, h.min, h.sec, h.nsec}
	}
	return s
}

// Restore sets the clock's state. The time it shows stays the host's plus
// the guest's offset: a restored guest reads the time of its restore, as
// a machine's battery clock would after it was off. CMOS bytes no guest
// can write (register A's update-in-progress bit, registers C and D) and
// an index with the NMI mask bit (which the index register drops) are
// refused, naming the register, and change nothing.
func (r *RTC) Restore(s RTCState) error {
	if err := s.Check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index, r.ram, r.offset = s.Index, s.RAM, s.Offset
	h := s.Held
	r.held = rtcFields{h.Year, h.Month, h.Day, h.Hour, h.Min, h.Sec, h.Nsec}
	r.snap, r.snapAt = time.Time{}, time.Time{}
	return nil
}

// Check refuses what Restore refuses. It needs no clock: a restore calls
// it before it changes anything.
func (s RTCState) Check() error {
	switch {
	case s.Index&0x80 != 0:
		return fmt.Errorf("rtc: index %#x: the register keeps bits 0-6", s.Index)
	case s.RAM[rtcA]&0x80 != 0:
		return fmt.Errorf("rtc: register A %#x: update in progress, which the clock never shows", s.RAM[rtcA])
	case s.RAM[rtcC] != 0:
		return fmt.Errorf("rtc: register C %#x: interrupt flags of a clock that raises none", s.RAM[rtcC])
	case s.RAM[rtcD] != rtcDVRT:
		return fmt.Errorf("rtc: register D %#x: the clock's is always %#x (valid RAM and time)", s.RAM[rtcD], rtcDVRT)
	case s.RAM[rtcB]&rtcBSet == 0 && s.Held != RTCHeld{}:
		return fmt.Errorf("rtc: held time %+v with register B %#x: the clock holds a time only while SET is on", s.Held, s.RAM[rtcB])
	}
	// What decoding a register byte can give: 0-255 a field (BCD
	// garbage included), a year of up to 255 centuries.
	h := s.Held
	for _, f := range []struct {
		name    string
		v, most int
	}{
		{"year", h.Year, 255*100 + 255}, {"month", h.Month, 255}, {"day", h.Day, 255},
		{"hour", h.Hour, 255}, {"minute", h.Min, 255}, {"second", h.Sec, 255}, {"nanosecond", h.Nsec, 999_999_999},
	} {
		if f.v < 0 || f.v > f.most {
			return fmt.Errorf("rtc: held %s %d: no register write gives it", f.name, f.v)
		}
	}
	return nil
}
