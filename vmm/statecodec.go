package vmm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// A snapshot holds the vCPU's CPUID entries and MSRs as the kernel's
// structures, like the rest of its KVM state: arrays of struct
// kvm_cpuid_entry2 and struct kvm_msr_entry, in the state section's
// binary part (base64 in machineState's JSON encoding). As JSON
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

// kernel returns l as the kernel's array of kvm_cpuid_entry2 (nil for
// nil).
func (l cpuidList) kernel() []byte {
	if l == nil {
		return nil
	}
	b := make([]byte, sizeCPUIDEntry*len(l))
	for i, e := range l {
		p := b[sizeCPUIDEntry*i:]
		for j, v := range [...]uint32{e.Function, e.Index, e.Flags, e.EAX, e.EBX, e.ECX, e.EDX} {
			binary.LittleEndian.PutUint32(p[4*j:], v)
		}
	}
	return b
}

// cpuidFromKernel decodes what kernel encodes, refusing a length that is
// not a whole number of entries and padding that is not zero.
func cpuidFromKernel(b []byte) (cpuidList, error) {
	if b == nil {
		return nil, nil
	}
	if len(b)%sizeCPUIDEntry != 0 {
		return nil, fmt.Errorf("CPUID: %d bytes, not a whole number of %d-byte entries", len(b), sizeCPUIDEntry)
	}
	out := make(cpuidList, len(b)/sizeCPUIDEntry)
	le := binary.LittleEndian
	for i := range out {
		p := b[sizeCPUIDEntry*i:]
		if pad := p[cpuidPadOff:sizeCPUIDEntry]; le.Uint32(pad) != 0 || le.Uint64(pad[4:]) != 0 {
			return nil, fmt.Errorf("CPUID entry %d: padding % x is not zero", i, pad)
		}
		out[i] = cpuidEntry{le.Uint32(p), le.Uint32(p[4:]), le.Uint32(p[8:]), le.Uint32(p[12:]), le.Uint32(p[16:]), le.Uint32(p[20:]), le.Uint32(p[24:])}
	}
	return out, nil
}

// MarshalJSON encodes l as the kernel's array of kvm_cpuid_entry2, base64.
func (l cpuidList) MarshalJSON() ([]byte, error) { return json.Marshal(l.kernel()) }

// UnmarshalJSON decodes what MarshalJSON encodes, as cpuidFromKernel.
func (l *cpuidList) UnmarshalJSON(data []byte) error {
	b, err := kernelArray(data, "CPUID")
	if err == nil {
		*l, err = cpuidFromKernel(b)
	}
	return err
}

// kernel returns l as the kernel's array of kvm_msr_entry (nil for nil).
func (l msrList) kernel() []byte {
	if l == nil {
		return nil
	}
	b := make([]byte, sizeMSREntry*len(l))
	for i, m := range l {
		p := b[sizeMSREntry*i:]
		binary.LittleEndian.PutUint32(p, m.Index)
		binary.LittleEndian.PutUint64(p[8:], m.Data)
	}
	return b
}

// msrsFromKernel decodes what kernel encodes, refusing a length that is
// not a whole number of entries and a reserved field that is not zero.
func msrsFromKernel(b []byte) (msrList, error) {
	if b == nil {
		return nil, nil
	}
	if len(b)%sizeMSREntry != 0 {
		return nil, fmt.Errorf("MSRs: %d bytes, not a whole number of %d-byte entries", len(b), sizeMSREntry)
	}
	out := make(msrList, len(b)/sizeMSREntry)
	le := binary.LittleEndian
	for i := range out {
		p := b[sizeMSREntry*i:]
		if r := le.Uint32(p[4:]); r != 0 {
			return nil, fmt.Errorf("MSR entry %d (%#x): reserved field %#x is not zero", i, le.Uint32(p), r)
		}
		out[i] = MSR{Index: le.Uint32(p), Data: le.Uint64(p[8:])}
	}
	return out, nil
}

// MarshalJSON encodes l as the kernel's array of kvm_msr_entry, base64.
func (l msrList) MarshalJSON() ([]byte, error) { return json.Marshal(l.kernel()) }

// UnmarshalJSON decodes what MarshalJSON encodes, as msrsFromKernel.
func (l *msrList) UnmarshalJSON(data []byte) error {
	b, err := kernelArray(data, "MSRs")
	if err == nil {
		*l, err = msrsFromKernel(b)
	}
	return err
}

