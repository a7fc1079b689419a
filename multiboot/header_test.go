package multiboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// mb2Header is a multiboot2 header (magic, architecture 0 for i386,
// length, checksum) with the end tag, its checksum made to fail when
// badSum.
func mb2Header(badSum bool) []byte {
	le := binary.LittleEndian
	magic, arch, length := uint32(0xE85250D6), uint32(0), uint32(24)
	sum := -(magic + arch + length)
	if badSum {
		sum++
	}
	h := le.AppendUint32(nil, magic)
	h = le.AppendUint32(h, arch)
	h = le.AppendUint32(h, length)
	h = le.AppendUint32(h, sum)
	h = le.AppendUint16(h, 0) // end tag: type 0, flags 0, size 8
	h = le.AppendUint16(h, 0)
	return le.AppendUint32(h, 8)
}

// at returns n bytes of zeros with b at off.
func at(n, off int, b []byte) []byte {
	img := make([]byte, max(n, off+len(b)))
	copy(img[off:], b)
	return img
}

// A file with only a multiboot2 header (8-byte aligned in the first
// 32 KiB, its checksum good: where the multiboot2 spec has it) is said to
// be a multiboot2 kernel, which this loader does not boot; one with a v1
// header too (NetBSD 10's i386 kernel) is found by its v1 header; a
// would-be v2 header that breaks those rules is no header.
func TestFindHeaderMultiboot2(t *testing.T) {
	both := at(0x3000, 0x1000, append(mbHeader(FlagMemoryInfo), make([]byte, 4)...))
	copy(both[0x1010:], mb2Header(false))
	for _, tc := range []struct {
		name  string
		image []byte
		off   int64
		is    []error // nil when a v1 header is found
		not   []error
		msg   []string
	}{
		{"v2 only", at(0x3000, 0x1000, mb2Header(false)), 0x1000, []error{ErrNotMultiboot, ErrMultiboot2}, nil,
			[]string{"multiboot2", "multiboot2 header (magic 0xe85250d6) is at file offset 0x1000"}},
		{"v2 only, small file", at(64, 8, mb2Header(false)), 8, []error{ErrNotMultiboot, ErrMultiboot2}, nil, []string{"file offset 0x8"}},
		{"v2 near the end of the first 32 KiB", at(0x9000, 0x8000-24, mb2Header(false)), 0x8000 - 24, []error{ErrMultiboot2}, nil, nil},
		{"v1 and v2", both, 0x1000, nil, nil, nil},
		{"v2 with a bad checksum", at(0x3000, 0x1000, mb2Header(true)), 0, []error{ErrNotMultiboot}, []error{ErrMultiboot2}, []string{"no magic 0x1badb002"}},
		{"v2 4-byte aligned", at(0x3000, 0x1004, mb2Header(false)), 0, []error{ErrNotMultiboot}, []error{ErrMultiboot2}, nil},
		{"v2 past 32 KiB", at(0x9000, 0x8000, mb2Header(false)), 0, []error{ErrNotMultiboot}, []error{ErrMultiboot2}, nil},
		{"v2 cut short", at(0, 0x1000, mb2Header(false)[:12]), 0, []error{ErrNotMultiboot}, []error{ErrMultiboot2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, off, err := FindHeader(bytes.NewReader(tc.image), int64(len(tc.image)))
			if tc.is == nil && err != nil {
				t.Fatal(err)
			}
			for _, e := range tc.is {
				if !errors.Is(err, e) {
					t.Errorf("error %v is not %v", err, e)
				}
			}
			for _, e := range tc.not {
				if errors.Is(err, e) {
					t.Errorf("error %v is %v", err, e)
				}
			}
			for _, m := range tc.msg {
				if err == nil || !strings.Contains(err.Error(), m) {
					t.Errorf("error %v, want %q in it", err, m)
				}
			}
			if off != tc.off {
				t.Errorf("offset %#x, want %#x", off, tc.off)
			}
		})
	}
}
