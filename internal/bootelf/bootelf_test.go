package bootelf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

func TestMachineName(t *testing.T) {
	for m, want := range map[uint16]string{42: "SuperH (sh3), e_machine 42", 3: "Intel 80386 (i386), e_machine 3", 9999: "e_machine 9999"} {
		if got := MachineName(m); got != want {
			t.Errorf("MachineName(%d) = %q, want %q", m, got, want)
		}
	}
}

// TestFindNote: every note of an area is decoded, in order, until the one
// wanted; malformed areas are errors.
func TestFindNote(t *testing.T) {
	two := append(elftest.Note(false, "NetBSD", 1, []byte{1, 2, 3, 4}), elftest.Note(false, "PaX", 3, []byte{9})...)
	for _, tc := range []struct {
		name  string
		data  []byte
		big   bool
		want  []Note
		isErr error
	}{
		{"two notes", two, false, []Note{{"NetBSD", 1, []byte{1, 2, 3, 4}}, {"PaX", 3, []byte{9, 0, 0, 0}[:1]}}, nil},
		{"big-endian", elftest.Note(true, "NetBSD", 1, []byte{0, 0, 0, 7}), true, []Note{{"NetBSD", 1, []byte{0, 0, 0, 7}}}, nil},
		{"stray bytes", append(elftest.Note(false, "a", 1, nil), 1, 2, 3), false, nil, ErrBadELF},
		{"descriptor past the end", elftest.Note(false, "NetBSD", 1, []byte{1, 2, 3, 4})[:20], false, nil, ErrBadELF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := elftest.File{BigEndian: tc.big, Entry: 0x100000, Segs: []elftest.Seg{{Vaddr: 0x100000, Paddr: 0x100000, Data: []byte{1}}},
				Secs: []elftest.Sec{{Name: ".note", Type: SHTNote, Data: tc.data}}}
			b := f.Build()
			h, err := ReadHeader(bytes.NewReader(b), uint64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			secs, _, err := h.Sections(bytes.NewReader(b), uint64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			// Wanting none, FindNote shows each note to want.
			var got []Note
			_, ok, err := FindNote(bytes.NewReader(b), uint64(len(b)), h, nil, secs, func(name []byte, typ uint32, desc []byte) bool {
				got = append(got, Note{string(name), typ, bytes.Clone(desc)})
				return false
			})
			if tc.isErr != nil {
				if !errors.Is(err, tc.isErr) {
					t.Fatalf("error %v, want %v", err, tc.isErr)
				}
				return
			}
			if err != nil || ok || len(got) != len(tc.want) {
				t.Fatalf("FindNote saw %v, found %v, %v", got, ok, err)
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || got[i].Type != tc.want[i].Type || !bytes.Equal(got[i].Desc, tc.want[i].Desc) {
					t.Errorf("note %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			last := tc.want[len(tc.want)-1]
			n, ok, err := FindNote(bytes.NewReader(b), uint64(len(b)), h, nil, secs, func(name []byte, typ uint32, desc []byte) bool {
				return string(name) == last.Name && typ == last.Type
			})
			if err != nil || !ok || n.Name != last.Name || n.Type != last.Type || !bytes.Equal(n.Desc, last.Desc) {
				t.Errorf("FindNote(%s) = %+v, %v, %v", last.Name, n, ok, err)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r     *bytes.Reader
	bytes int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes += n
	return n, err
}

// TestFindNoteReadsOnce: section headers naming the same note bytes cost
// one read, those naming distinct ones are read up to MaxNotesTotal bytes
// and then refused, and reading stops at the note wanted.
func TestFindNoteReadsOnce(t *testing.T) {
	const areaLen = 60 << 10
	// A 24-byte note, then empty notes (12 zero bytes each).
	area := make([]byte, areaLen+2400)
	copy(area, elftest.Note(false, "PaX", 3, make([]byte, 8)))
	f := elftest.File{Entry: 0x100000, Segs: []elftest.Seg{{Vaddr: 0x100000, Paddr: 0x100000, Data: []byte{1}}},
		Secs: []elftest.Sec{{Name: ".note", Type: SHTNote, Data: area}}}
	b, offs := f.BuildOffsets()
	h, err := ReadHeader(bytes.NewReader(b), uint64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	secs, _, err := h.Sections(bytes.NewReader(b), uint64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	// n note sections over the area, section i at 24*i*step bytes in.
	notes := func(n, step int) []Section {
		ss := make([]Section, n)
		for i := range ss {
			ss[i] = Section{Index: i + 1, Type: SHTNote, Offset: offs[1] + uint64(24*i*step), Size: areaLen}
		}
		return ss
	}
	none := func([]byte, uint32, []byte) bool { return false }
	pax := func(name []byte, typ uint32, _ []byte) bool { return string(name) == "PaX" && typ == 3 }
	for _, tc := range []struct {
		name      string
		secs      []Section
		want      func([]byte, uint32, []byte) bool
		found     bool
		isErr     error
		readBytes int
	}{
		{"1000 headers, one area", notes(1000, 0), none, false, nil, areaLen},
		{"100 headers, 100 areas", notes(100, 1), none, false, ErrBadELF, MaxNotesTotal / areaLen * areaLen},
		{"100 headers, 100 areas, the first has the note", notes(100, 1), pax, true, nil, areaLen},
		{"the file's own", secs, pax, true, nil, len(area)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &countingReader{r: bytes.NewReader(b)}
			_, ok, err := FindNote(r, uint64(len(b)), h, nil, tc.secs, tc.want)
			if ok != tc.found || !errors.Is(err, tc.isErr) {
				t.Errorf("FindNote = %v, %v; want %v, %v", ok, err, tc.found, tc.isErr)
			}
			if r.bytes != tc.readBytes {
				t.Errorf("read %d bytes, want %d", r.bytes, tc.readBytes)
			}
		})
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		is   error
	}{
		{"short", []byte("\x7fEL"), ErrNotELF},
		{"not ELF", []byte("MZ\x90\x00 a PE file"), ErrNotELF},
		{"class 3", []byte("\x7fELF\x03\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), ErrUnsupportedELF},
		{"data 0", []byte("\x7fELF\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), ErrUnsupportedELF},
		{"truncated header", []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00"), ErrTruncated},
	} {
		if _, err := ReadHeader(bytes.NewReader(tc.b), uint64(len(tc.b))); !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
	}
}

// TestProgsCount: up to 128 program headers are read, as NetBSD's exec
// reads (ELF_MAXPHNUM); more are refused before any is looked at.
func TestProgsCount(t *testing.T) {
	for _, tc := range []struct {
		n     int
		class byte
		isErr error
	}{
		{128, Class32, nil},
		{128, Class64, nil},
		{129, Class32, ErrBadELF},
		{129, Class64, ErrBadELF},
	} {
		f := elftest.File{Class: tc.class, Entry: 0x100000}
		for i := range tc.n {
			f.Segs = append(f.Segs, elftest.Seg{Vaddr: 0x100000 + uint64(16*i), Paddr: 0x100000 + uint64(16*i), Data: make([]byte, 16)})
		}
		b := f.Build()
		h, err := ReadHeader(bytes.NewReader(b), uint64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		ps, err := h.Progs(bytes.NewReader(b), uint64(len(b)))
		if tc.isErr == nil && (err != nil || len(ps) != tc.n) {
			t.Errorf("ELF class %d, %d program headers: got %d, %v", tc.class, tc.n, len(ps), err)
		}
		if tc.isErr != nil && (!errors.Is(err, tc.isErr) || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("e_phnum %d", tc.n))) {
			t.Errorf("ELF class %d, %d program headers: error %v, want %v naming e_phnum", tc.class, tc.n, err, tc.isErr)
		}
	}
}
