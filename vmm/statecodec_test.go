package vmm

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/pci"
)

// TestStateKernelArrays: a snapshot's CPUID entries and MSRs are encoded
// as the kernel's kvm_cpuid_entry2 and kvm_msr_entry arrays (base64 in
// the JSON), decode back to what was encoded, and a length or padding the
// kernel's structures cannot have is refused.
func TestStateKernelArrays(t *testing.T) {
	in := vcpuSnapshot{
		CPUID: cpuidList{{Function: 7, Index: 1, Flags: 1, EAX: 2, EBX: 3, ECX: 4, EDX: 0xfffffffe}, {Function: 0x80000001, EDX: 1 << 29}},
		MSRs:  msrList{{Index: 0xc0000080, Data: 0xd01}, {Index: 0x10, Data: 1<<63 | 5}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var cpuid, msrs []byte
	if err := json.Unmarshal(raw["CPUID"], &cpuid); err != nil {
		t.Fatalf("CPUID is %s, want the base64 of kvm_cpuid_entry2s: %v", raw["CPUID"], err)
	}
	if err := json.Unmarshal(raw["MSRs"], &msrs); err != nil {
		t.Fatalf("MSRs are %s, want the base64 of kvm_msr_entrys: %v", raw["MSRs"], err)
	}
	le := binary.LittleEndian
	if len(cpuid) != 2*sizeCPUIDEntry || le.Uint32(cpuid) != 7 || le.Uint32(cpuid[4:]) != 1 || le.Uint32(cpuid[24:]) != 0xfffffffe ||
		le.Uint32(cpuid[sizeCPUIDEntry:]) != 0x80000001 {
		t.Errorf("CPUID encoded as % x", cpuid)
	}
	if len(msrs) != 2*sizeMSREntry || le.Uint32(msrs) != 0xc0000080 || le.Uint64(msrs[8:]) != 0xd01 || le.Uint64(msrs[sizeMSREntry+8:]) != 1<<63|5 {
		t.Errorf("MSRs encoded as % x", msrs)
	}
	var out vcpuSnapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.CPUID, in.CPUID) || !slices.Equal(out.MSRs, in.MSRs) {
		t.Errorf("decoded %+v %+v, want %+v %+v", out.CPUID, out.MSRs, in.CPUID, in.MSRs)
	}

	b64 := func(b []byte) string { return `"` + base64.StdEncoding.EncodeToString(b) + `"` }
	padded := make([]byte, sizeCPUIDEntry)
	padded[sizeCPUIDEntry-1] = 1
	reserved := make([]byte, sizeMSREntry)
	reserved[5] = 1
	for _, tc := range []struct {
		name, json, want string
	}{
		{"CPUID not whole entries", `{"CPUID":` + b64(make([]byte, sizeCPUIDEntry+4)) + `}`, "CPUID: 44 bytes, not a whole number of 40-byte entries"},
		{"CPUID padding", `{"CPUID":` + b64(padded) + `}`, "CPUID entry 0: padding"},
		{"CPUID as objects (version 2)", `{"CPUID":[{"Function":0}]}`, "CPUID: json: cannot unmarshal object"},
		{"MSRs not whole entries", `{"MSRs":` + b64(make([]byte, 12)) + `}`, "MSRs: 12 bytes, not a whole number of 16-byte entries"},
		{"MSR reserved", `{"MSRs":` + b64(reserved) + `}`, "MSR entry 0 (0x0): reserved field 0x100 is not zero"},
		{"MSRs as a number", `{"MSRs":5}`, "MSRs: json: cannot unmarshal number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v vcpuSnapshot
			err := json.Unmarshal([]byte(tc.json), &v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decoding %s: %v, want an error with %q", tc.json, err, tc.want)
			}
		})
	}
	var v vcpuSnapshot
	if err := json.Unmarshal([]byte(`{"CPUID":null,"MSRs":""}`), &v); err != nil || v.CPUID != nil || len(v.MSRs) != 0 {
		t.Errorf("null CPUID and empty MSRs: %v, %v %v", err, v.CPUID, v.MSRs)
	}
}

