package kstrip

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestLayoutChoice checks how Parse picks NetBSD 9's or 10's struct
// cfdata: by the version note, checked against the table, and by the
// table alone when the note is missing or from 9.99; and that it refuses
// a table it cannot place rather than write a state into a unit.
func TestLayoutChoice(t *testing.T) {
	notFound := []kstriptest.Entry{
		{Name: "mainbus", Attach: "mainbus"},
		{Name: "com", Attach: "com_isa", Unit: 1, Parent: par("isa", "", 0)},
	}
	state5 := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus", State: 5}}
	tests := []struct {
		name string
		o    kstriptest.Options
		// descsz, when not nil, is written over the ident note's n_descsz:
		// a NetBSD note whose desc is not the 4-byte __NetBSD_Version__
		// names no version, and the table decides alone.
		descsz  *uint32
		packed  bool
		wantErr []string // substrings of the ErrLayout error; nil for none
	}{
		{name: "9.1 note", o: kstriptest.Options{Version: kstriptest.Version91}},
		{name: "10.0 note", o: kstriptest.Options{Version: kstriptest.Version10}, packed: true},
		{name: "10.1 note", o: kstriptest.Options{Version: 1001000000}, packed: true},
		{name: "no note, 9.x table", o: kstriptest.Options{NoNote: true, Layout: 9}},
		{name: "no note, 10.x table", o: kstriptest.Options{NoNote: true, Layout: 10}, packed: true},
		{name: "9.99 note, 9.x table", o: kstriptest.Options{Version: 999008000, Layout: 9}},
		{name: "9.99 note, 10.x table", o: kstriptest.Options{Version: 999008000, Layout: 10}, packed: true},
		{name: "all notfound with a 10.0 note", o: kstriptest.Options{Version: kstriptest.Version10, Entries: notFound}, packed: true},
		{name: "all notfound with a 9.1 note", o: kstriptest.Options{Version: kstriptest.Version91, Entries: notFound}},
		{name: "10.0 note without a desc, 9.x table", o: kstriptest.Options{Version: kstriptest.Version10, Layout: 9}, descsz: new(uint32(0))},
		{name: "9.1 note with a 2-byte desc, 10.x table", o: kstriptest.Options{Version: kstriptest.Version91, Layout: 10}, descsz: new(uint32(2)), packed: true},
		{
			name:    "10.0 note, 9.x table",
			o:       kstriptest.Options{Version: kstriptest.Version10, Layout: 9},
			wantErr: []string{"NetBSD version 1000000000", "cf_unit:24 at offset 8", "unit 131072 (0x20000)", "disagree"},
		},
		{
			name:    "9.1 note, 10.x table",
			o:       kstriptest.Options{Version: kstriptest.Version91, Layout: 10},
			wantErr: []string{"NetBSD version 901000000", "short cf_fstate at 10", "cf_fstate 512", "disagree"},
		},
		{
			name:    "fits neither",
			o:       kstriptest.Options{NoNote: true, Entries: []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus", State: 0x0707}}},
			wantErr: []string{"fits neither", "cf_fstate 1799 at file offset", "cf_fstate 7 at file offset"},
		},
		// NetBSD defines cf_fstate 0 to 4 (FSTATE_NOTFOUND to
		// FSTATE_DNOTFOUND); 5 is the first it does not.
		{
			name:    "9.1 note, cf_fstate 5",
			o:       kstriptest.Options{Version: kstriptest.Version91, Entries: state5},
			wantErr: []string{"NetBSD version 901000000", "cf_fstate 5 at file offset", "(0 to 4)"},
		},
		{
			name:    "10.0 note, cf_fstate 5",
			o:       kstriptest.Options{Version: kstriptest.Version10, Entries: state5},
			wantErr: []string{"fits neither", "cf_fstate 5 at file offset", "(0 to 4)"},
		},
		// Read as 10.x, the 9.x short 5 is unit bits (0x50000): with no
		// note to choose by, neither layout reads the table sensibly.
		{
			name:    "no note, 9.x table, cf_fstate 5",
			o:       kstriptest.Options{NoNote: true, Layout: 9, Entries: state5},
			wantErr: []string{"fits neither", "cf_fstate 5 at file offset", "unit 327680 (0x50000)"},
		},
		{
			name:    "no note, all notfound",
			o:       kstriptest.Options{NoNote: true, Entries: notFound},
			wantErr: []string{"both as NetBSD 9", "no NetBSD version note", "cannot tell"},
		},
	}
	for _, tc := range tests {
		for _, bits := range []int{32, 64} {
			o := tc.o
			o.Bits = bits
			if o.Entries == nil {
				o.Entries = generic
			}
			t.Run(tc.name+"/"+itoa(int64(bits)), func(t *testing.T) {
				data := readFile(t, buildKernel(t, o))
				if tc.descsz != nil {
					setNoteDescsz(t, data, *tc.descsz)
				}
				k, err := Parse(data)
				if tc.wantErr != nil {
					if !errors.Is(err, ErrLayout) {
						t.Fatalf("Parse: %v, want ErrLayout", err)
					}
					// Facts only: the CLI says what to do (kstripKernelAdvice).
					if strings.Contains(err.Error(), "use ") {
						t.Errorf("error %q gives advice", err)
					}
					for _, w := range tc.wantErr {
						w = strings.ReplaceAll(w, "offset 8", "offset "+itoa(int64(bits/4)))
						w = strings.ReplaceAll(w, "at 10", "at "+itoa(int64(bits/4+2)))
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q lacks %q", err, w)
						}
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if k.lay.packed != tc.packed {
					t.Fatalf("read as %s", k.lay.name())
				}
				wantVersion := o.Version
				if o.NoNote || tc.descsz != nil {
					wantVersion = 0
				}
				if k.Version() != wantVersion {
					t.Errorf("version %d, want %d", k.Version(), wantVersion)
				}
				for i, w := range o.Entries {
					if e := k.Entries[i]; e.Unit != w.Unit || e.State != State(w.State) {
						t.Errorf("cfdata[%d] = unit %d %v, want unit %d %v", i, e.Unit, e.State, w.Unit, State(w.State))
					}
				}
			})
		}
	}
}

// TestNetBSD10Strip is the case that went wrong: on a NetBSD 10 kernel a
// star entry read as unknown(512) and stayed enabled, and disabling a
// fixed entry wrote 4 into its unit's high bits. Now every disabled
// entry reads disabled to a fresh parse, with its unit unchanged.
func TestNetBSD10Strip(t *testing.T) {
	for _, bits := range []int{32, 64} {
		k, orig := parseFile(t, buildKernel(t, kstriptest.Options{Bits: bits, Version: kstriptest.Version10, Entries: generic}))
		r, err := k.Plan(Plan{Disable: []string{"com", "fdc"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Warnings) != 0 {
			t.Errorf("%d-bit warnings: %q", bits, r.Warnings)
		}
		if err := k.Apply(r); err != nil {
			t.Fatal(err)
		}
		k2, err := Parse(append([]byte(nil), k.Bytes()...))
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range append(k2.Match("com"), k2.Match("fdc")...) {
			e := k2.Entries[i]
			if !e.State.Disabled() || e.Unit != generic[i].Unit {
				t.Errorf("%d-bit cfdata[%d] %s after disabling: unit %d %v, want unit %d disabled", bits, i, e.Label(), e.Unit, e.State, generic[i].Unit)
			}
			off := e.Offset + int64(k2.lay.unit)
			if string(orig[off:off+3]) != string(k.Bytes()[off:off+3]) {
				t.Errorf("%d-bit cfdata[%d]: unit bytes changed", bits, i)
			}
		}
	}
}

// setNoteDescsz writes n over the n_descsz of the note that begins
// section .note.netbsd.ident of the little-endian image, in place.
func setNoteDescsz(t *testing.T, image []byte, n uint32) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.netbsd.ident")
	if s == nil || s.Size < 12 {
		t.Fatal("no .note.netbsd.ident")
	}
	binary.LittleEndian.PutUint32(image[s.Offset+4:], n)
}
