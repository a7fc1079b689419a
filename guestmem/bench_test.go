package guestmem

import "testing"

// BenchmarkAccess is the cost of the checks on the accesses virtqueue
// code makes most: a descriptor's words and the ring index.
func BenchmarkAccess(b *testing.B) {
	m := New(make([]byte, 1<<20), Range{Start: 0xA0000, End: 0xC0000})
	b.Run("Read64", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.Read64(uint64(i&0xFFF) << 3); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadAcquire32", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.LoadAcquire32(uint64(i&0xFFF) << 2); err != nil {
				b.Fatal(err)
			}
		}
	})
}