// demoState is the demo guest's state (testdata/demo-state.json).
func demoState(t testing.TB) *machineState {
	t.Helper()
	b, err := os.ReadFile("testdata/demo-state.json")
	if err != nil {
		t.Fatal(err)
	}
	st := new(machineState)
	if err := json.Unmarshal(b, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStateSection: the state section holds the KVM structures in binary
// after a fields part without them, decodes back to the state encoded,
// and a section whose lengths do not add up, whose fields part does not
// decode, or with bytes after its end, is refused.
func TestStateSection(t *testing.T) {
	st := demoState(t)
	st.VCPU.KVMCPUID = cpuidList{{Function: 1, ECX: 0xF0, EDX: 0xFF}, {Function: 7, Flags: 1, EBX: 1}}
	// A function whose BARs are sized and decode unlike each other.
	st.PCI.Functions = append(st.PCI.Functions, pci.FunctionState{Device: 1, Space: make([]byte, 256),
		Sizing: [6]bool{false, true}, Decoding: [6]bool{true, false, true}})
	b, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := stateFields(b)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(j, st.VCPU.XSave[:64]) || len(j) > 2048 {
		t.Errorf("fields part of %d bytes holds the KVM structures", len(j))
	}
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("decoded state differs:\n got %+v\nwant %+v", got, st)
	}
	t.Logf("demo state: %d bytes (fields part %d)", len(b), len(j))

	le := binary.LittleEndian
	withFields := func(f []byte) []byte {
		_, rest, _ := stateFields(b)
		return append(append(le.AppendUint32(nil, uint32(len(f))), f...), rest...)
	}
	edit := func(off int, v ...byte) []byte {
		f := slices.Clone(j)
		copy(f[off:], v)
		return withFields(f)
	}
	ready := 8 + 8 + 4 // MemoryMiB, Protocol, TSCKHz
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes, too short for the fields part's length"},
		{"fields part past the end", le.AppendUint32(nil, 100), "fields part of 100 bytes in a section of 4"},
		{"cut in the structures", b[:len(b)-600], "bytes, "},
		{"cut before the interrupt controllers", b[:len(j)+4+4*11+len(st.VCPU.Regs)], "left in the section"},
		{"a byte after", append(slices.Clone(b), 0), "1 bytes after the last interrupt controller"},
		{"fields part cut", withFields(j[:len(j)-1]), "fields part: disks: 3 bytes left, want 4"},
		{"a byte after the fields", withFields(append(slices.Clone(j), 0)), "fields part: 1 bytes after the last field"},
		{"a bool of 2", edit(ready, 2), "fields part: Ready: 2 is not a bool"},
		{"UART RX past the end", edit(ready+1, 0xff, 0xff, 0xff, 0), "fields part: UART RX: 16777215 bytes"},
		{"JSON (version 4)", withFields([]byte(`{"MemoryMiB":128}`)), "fields part: "},
		{"interrupt controllers past the end", append(slices.Clone(b[:len(b)-3*(4+sizeIRQChip)-4]), le.AppendUint32(nil, 1<<30)...), "1073741824 interrupt controllers in 0 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeState(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decodeState = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeState: decodeState refuses or decodes any section without
// panicking, and what it accepts encodes back to a section that decodes
// to the same state.
func FuzzDecodeState(f *testing.F) {
	demo, err := encodeState(demoState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	empty, err := encodeState(new(machineState))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := encodeState(st)
		if err != nil {
			t.Fatalf("encoding an accepted state: %v", err)
		}
		back, err := decodeState(again)
		if err != nil || !reflect.DeepEqual(back, st) {
			t.Fatalf("re-encoded state decodes to %+v, %v; want %+v", back, err, st)
		}
	})
}
