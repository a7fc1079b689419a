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

// TestHoles: a range that touches a hole (the VGA window of a PC) is
// refused like one past the end, by Check and by every accessor built on it;
// ranges that end at its start or begin at its end are RAM.
func TestHoles(t *testing.T) {
	const start, end = 0xA0000, 0xC0000
	m := New(make([]byte, 1<<20), Range{Start: start, End: end})
	tests := []struct {
		name   string
		gpa, n uint64
		ok     bool
	}{
		{"below, ending at the hole", start - 16, 16, true},
		{"above, starting at its end", end, 16, true},
		{"empty at its start", start, 0, true},
		{"empty at its end", end, 0, true},
		{"last byte below", start - 1, 1, true},
		{"first byte of the hole", start, 1, false},
		{"last byte of the hole", end - 1, 1, false},
		{"running into it", start - 8, 16, false},
		{"running out of it", end - 8, 16, false},
		{"across it", start - 4096, end - start + 8192, false},
		{"empty inside", start + 0x1000, 0, false},
		{"whole memory", 0, 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Check(tt.gpa, tt.n)
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%#x, %#x) err = %v, want ok=%v", tt.gpa, tt.n, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("error %v does not wrap ErrOutOfRange", err)
			}
			if _, err := m.Slice(tt.gpa, tt.n); (err == nil) != tt.ok {
				t.Errorf("Slice(%#x, %#x) err = %v, want ok=%v", tt.gpa, tt.n, err, tt.ok)
			}
		})
	}
	if _, err := m.WriteAt([]byte{1}, start); err == nil {
		t.Error("WriteAt into the hole accepted")
	}
	if err := m.Write32(end-2, 1); err == nil {
		t.Error("Write32 across the hole's end accepted")
	}
	if _, err := m.LoadAcquire32(start + 4); err == nil {
		t.Error("LoadAcquire32 in the hole accepted")
	}
	if len(m.Bytes()) != 1<<20 {
		t.Errorf("Bytes covers %#x bytes, want the whole mapping", len(m.Bytes()))
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

// TestClosed: after Close every access fails with ErrClosed, before it
// touches a byte (the owner unmaps the memory next), and Bytes is nil.
func TestClosed(t *testing.T) {
	b := make([]byte, 4096)
	m := New(b)
	m.Close()
	m.Close() // twice is fine
	tests := []struct {
		name string
		do   func() error
	}{
		{"Check", func() error { return m.Check(0, 1) }},
		{"Slice", func() error { _, err := m.Slice(0, 1); return err }},
		{"ReadAt", func() error { _, err := m.ReadAt(make([]byte, 4), 0); return err }},
		{"WriteAt", func() error { _, err := m.WriteAt([]byte{1}, 0); return err }},
		{"Read8", func() error { _, err := m.Read8(0); return err }},
		{"Read16", func() error { _, err := m.Read16(0); return err }},
		{"Read32", func() error { _, err := m.Read32(0); return err }},
		{"Read64", func() error { _, err := m.Read64(0); return err }},
		{"Write8", func() error { return m.Write8(0, 1) }},
		{"Write16", func() error { return m.Write16(0, 1) }},
		{"Write32", func() error { return m.Write32(0, 1) }},
		{"Write64", func() error { return m.Write64(0, 1) }},
		{"LoadAcquire32", func() error { _, err := m.LoadAcquire32(0); return err }},
		{"StoreRelease32", func() error { return m.StoreRelease32(0, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, ErrClosed) {
				t.Fatalf("after Close: %v, want ErrClosed", err)
			}
		})
	}
	for i, c := range b {
		if c != 0 {
			t.Fatalf("byte %d written after Close", i)
		}
	}
	if got := m.Bytes(); got != nil {
		t.Errorf("Bytes after Close: %d bytes, want nil", len(got))
	}
	if m.Size() != 4096 {
		t.Errorf("Size after Close: %d, want 4096", m.Size())
	}
}