// kernelArray decodes data, a JSON base64 string or null, into bytes
// (nil for null).
func kernelArray(data []byte, what string) ([]byte, error) {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// The state section (format version 8; version 10 may add the disks'
// moments at the fields part's end) is the machine's state in two
// parts: the fields part for what is small and many-fielded (the devices,
// the disks, the memory size; statefields.go), then the KVM structures
// byte for byte. Version 4 had JSON for the first part, whose decoding
// (encoding/json's first use of its types) cost a restore ~0.44 ms; as
// base64 in the JSON (version 3) the KVM structures were most of its
// bytes. Layout, all integers little-endian u32:
//
//	length of the fields part, then the fields part
//	each of stateBlobs' structures, in its order: regs (144 bytes),
//	  sregs (312), lapic (1024), vcpu events (64), mp state (4), debug
//	  registers (128), xsave (4096 or more), xcrs (392), fpu (416), pit2
//	  (112), clock (48); then the MSRs (kvm_msr_entry array, 16 bytes
//	  each: msrIndexList's, the MTRRs included), the CPUID entries
//	  (kvm_cpuid_entry2 array, 40 bytes each), then the record of KVM's
//	  supported CPUID (KVMCPUID, kvm_cpuid_entry2 array; new in version
//	  6), each as its length then its bytes (length 0: none)
//	the number of interrupt controllers (3), then each as length and
//	  bytes (kvm_irqchip, 520): PIC master, PIC slave, I/O APIC
//
// and nothing after. xsave, xcrs and fpu each have their length always:
// with KVM_CAP_XSAVE the fpu's is 0, without it xsave's and xcrs' are. machineState's JSON encoding (all of it in JSON, as
// format version 3 had it) stays what the tests edit a state as.

// stateBlobs returns st's KVM structures but the interrupt controllers,
// the MSRs and the CPUID entries, in the state section's order.
func stateBlobs(st *machineState) []*[]byte {
	c := &st.VCPU
	return []*[]byte{&c.Regs, &c.Sregs, &c.LAPIC, &c.Events, &c.MPState, &c.Debug, &c.XSave, &c.XCRs, &c.FPU, &st.PIT2, &st.Clock}
}

// stateBlobNames names stateBlobs' structures, for errors.
var stateBlobNames = []string{"regs", "sregs", "lapic", "vcpu events", "mp state", "debug registers", "xsave", "xcrs", "fpu", "pit2", "clock"}

// encodeState encodes st as a state section.
func encodeState(st *machineState) ([]byte, error) {
	le := binary.LittleEndian
	out := encodeFields(make([]byte, 4, 16<<10), st)
	le.PutUint32(out, uint32(len(out)-4))
	put := func(b []byte) {
		out = le.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	for _, b := range stateBlobs(st) {
		put(*b)
	}
	put(st.VCPU.MSRs.kernel())
	put(st.VCPU.CPUID.kernel())
	put(st.VCPU.KVMCPUID.kernel())
	out = le.AppendUint32(out, uint32(len(st.IRQChips)))
	for _, b := range st.IRQChips {
		put(b)
	}
	return out, nil
}

// stateFields returns the fields part of the state section b and the
// rest.
func stateFields(b []byte) (fields, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%d bytes, too short for the fields part's length", len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("fields part of %d bytes in a section of %d", n, len(b))
	}
	return b[4 : 4+n], b[4+n:], nil
}

// decodeState decodes a state section encodeState encoded, refusing one
// whose lengths do not add up, whose fields part does not decode
// (decodeFields), or that has bytes after its last structure.
func decodeState(b []byte) (*machineState, error) {
	fields, rest, err := stateFields(b)
	if err != nil {
		return nil, err
	}
	st := new(machineState)
	if err := decodeFields(fields, st); err != nil {
		return nil, err
	}
	blobs := stateBlobs(st)
	le := binary.LittleEndian
	next := func(what string) ([]byte, error) {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%s: section ends before its length", what)
		}
		n := le.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, fmt.Errorf("%s: %d bytes, %d left in the section", what, n, len(rest)-4)
		}
		out := rest[4 : 4+n : 4+n]
		rest = rest[4+n:]
		if n == 0 {
			return nil, nil
		}
		return out, nil
	}
	for i, p := range blobs {
		if *p, err = next(stateBlobNames[i]); err != nil {
			return nil, err
		}
	}
	msrs, err := next("MSRs")
	if err != nil {
		return nil, err
	}
	if st.VCPU.MSRs, err = msrsFromKernel(msrs); err != nil {
		return nil, err
	}
	cpuid, err := next("CPUID")
	if err != nil {
		return nil, err
	}
	if st.VCPU.CPUID, err = cpuidFromKernel(cpuid); err != nil {
		return nil, err
	}
	kvmCPUID, err := next("KVM's CPUID")
	if err != nil {
		return nil, err
	}
	if st.VCPU.KVMCPUID, err = cpuidFromKernel(kvmCPUID); err != nil {
		return nil, fmt.Errorf("KVM's %w", err)
	}
	if len(rest) < 4 {
		return nil, fmt.Errorf("section ends before the number of interrupt controllers")
	}
	chips := le.Uint32(rest)
	rest = rest[4:]
	if uint64(chips) > uint64(len(rest)/4) {
		return nil, fmt.Errorf("%d interrupt controllers in %d bytes", chips, len(rest))
	}
	if chips > 0 {
		st.IRQChips = make([][]byte, chips)
	}
	for i := range st.IRQChips {
		if st.IRQChips[i], err = next(fmt.Sprintf("interrupt controller %d", i)); err != nil {
			return nil, err
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the last interrupt controller", len(rest))
	}
	return st, nil
}
