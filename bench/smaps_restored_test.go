package bench

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRestoredOverhead reads a real /proc/PID/smaps of `smolvmm run
// --restore` (10 of its 75 mappings kept, paths renamed), taken while its
// restored counter guest (16 MiB) ran: the guest RAM is the private
// mapping of the snapshot file, of which the guest had touched 16 KiB and
// written (copied) 8 KiB (its Anonymous line).
func TestRestoredOverhead(t *testing.T) {
	const guest = 16 << 20
	const snap = "/var/tmp/counter.snap"
	real, err := os.ReadFile("testdata/smaps-restored.txt")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := ParseSmaps(strings.NewReader(string(real)))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 10 {
		t.Fatalf("%d mappings read, the sample has 10", len(maps))
	}
	file := func(header, rss, dirty string) string {
		return header + "\nSize: 16384 kB\nRss: " + rss + " kB\nPss: " + rss + " kB\nPrivate_Dirty: " + rss + " kB\nAnonymous: " + dirty + " kB\n"
	}
	tests := []struct {
		name    string
		smaps   string
		file    string
		want    Memory
		wantErr string
	}{
		{"real sample", string(real), snap, Memory{RSSKiB: 11400, GuestRAMKiB: 16384, GuestRSSKiB: 16, GuestWrittenKiB: 8,
			GuestFile: snap, GuestMappingKiB: 16384, OverheadKiB: 11384, FileRSSKiB: 11236}, ""},
		{"real sample, anonymous RAM asked for", string(real), "", Memory{}, "no anonymous read-write mapping of 16777216 bytes"},
		{"real sample, another file", string(real), "/var/tmp/other.snap", Memory{}, "no private read-write mapping of 16777216 bytes of /var/tmp/other.snap"},
		{"snapshot removed since", file("7f0000000000-7f0001000000 rw-p 00004000 fe:00 12 /var/tmp/counter.snap (deleted)", "40", "12"), snap,
			Memory{RSSKiB: 40, GuestRAMKiB: 16384, GuestRSSKiB: 40, GuestWrittenKiB: 12, GuestFile: snap, GuestMappingKiB: 16384}, ""},
		{"shared mapping is not a restore's", file("7f0000000000-7f0001000000 rw-s 00004000 fe:00 12 /var/tmp/counter.snap", "40", "0"), snap,
			Memory{}, "no private read-write mapping"},
		{"read-only mapping", file("7f0000000000-7f0001000000 r--p 00004000 fe:00 12 /var/tmp/counter.snap", "40", "0"), snap,
			Memory{}, "no private read-write mapping"},
		{"other size", file("7f0000000000-7f0002000000 rw-p 00004000 fe:00 12 /var/tmp/counter.snap", "40", "0"), snap,
			Memory{}, "no private read-write mapping"},
		{"bad Private_Dirty", file("7f0000000000-7f0001000000 rw-p 00004000 fe:00 12 /var/tmp/counter.snap", "40", "-1"), snap,
			Memory{}, `Anonymous "-1": not a size`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maps, err := ParseSmaps(strings.NewReader(tt.smaps))
			var got Memory
			if err == nil {
				if tt.file == "" {
					got, err = Overhead(maps, guest)
				} else {
					got, err = RestoredOverhead(maps, guest, tt.file)
				}
			}
			checkResult(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// TestReadRestoredMemorySelf maps a file of this process privately, as a
// restore maps its snapshot, touches two pages and writes one, and reads
// the figures back from /proc/self/smaps.
func TestReadRestoredMemorySelf(t *testing.T) {
	path := t.TempDir() + "/mem.snap"
	const size = 64 << 12
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	mem := mapPrivate(t, path, size)
	// read: the page cache's page, shared, and what a read fault maps
	// around it: up to 15 more pages, or the whole of a large folio the
	// page cache holds the file in (all 256 KiB, seen in CI)
	sink = mem[0]
	mem[40<<12] = 1 // write: a private copy
	resolved := resolve(t, path)
	m, err := ReadRestoredMemory(os.Getpid(), size, resolved)
	if err != nil {
		t.Fatal(err)
	}
	if m.GuestRSSKiB < 8 || m.GuestRSSKiB > size>>10 || m.GuestWrittenKiB != 4 || m.GuestFile != resolved {
		t.Errorf("after reading one page and writing another of the mapping: %+v, want 8 to %d KiB mapped, 4 KiB written", m, size>>10)
	}
	// --parallel reads the same mapping for its guest RAM.
	if rss, _, err := guestMapping(os.Getpid(), size, resolved, 0); err != nil || rss != m.GuestRSSKiB {
		t.Errorf("guestMapping of the snapshot: %d KiB resident, %v; want %d", rss, err, m.GuestRSSKiB)
	}
	if _, err := ReadRestoredMemory(os.Getpid(), size, ""); err == nil {
		t.Error("ReadRestoredMemory without a file: no error")
	}
}

// sink keeps a read of the mapping from being optimised away.
var sink byte

func mapPrivate(t *testing.T, path string, size int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

func resolve(t *testing.T, path string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// TestRestoredMemoryReport: a restore's memory beside a boot's in the text
// (one table), the SVG (one line each) and the JSON, which refuses more
// guest memory written than resident. A restore's resident guest pages are
// called mapped, not touched: the kernel maps pages around each read fault.
func TestRestoredMemoryReport(t *testing.T) {
	res := fakeResults(t)
	res.Systems[0].Name = "smolvmm-restore"
	res.Systems[0].Memory = &Memory{SampledAt: PhaseReady, RSSKiB: 15000, GuestRAMKiB: 131072, GuestRSSKiB: 48, GuestWrittenKiB: 20,
		GuestFile: "/var/tmp/demo.snap", GuestMappingKiB: 131072, OverheadKiB: 14952, FileRSSKiB: 12000}
	res.Systems[1].Memory = &Memory{SampledAt: PhaseReady, RSSKiB: 14800, GuestRAMKiB: 131072, GuestRSSKiB: 300, GuestWrittenKiB: 300,
		GuestMappingKiB: 131072, OverheadKiB: 14500, FileRSSKiB: 12000}
	res.Systems[1].MemoryError = ""
	res.computeRatios()
	var text, svg, js bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"guest RAM (a private mapping of /var/tmp/demo.snap) mapped 0.05 of 128 MiB (the pages touched and those the kernel mapped around them from the page cache), 0.02 MiB of it written (copied)",
		"guest mapped  guest written  VMM overhead",
		"smolvmm-restore  14.65          0.05           0.02         14.60",
		"qemu-fake  14.45          0.29           0.29         14.16",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if err := res.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<g class="memory">`, `RSS; guest RAM mapped (fault-around included), of it written; VMM overhead</text>`,
		`data-system="smolvmm-restore">RSS 14.65; guest mapped 0.05, written 0.02; overhead 14.60</text>`,
		`data-system="qemu-fake">RSS 14.45; guest mapped 0.29, written 0.29; overhead 14.16</text>`} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResults(bytes.NewReader(js.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if m := back.Systems[0].Memory; m == nil || *m != *res.Systems[0].Memory {
		t.Errorf("JSON round trip: memory %+v, want %+v", m, res.Systems[0].Memory)
	}
	res.Systems[0].Memory.GuestWrittenKiB = 49
	if err := res.Validate(); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "inconsistent memory") {
		t.Errorf("Validate of 49 KiB written of 48 touched: %v, want an inconsistent memory error", err)
	}
}
