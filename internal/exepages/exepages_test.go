package exepages

import (
	"debug/elf"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// The segments read from memory are the file's: every PT_LOAD of the test
// binary without PF_W, rounded inward to pages, and nothing else.
func TestReadOnlyMatchesTheFile(t *testing.T) {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := uint64(os.Getpagesize())
	var want []Segment
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC || p.Type == elf.PT_INTERP {
			t.Skip("the test binary is dynamically linked (cgo?): Release refuses such a binary")
		}
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_W != 0 {
			continue
		}
		start, end := (p.Vaddr+page-1)&^(page-1), (p.Vaddr+p.Memsz)&^(page-1)
		if end > start {
			want = append(want, Segment{Start: uintptr(start), End: uintptr(end), Executable: p.Flags&elf.PF_X != 0})
		}
	}
	got, err := ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadOnly() = %+v, the file's read-only PT_LOADs are %+v", got, want)
	}
	code := reflect.ValueOf(TestReadOnlyMatchesTheFile).Pointer()
	data := uintptr(unsafe.Pointer(unsafe.StringData("a string literal lives in read-only data")))
	if s := segmentOf(got, code); s == nil || !s.Executable {
		t.Errorf("this test's code at %#x is in %+v, want an executable segment", code, s)
	}
	if s := segmentOf(got, data); s == nil || s.Executable {
		t.Errorf("a string literal at %#x is in %+v, want a read-only data segment", data, s)
	}
}

func segmentOf(segs []Segment, addr uintptr) *Segment {
	for i := range segs {
		if addr >= segs[i].Start && addr < segs[i].End {
			return &segs[i]
		}
	}
	return nil
}

// table is read-only data whose bytes must survive the release.
var table = [...]uint32{0xdeadbeef, 0x0badf00d, 0xfeedface, 0xcafebabe}

func sum(xs []uint32) uint32 {
	var s uint32
	for _, x := range xs {
		s ^= x
	}
	return s
}

// Release unmaps the pages: of the read-only segments' pages mapped
// before, most are not after (what runs in between maps a few back), and
// the code and data mapped back afterwards are what they were.
func TestReleaseUnmapsPagesAndKeepsContents(t *testing.T) {
	segs, err := ReadOnly()
	if errors.Is(err, ErrDynamic) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skip("no /proc/self/pagemap: ", err)
	}
	defer pm.Close()
	wantSum := sum(table[:])
	// The process's other threads (the runtime's, the test framework's)
	// run on between the release and the count, mapping back what they
	// run 64 KiB at a time: seen 369 of 720 pages on a loaded CI machine.
	// A try that left more than half is made again.
	before := mappedPages(t, pm, segs)
	var after int
	var n uintptr
	for try := 0; try < 5 && (try == 0 || after*2 > before); try++ {
		if n, err = Release(); err != nil {
			t.Fatal(err)
		}
		after = mappedPages(t, pm, segs)
	}
	var total uintptr
	for _, s := range segs {
		total += s.Len()
	}
	if n != total {
		t.Errorf("Release() = %d bytes, want the segments' %d", n, total)
	}
	t.Logf("read-only segments: %d pages mapped before the release, %d after", before, after)
	if after*2 > before {
		t.Errorf("%d pages mapped after the release, %d before: want under half (a release that unmapped nothing leaves them all)", after, before)
	}
	if got := sum(table[:]); got != wantSum {
		t.Errorf("the read-only table after the release sums to %#x, want %#x", got, wantSum)
	}
}

// mappedPages counts the pages of segs present in this process's page
// tables (bit 63 of their /proc/self/pagemap entries), with one read per
// segment, so that little code runs while it counts.
func mappedPages(t *testing.T, pm *os.File, segs []Segment) int {
	t.Helper()
	page := uintptr(os.Getpagesize())
	n := 0
	for _, s := range segs {
		buf := make([]byte, s.Len()/page*8)
		if _, err := pm.ReadAt(buf, int64(s.Start/page*8)); err != nil {
			t.Fatalf("pagemap: %v", err)
		}
		for i := 0; i < len(buf); i += 8 {
			if buf[i+7]&0x80 != 0 {
				n++
			}
		}
	}
	return n
}

func TestReadOnlySegments(t *testing.T) {
	const page = 0x1000
	load := func(flags elf.ProgFlag, vaddr, filesz, memsz uint64) elf.ProgHeader {
		return elf.ProgHeader{Type: elf.PT_LOAD, Flags: flags, Vaddr: vaddr, Filesz: filesz, Memsz: memsz}
	}
	text := load(elf.PF_R|elf.PF_X, 0x400000, 0x2800, 0x2800)
	rodata := load(elf.PF_R, 0x403000, 0x1800, 0x1800)
	data := load(elf.PF_R|elf.PF_W, 0x405000, 0x1000, 0x3000)
	tests := []struct {
		name    string
		progs   []elf.ProgHeader
		phdr    uintptr
		want    []Segment
		wantErr string
	}{
		{name: "static", progs: []elf.ProgHeader{{Type: elf.PT_PHDR, Vaddr: 0x400040}, text, rodata, data}, phdr: 0x400040,
			want: []Segment{{0x400000, 0x402000, true}, {0x403000, 0x404000, false}}},
		{name: "segment within one page", progs: []elf.ProgHeader{text, load(elf.PF_R, 0x403010, 0x100, 0x100)}, phdr: 0x400040,
			want: []Segment{{0x400000, 0x402000, true}}},
		{name: "dynamic", progs: []elf.ProgHeader{text, {Type: elf.PT_DYNAMIC}}, phdr: 0x400040, wantErr: ErrDynamic.Error()},
		{name: "interpreter", progs: []elf.ProgHeader{{Type: elf.PT_INTERP}, text}, phdr: 0x400040, wantErr: ErrDynamic.Error()},
		{name: "loaded elsewhere", progs: []elf.ProgHeader{text, rodata}, phdr: 0x7f000040, wantErr: "in no loaded segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readOnlySegments(tt.progs, tt.phdr, page)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProgramHeadersRefusesAnAuxiliaryVectorWithout(t *testing.T) {
	if _, err := programHeaders(0, 56, 0); err == nil || !strings.Contains(err.Error(), "no program headers") {
		t.Errorf("no AT_PHDR: err = %v", err)
	}
	if _, err := programHeaders(0x400040, 7, 3); err == nil || !strings.Contains(err.Error(), "AT_PHENT 7") {
		t.Errorf("AT_PHENT 7: err = %v", err)
	}
}
