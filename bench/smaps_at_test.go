package bench

import (
	"strings"
	"testing"
)

// TestOverheadAt: with the address the VMM said, the guest RAM is the
// mapping there, though the Go heap has a mapping of the same size (4 MiB
// of guest RAM, as -m 4 gives, beside a 4 MiB heap arena), merged with a
// neighbour or not; by size alone the two cannot be told apart.
func TestOverheadAt(t *testing.T) {
	const guest = 4 << 20
	heapAndGuest := smaps(
		"00400000-00800000 r-xp /usr/bin/vmm 3000",
		"c000000000-c000400000 rw-p - 1300",
		"7f0000000000-7f0000400000 rw-p - 40",
		"7fff00000000-7fff00021000 rw-p [stack] 100")
	tests := []struct {
		name    string
		smaps   string
		addr    uint64
		want    Memory
		wantErr string
	}{
		{"guest RAM above the heap", heapAndGuest, 0x7f0000000000,
			Memory{RSSKiB: 4440, GuestRAMKiB: 4096, GuestRSSKiB: 40, GuestMappingKiB: 4096, OverheadKiB: 4400, FileRSSKiB: 3000}, ""},
		{"guest RAM where the heap would be", heapAndGuest, 0xc000000000,
			Memory{RSSKiB: 4440, GuestRAMKiB: 4096, GuestRSSKiB: 1300, GuestMappingKiB: 4096, OverheadKiB: 3140, FileRSSKiB: 3000}, ""},
		// The guest RAM merged with the 132 KiB below it; the heap's
		// mapping of exactly its size is not taken for it.
		{"merged, the heap exactly its size", smaps(
			"c000000000-c000400000 rw-p - 1300",
			"7efffffdf000-7f0000400000 rw-p - 48"), 0x7f0000000000,
			Memory{RSSKiB: 1348, GuestRAMKiB: 4096, GuestRSSKiB: 48, GuestMappingKiB: 4228, OverheadKiB: 1300}, ""},
		{"no mapping there", heapAndGuest, 0x7e0000000000, Memory{}, "no mapping holds the guest RAM at 0x7e0000000000"},
		{"a file mapping there", smaps("7f0000000000-7f0000400000 rw-p /dev/shm/x 10"), 0x7f0000000000, Memory{}, "not an anonymous read-write mapping"},
		{"read-only there", smaps("7f0000000000-7f0000400000 r--p - 10"), 0x7f0000000000, Memory{}, "not an anonymous read-write mapping"},
		{"mapping ends before the guest RAM", smaps("7f0000000000-7f0000200000 rw-p - 10"), 0x7f0000000000, Memory{}, "not an anonymous read-write mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maps, err := ParseSmaps(strings.NewReader(tt.smaps))
			if err != nil {
				t.Fatal(err)
			}
			got, err := OverheadAt(maps, guest, tt.addr)
			checkResult(t, got, err, tt.want, tt.wantErr)
		})
	}
	// Without the address the size cannot tell them apart: refused, not
	// guessed.
	maps, err := ParseSmaps(strings.NewReader(heapAndGuest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Overhead(maps, guest); err == nil || !strings.Contains(err.Error(), "cannot tell which") {
		t.Errorf("Overhead by size of a heap and guest RAM of 4 MiB each: %v, want it refused", err)
	}
	if _, err := OverheadAt(maps, guest, 0); err == nil {
		t.Error("OverheadAt without an address: no error")
	}
}
