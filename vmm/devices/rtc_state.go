package devices

import "time"

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
// a machine's battery clock would after it was off.
func (r *RTC) Restore(s RTCState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index, r.ram, r.offset = s.Index&0x7F, s.RAM, s.Offset
	r.snap, r.snapAt = time.Time{}, time.Time{}
}
