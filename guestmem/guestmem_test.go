package guestmem

import (
	"errors"
	"testing"
)

func TestBounds(t *testing.T) {
	m := New(make([]byte, 4096))
	tests := []struct {
		name   string
		gpa, n uint64
		ok     bool
	}{
		{"start", 0, 16, true},
		{"whole", 0, 4096, true},
		{"end", 4095, 1, true},
		{"empty at end", 4096, 0, true},
		{"past end", 4095, 2, false},
		{"beyond", 8192, 1, false},
		{"overflow", ^uint64(0) - 1, 4, false},
		{"huge length", 16, ^uint64(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Slice(tt.gpa, tt.n)
			if (err == nil) != tt.ok {
				t.Fatalf("Slice(%#x, %#x) err = %v, want ok=%v", tt.gpa, tt.n, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("error %v does not wrap ErrOutOfRange", err)
			}
		})
	}
	if _, err := m.ReadAt(make([]byte, 4), -1); err == nil {
		t.Error("negative ReadAt offset accepted")
	}
	if _, err := m.WriteAt(make([]byte, 4), 4094); err == nil {
		t.Error("WriteAt past the end accepted")
	}
}

func TestLittleEndianAndAtomics(t *testing.T) {
	m := New(make([]byte, 64))
	if err := m.Write64(8, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	if b := m.Bytes()[8:16]; b[0] != 0x88 || b[7] != 0x11 {
		t.Fatalf("not little-endian: % x", b)
	}
	if v, _ := m.Read32(12); v != 0x11223344 {
		t.Fatalf("Read32 = %#x", v)
	}
	if v, _ := m.Read16(8); v != 0x7788 {
		t.Fatalf("Read16 = %#x", v)
	}
	if err := m.StoreRelease32(16, 0xCAFEF00D); err != nil {
		t.Fatal(err)
	}
	if v, err := m.LoadAcquire32(16); err != nil || v != 0xCAFEF00D {
		t.Fatalf("LoadAcquire32 = %#x, %v", v, err)
	}
	if _, err := m.LoadAcquire32(18); err == nil {
		t.Error("unaligned atomic load accepted")
	}
	if err := m.StoreRelease32(62, 1); err == nil {
		t.Error("unaligned atomic store accepted")
	}
	if _, err := m.LoadAcquire32(64); err == nil {
		t.Error("atomic load past the end accepted")
	}
}
