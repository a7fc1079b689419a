package vmm

import (
	"encoding/binary"
	"testing"
)

// TestInternalError checks the crash reason for a KVM internal error:
// every suberror KVM defines named, others said to be unknown, and the
// data words KVM gave listed, no more than kvm_run holds whatever ndata
// says.
func TestInternalError(t *testing.T) {
	exit := func(sub, ndata uint32, words ...uint64) []byte {
		d := make([]byte, 8+8*maxInternalData)
		binary.LittleEndian.PutUint32(d[0:], sub)
		binary.LittleEndian.PutUint32(d[4:], ndata)
		for i, w := range words {
			binary.LittleEndian.PutUint64(d[8+8*i:], w)
		}
		return d
	}
	all := make([]uint64, maxInternalData)
	for i := range all {
		all[i] = uint64(i + 1)
	}
	for _, tc := range []struct {
		name string
		d    []byte
		want string
	}{
		{"emulation failure, no data", exit(1, 0), "KVM internal error 1 (emulation failure)"},
		{"simultaneous exceptions", exit(2, 1, 0x80000b0e), "KVM internal error 2 (simultaneous exceptions), data [0x80000b0e]"},
		{"delivery event failure", exit(3, 2, 0x8000030d, 0x31), "KVM internal error 3 (delivery event failure), data [0x8000030d 0x31]"},
		{"unexpected exit reason", exit(4, 2, 0x30, 0x1), "KVM internal error 4 (unexpected exit reason), data [0x30 0x1]"},
		{"unknown suberror", exit(9, 0), "KVM internal error 9 (unknown)"},
		{"all data words", exit(1, maxInternalData, all...),
			"KVM internal error 1 (emulation failure), data [0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8 0x9 0xa 0xb 0xc 0xd 0xe 0xf 0x10]"},
		{"ndata beyond the array", exit(4, 1000, all...),
			"KVM internal error 4 (unexpected exit reason), ndata 1000 exceeds 16, data [0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8 0x9 0xa 0xb 0xc 0xd 0xe 0xf 0x10]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := internalError(tc.d); got != tc.want {
				t.Errorf("internalError = %q\nwant %q", got, tc.want)
			}
		})
	}
}
