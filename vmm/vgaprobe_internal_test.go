package vmm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// mmioAccess is an access the bus found no RAM or device for.
type mmioAccess struct {
	addr  uint64
	data  []byte
	write bool
}

func rd(addr uint64, n int) mmioAccess { return mmioAccess{addr, bytes.Repeat([]byte{0xff}, n), false} }
func wr(addr uint64, data ...byte) mmioAccess {
	return mmioAccess{addr, data, true}
}

// netbsdProbe is NetBSD 9's display probes as they run against the empty
// window: vga_common_probe at 0xb8000 (its read back fails), then
// pcdisplay_probe_col and _mono (sys/dev/isa/pcdisplay.c).
var netbsdProbe = []mmioAccess{
	rd(0xb8000, 2), wr(0xb8000, 0x5a, 0xa5), rd(0xb8000, 2),
	rd(0xb8000, 2), wr(0xb8000, 0x5a, 0xa5), rd(0xb8000, 2), wr(0xb8000, 0xff, 0xff),
	rd(0xb0000, 2), wr(0xb0000, 0x5a, 0xa5), rd(0xb0000, 2), wr(0xb0000, 0xff, 0xff),
}

// TestUnclaimedVGA: NetBSD's display probe leaves no word in the log
// (labelled as the probe under Verbose); any other access to the VGA
// window, a kernel printing to text memory, is said once, verbose or not,
// since its output is lost.
func TestUnclaimedVGA(t *testing.T) {
	twice := append(append([]mmioAccess{}, netbsdProbe...), netbsdProbe...)
	text := []mmioAccess{wr(0xb8000, 'H'), wr(0xb8001, 0x07), wr(0xb8002, 'i'), wr(0xb8003, 0x07)}
	var many []mmioAccess
	for range vgaProbeMax + 1 {
		many = append(many, wr(0xb8000, 0x5a, 0xa5))
	}
	tests := []struct {
		name     string
		accesses []mmioAccess
		verbose  bool
		note     string // the one note logged ("": none)
		// Under Verbose: unhandled-MMIO lines, those named as the
		// probe.
		lines, probes int
	}{
		{name: "NetBSD's probe", accesses: netbsdProbe},
		{name: "NetBSD's probe twice", accesses: twice},
		{name: "NetBSD's probe, verbose", accesses: netbsdProbe, verbose: true, lines: 4, probes: 4},
		{name: "text written a byte at a time", accesses: text,
			note: "the guest writes VGA text memory at 0xb8000 (1 bytes): the machine has no display"},
		{name: "text written, verbose", accesses: text, verbose: true, lines: 4,
			note: "the guest writes VGA text memory at 0xb8000 (1 bytes)"},
		{name: "a character and its colour as a word", accesses: []mmioAccess{wr(0xb8000, 'H', 0x07)},
			note: "the guest writes VGA text memory at 0xb8000 (2 bytes)"},
		{name: "text after the probe", accesses: append(append([]mmioAccess{}, netbsdProbe...), wr(0xb8000, 'H', 0x07)),
			note: "the guest writes VGA text memory at 0xb8000 (2 bytes)"},
		{name: "graphics memory", accesses: []mmioAccess{wr(0xa0000, 0x5a, 0xa5)},
			note: "the guest writes VGA memory at 0xa0000 (2 bytes)"},
		{name: "a read elsewhere", accesses: []mmioAccess{rd(0xbfffe, 2)},
			note: "the guest reads VGA text memory at 0xbfffe (2 bytes)"},
		{name: "more than the probe's", accesses: many,
			note: "the guest writes VGA text memory at 0xb8000 (2 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			m := &Machine{cfg: Config{Log: &log, Verbose: tt.verbose}}
			seen := map[string]bool{}
			for _, a := range tt.accesses {
				k := fmt.Sprint(a.addr, a.write)
				m.unclaimedMMIO(a.addr, a.data, a.write, !seen[k])
				seen[k] = true
			}
			out := log.String()
			notes := strings.Count(out, "the machine has no display")
			switch {
			case tt.note == "" && notes != 0, tt.note != "" && (notes != 1 || !strings.Contains(out, tt.note)):
				t.Errorf("log:\n%s\nwant the note %q once", out, tt.note)
			}
			if tt.note != "" && !strings.Contains(out, "a serial console would") {
				t.Errorf("log:\n%s\nwant what to use instead", out)
			}
			lines := strings.Count(out, "unhandled MMIO")
			probes := strings.Count(out, "(a display probe)")
			if lines != tt.lines || probes != tt.probes {
				t.Errorf("log:\n%s\n%d unhandled MMIO lines, %d named the probe; want %d and %d", out, lines, probes, tt.lines, tt.probes)
			}
		})
	}
}
