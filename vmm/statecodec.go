package vmm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// A snapshot holds the vCPU's CPUID entries and MSRs as the kernel's
// structures, like the rest of its KVM state: arrays of struct
// kvm_cpuid_entry2 and struct kvm_msr_entry, base64 in the JSON. As JSON
// objects (format version 2) their ~120 entries of 2-7 fields each were
// most of what decoding the state cost a restore (~0.4 ms in a fresh
// process here), on its way to the first guest instruction.

// Sizes of struct kvm_cpuid_entry2 (function, index, flags, eax, ebx,
// ecx, edx, then three u32 of padding) and of struct kvm_msr_entry (index,
// a reserved u32, data).
const (
	sizeCPUIDEntry = 40
	cpuidPadOff    = 28
)

// cpuidList is a snapshot's CPUID entries, encoded as kvm_cpuid_entry2s.
type cpuidList []cpuidEntry

// msrList is a snapshot's MSRs, encoded as kvm_msr_entrys.
type msrList []MSR

// MarshalJSON encodes l as the kernel's array of kvm_cpuid_entry2.
func (l cpuidList) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("null"), nil
	}
	b := make([]byte, sizeCPUIDEntry*len(l))
	for i, e := range l {
		p := b[sizeCPUIDEntry*i:]
		for j, v := range [...]uint32{e.Function, e.Index, e.Flags, e.EAX, e.EBX, e.ECX, e.EDX} {
			binary.LittleEndian.PutUint32(p[4*j:], v)
		}
	}
	return json.Marshal(b)
}

// UnmarshalJSON decodes what MarshalJSON encodes, refusing a length that
// is not a whole number of entries and padding that is not zero.
func (l *cpuidList) UnmarshalJSON(data []byte) error {
	b, err := kernelArray(data, "CPUID", sizeCPUIDEntry)
	if err != nil || b == nil {
		*l = nil
		return err
	}
	out := make(cpuidList, len(b)/sizeCPUIDEntry)
	le := binary.LittleEndian
	for i := range out {
		p := b[sizeCPUIDEntry*i:]
		if pad := p[cpuidPadOff:sizeCPUIDEntry]; le.Uint32(pad) != 0 || le.Uint64(pad[4:]) != 0 {
			return fmt.Errorf("CPUID entry %d: padding % x is not zero", i, pad)
		}
		out[i] = cpuidEntry{le.Uint32(p), le.Uint32(p[4:]), le.Uint32(p[8:]), le.Uint32(p[12:]), le.Uint32(p[16:]), le.Uint32(p[20:]), le.Uint32(p[24:])}
	}
	*l = out
	return nil
}

// MarshalJSON encodes l as the kernel's array of kvm_msr_entry.
func (l msrList) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("null"), nil
	}
	b := make([]byte, sizeMSREntry*len(l))
	for i, m := range l {
		p := b[sizeMSREntry*i:]
		binary.LittleEndian.PutUint32(p, m.Index)
		binary.LittleEndian.PutUint64(p[8:], m.Data)
	}
	return json.Marshal(b)
}

// UnmarshalJSON decodes what MarshalJSON encodes, refusing a length that
// is not a whole number of entries and a reserved field that is not zero.
func (l *msrList) UnmarshalJSON(data []byte) error {
	b, err := kernelArray(data, "MSRs", sizeMSREntry)
	if err != nil || b == nil {
		*l = nil
		return err
	}
	out := make(msrList, len(b)/sizeMSREntry)
	le := binary.LittleEndian
	for i := range out {
		p := b[sizeMSREntry*i:]
		if r := le.Uint32(p[4:]); r != 0 {
			return fmt.Errorf("MSR entry %d (%#x): reserved field %#x is not zero", i, le.Uint32(p), r)
		}
		out[i] = MSR{Index: le.Uint32(p), Data: le.Uint64(p[8:])}
	}
	*l = out
	return nil
}

// kernelArray decodes data, a JSON base64 string or null, into the bytes
// of an array of the kernel's structures of size bytes each (nil for
// null).
func kernelArray(data []byte, what string, size int) ([]byte, error) {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%s: %d bytes, not a whole number of %d-byte entries", what, len(b), size)
	}
	return b, nil
}
