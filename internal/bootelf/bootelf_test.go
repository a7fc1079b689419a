package bootelf

import (
	"bytes"
	"errors"
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

func TestNotes(t *testing.T) {
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
			got, err := Notes(bytes.NewReader(b), uint64(len(b)), h, nil, secs)
			if tc.isErr != nil {
				if !errors.Is(err, tc.isErr) {
					t.Fatalf("error %v, want %v", err, tc.isErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("Notes = %v, %v", got, err)
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || got[i].Type != tc.want[i].Type || !bytes.Equal(got[i].Desc, tc.want[i].Desc) {
					t.Errorf("note %d = %+v, want %+v", i, got[i], tc.want[i])
				}
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
