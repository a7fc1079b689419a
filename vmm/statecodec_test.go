package vmm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"testing"
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
