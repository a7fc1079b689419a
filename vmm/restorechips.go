package vmm

import (
	"encoding/binary"
	"fmt"
)

// What of KVM's interrupt controllers and PIT a guest can reach. KVM's
// KVM_SET_IRQCHIP and KVM_SET_PIT2 take any bytes, so a restore checks
// these itself (arch/x86/kvm/i8259.c, ioapic.c, i8254.c).
const (
	// ioapicBase is where KVM places its I/O APIC; a guest cannot move
	// it.
	ioapicBase = 0xFEC00000
	// ioapicPins is KVM_IOAPIC_NUM_PINS: the redirection entries, and
	// the bits of irr an interrupt line can set.
	ioapicPins = 24
	// Redirection entry bits: remote IRR is set only for a
	// level-triggered entry, and cleared when a write makes it edge.
	redirRemoteIRR = 1 << 14
	redirLevel     = 1 << 15
	// pitHPETLegacy is KVM_PIT_FLAGS_HPET_LEGACY, which only the VMM
	// sets (ours never does); pitSpeakerDataOn, the speaker port's data
	// bit, a guest does.
	pitHPETLegacy    = 1
	pitSpeakerDataOn = 2
)

// picELCRMask is the ELCR bits each 8259's KVM lets a guest set (the
// master's timer, keyboard and cascade lines, the slave's 8 and 13,
// stay edge-triggered); a kvm_pic_state carries it as state.
var picELCRMask = [2]uint8{0xF8, 0xDE}

// checkIRQChip refuses interrupt controller chip (0, 1: the 8259s; 2:
// the I/O APIC; a struct kvm_irqchip of sizeIRQChip bytes) holding what
// no guest can write there.
func checkIRQChip(chip int, buf []byte) error {
	le := binary.LittleEndian
	s := buf[8:] // the chip's state, after chip_id and pad
	if chip < 2 {
		name := [2]string{"master 8259", "slave 8259"}[chip]
		// struct kvm_pic_state, a byte each.
		const (
			priorityAdd = 4
			irqBase     = 5
			initState   = 9
			elcr        = 14
			elcrMask    = 15
		)
		if s[priorityAdd] > 7 {
			return fmt.Errorf("interrupt controller %d (%s): priority_add %d, past the 8 lines", chip, name, s[priorityAdd])
		}
		if s[irqBase]&7 != 0 {
			return fmt.Errorf("interrupt controller %d (%s): irq_base %#x, whose low 3 bits ICW2 never sets", chip, name, s[irqBase])
		}
		if s[initState] > 3 {
			return fmt.Errorf("interrupt controller %d (%s): init_state %d, past the 3 initialization words", chip, name, s[initState])
		}
		for _, f := range []struct {
			off  int
			name string
		}{{6, "read_reg_select"}, {7, "poll"}, {8, "special_mask"}, {10, "auto_eoi"},
			{11, "rotate_on_auto_eoi"}, {12, "special_fully_nested_mode"}, {13, "init4"}} {
			if s[f.off] > 1 {
				return fmt.Errorf("interrupt controller %d (%s): %s %d, a flag (0 or 1)", chip, name, f.name, s[f.off])
			}
		}
		if s[elcrMask] != picELCRMask[chip] {
			return fmt.Errorf("interrupt controller %d (%s): elcr_mask %#x, KVM's is %#x", chip, name, s[elcrMask], picELCRMask[chip])
		}
		if s[elcr]&^picELCRMask[chip] != 0 {
			return fmt.Errorf("interrupt controller %d (%s): elcr %#x sets bits outside %#x", chip, name, s[elcr], picELCRMask[chip])
		}
		return nil
	}
	// struct kvm_ioapic_state: base_address (u64), ioregsel, id, irr,
	// pad (u32), then the redirection entries (u64 each).
	if base := le.Uint64(s); base != ioapicBase {
		return fmt.Errorf("interrupt controller 2 (I/O APIC): base %#x, where no guest can move KVM's (%#x)", base, uint64(ioapicBase))
	}
	if sel := le.Uint32(s[8:]); sel > 0xFF {
		return fmt.Errorf("interrupt controller 2 (I/O APIC): register select %#x, an 8-bit register", sel)
	}
	if id := le.Uint32(s[12:]); id > 0xF {
		return fmt.Errorf("interrupt controller 2 (I/O APIC): ID %#x, a 4-bit field", id)
	}
	if irr := le.Uint32(s[16:]); irr>>ioapicPins != 0 {
		return fmt.Errorf("interrupt controller 2 (I/O APIC): irr %#x has bits past its %d pins", irr, ioapicPins)
	}
	for pin := range ioapicPins {
		if e := le.Uint64(s[24+8*pin:]); e&redirRemoteIRR != 0 && e&redirLevel == 0 {
			return fmt.Errorf("interrupt controller 2 (I/O APIC): redirection entry %d %#x: remote IRR on an edge-triggered entry", pin, e)
		}
	}
	return nil
}

// checkPIT refuses a struct kvm_pit_state2 (sizePIT2 bytes) holding what
// no guest can program the PIT to.
func checkPIT(buf []byte) error {
	le := binary.LittleEndian
	for ch := range 3 {
		c := buf[24*ch:]
		// struct kvm_pit_channel_state: count (u32), latched_count
		// (u16), then count_latched, status_latched, status,
		// read_state, write_state, write_latch, rw_mode, mode, bcd,
		// gate (u8 each), count_load_time (s64).
		if n := le.Uint32(c); n == 0 || n > 0x10000 {
			return fmt.Errorf("pit2: channel %d: count %d, where a guest loads 1 to 65536", ch, n)
		}
		for _, f := range []struct {
			name string
			off  int
			max  uint8
		}{{"count_latched", 6, 3}, {"status_latched", 7, 1}, {"read_state", 9, 4}, {"write_state", 10, 4},
			{"rw_mode", 12, 3}, {"bcd", 14, 1}, {"gate", 15, 1}} {
			if c[f.off] > f.max {
				return fmt.Errorf("pit2: channel %d: %s %d, past %d", ch, f.name, c[f.off], f.max)
			}
		}
		// 0xFF until the guest first programs the channel.
		if mode := c[13]; mode > 5 && mode != 0xFF {
			return fmt.Errorf("pit2: channel %d: mode %d, where a guest sets 0 to 5", ch, mode)
		}
	}
	if flags := le.Uint32(buf[72:]); flags&^pitSpeakerDataOn != 0 {
		return fmt.Errorf("pit2: flags %#x: only the speaker data bit (%#x) is a guest's to set", flags, pitSpeakerDataOn)
	}
	return nil
}
