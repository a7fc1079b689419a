package devices

import (
	"fmt"
	"time"
)

// RTCState is the CMOS clock's RAM, index register and the guest's offset
// from the host clock, for snapshots.
type RTCState struct {
	Index  uint8
	RAM    [128]byte
	Offset time.Duration
}

// State returns the clock's state.
func (r *RTC) State() RTCState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RTCState{Index: r.index, RAM: r.ram, Offset: r.offset}
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
	}
	return nil
}
