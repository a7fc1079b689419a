package vmm

import "testing"

// TestMovToCR0 decodes the instruction a triple fault stopped at: only
// MOV CR0, r32 tells that the guest was turning paging on.
func TestMovToCR0(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		src  int
		ok   bool
	}{
		{"mov %eax,%cr0 (NetBSD's locore)", []byte{0x0f, 0x22, 0xc0}, 0, true},
		{"mov %edx,%cr0", []byte{0x0f, 0x22, 0xc2}, 2, true},
		{"mov %edi,%cr0", []byte{0x0f, 0x22, 0xc7}, 7, true},
		{"mov %eax,%cr3", []byte{0x0f, 0x22, 0xd8}, 0, false},
		{"mov %eax,%cr4", []byte{0x0f, 0x22, 0xe0}, 0, false},
		{"mov %cr0,%eax", []byte{0x0f, 0x20, 0xc0}, 0, false},
		{"memory operand", []byte{0x0f, 0x22, 0x00}, 0, false},
		{"ud2", []byte{0x0f, 0x0b, 0x90}, 0, false},
		{"short", []byte{0x0f, 0x22}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, ok := movToCR0(tc.code)
			if ok != tc.ok || ok && src != tc.src {
				t.Errorf("movToCR0(% x) = %d, %t; want %d, %t", tc.code, src, ok, tc.src, tc.ok)
			}
		})
	}
}
