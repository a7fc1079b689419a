package kstrip

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

func TestParseLayouts(t *testing.T) {
	tests := []struct {
		bits, ptr, size int
		kernbase        uint64
	}{
		{32, 4, 24, 0xc0000000},
		{64, 8, 48, 0xffffffff80000000},
	}
	for _, v := range variants {
		tc := tests[0]
		if v.bits == 64 {
			tc = tests[1]
		}
		path := buildKernel(t, v.opts(generic))
		k, orig := parseFile(t, path)
		stateSize := 2
		if v.version >= kstriptest.Version10 {
			stateSize = 1
		}
		if k.PointerSize() != tc.ptr || k.EntrySize() != tc.size || k.ByteOrder() != binary.LittleEndian || k.StateSize() != stateSize || k.Version() != v.version {
			t.Errorf("%v: pointer %d entry %d order %v state size %d version %d", v, k.PointerSize(), k.EntrySize(), k.ByteOrder(), k.StateSize(), k.Version())
		}
		if len(k.Entries) != len(generic) {
			t.Fatalf("%v: %d entries, want %d", v, len(k.Entries), len(generic))
		}
		for i, w := range generic {
			e := k.Entries[i]
			if e.Index != i || e.Name != w.Name || e.Attach != w.Attach || e.Unit != w.Unit || e.State != State(w.State) {
				t.Errorf("%v entry %d = %+v, want %+v", v, i, e, w)
			}
			if (e.Parent == nil) != (w.Parent == nil) || (e.Parent != nil && *e.Parent != Parent(*w.Parent)) {
				t.Errorf("%v entry %d parent = %v, want %v", v, i, e.Parent, w.Parent)
			}
			if e.Offset != k.Offset()+int64(i*tc.size) {
				t.Errorf("%v entry %d offset %#x", v, i, e.Offset)
			}
		}
		if got, ok := k.Providers("ata"); !ok || fmt.Sprint(got) != "[pciide wdc]" {
			t.Errorf("%v: providers of ata = %v %v", v, got, ok)
		}
		if got, ok := k.Providers("isabus"); !ok || fmt.Sprint(got) != "[mainbus pcib ichlpcib]" {
			t.Errorf("%v: providers of isabus = %v %v", v, got, ok)
		}
		if got, ok := k.Providers("scsi"); !ok || len(got) != 0 {
			t.Errorf("%v: providers of scsi = %v %v", v, got, ok)
		}
		nd, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: v.bits, Version: v.version, Entries: generic, NoDrivers: true}))
		if got, ok := nd.Providers("ata"); ok || got != nil {
			t.Errorf("%v without cfdriver_list_initial: providers %v %v", v, got, ok)
		}
		// The terminator follows the last entry, and the address maps to the
		// file through a segment loaded at physical = virtual - KERNBASE.
		end := k.Offset() + int64(len(generic)*tc.size)
		if !allZero(orig[end : end+int64(tc.size)]) {
			t.Errorf("%v: no zero terminator at %#x", v, end)
		}
		f, err := elf.NewFile(bytes.NewReader(orig))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && k.Address() >= p.Vaddr && k.Address() < p.Vaddr+p.Filesz {
				found = true
				if p.Vaddr-p.Paddr != tc.kernbase || uint64(k.Offset()) != p.Off+k.Address()-p.Vaddr {
					t.Errorf("%v: segment vaddr %#x paddr %#x off %#x, cfdata at %#x offset %#x", v, p.Vaddr, p.Paddr, p.Off, k.Address(), k.Offset())
				}
			}
		}
		if !found {
			t.Errorf("%v: cfdata not in a PT_LOAD", v)
		}
	}
}

func TestBigEndianLayout(t *testing.T) {
	// Same table, byte-swapped by hand: the walker must take the order
	// from the ELF header (sh3eb, armeb, powerpc are big-endian ports).
	for _, v := range variants {
		if v.bits != 32 {
			continue
		}
		path := buildKernel(t, v.opts(generic))
		k, orig := parseFile(t, path)
		be := swapToBigEndian(t, orig, k)
		kb, err := Parse(slices.Clone(be))
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if kb.ByteOrder() != binary.BigEndian || len(kb.Entries) != len(k.Entries) || kb.StateSize() != k.StateSize() {
			t.Fatalf("%v big-endian parse: order %v, %d entries, state size %d", v, kb.ByteOrder(), len(kb.Entries), kb.StateSize())
		}
		for i := range k.Entries {
			a, b := k.Entries[i], kb.Entries[i]
			if a.Name != b.Name || a.Unit != b.Unit || a.State != b.State || a.Parent.String() != b.Parent.String() {
				t.Errorf("%v entry %d: little %+v big %+v", v, i, a, b)
			}
		}
		// Stripping both gives the same tables, each in its byte order.
		r, err := kb.Plan(Plan{Strip: true, Keep: defaultKeep(t, kb)})
		if err != nil {
			t.Fatal(err)
		}
		if err := kb.Apply(r); err != nil {
			t.Fatal(err)
		}
		checkOnlyStates(t, kb, r, be, kb.Bytes())
		if got := states(kb); !slices.Equal(got, afterDefault) {
			t.Errorf("%v big-endian states after strip:\n got %v\nwant %v", v, got, afterDefault)
		}
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	var b bytes.Buffer
	if err := WriteTable(&b, k.Entries); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(generic)+1 {
		t.Fatalf("%d lines, want %d", len(lines), len(generic)+1)
	}
	want := map[int]string{
		0:  "IDX NAME UNIT ATTACH AT IATTR STATE",
		1:  "0 mainbus0 0 mainbus root - notfound",
		15: "14 com0 0 com_isa isa? isa notfound",
		17: "16 com* 2 com_puc puc? puc star",
		27: "26 atabus* 0 atabus [ata]? ata star",
		41: "40 ne0 0 ne_isa isa? isa dnotfound",
		43: "42 sd0 0 sd scsibus0 scsibus notfound",
	}
	for n, w := range want {
		if got := strings.Join(strings.Fields(lines[n]), " "); got != w {
			t.Errorf("line %d = %q, want %q", n, got, w)
		}
	}
	j, err := json.Marshal(k.Entries[42])
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"index":42,"name":"sd","attach":"sd","unit":0,"state":"notfound","parent":{"iattr":"scsibus","name":"scsibus","unit":0},"offset":` + itoa(k.Entries[42].Offset) + `}`
	if string(j) != wantJSON {
		t.Errorf("JSON = %s, want %s", j, wantJSON)
	}
	var back Entry
	if err := json.Unmarshal(j, &back); err != nil || back.State != NotFound || back.Parent.Unit != 0 {
		t.Errorf("JSON round trip: %+v %v", back, err)
	}
}

// TestTinyFixture checks that testdata/netbsd-tiny, which the examples
// read, is still what kstriptest builds from Generic.
func TestTinyFixture(t *testing.T) {
	fresh, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	k, _ := parseFile(t, "testdata/netbsd-tiny")
	// Offsets depend on the toolchain; the table's content must not.
	for i := range k.Entries {
		k.Entries[i].Offset, fresh.Entries[i].Offset = 0, 0
	}
	a, _ := json.Marshal(fresh.Entries)
	b, _ := json.Marshal(k.Entries)
	if string(a) != string(b) {
		t.Errorf("testdata/netbsd-tiny is stale:\n%s\n%s", b, a)
	}
}

// TestParseKeepsCause: a kernel whose headers or symbol table debug/elf
// cannot read is malformed, with debug/elf's error wrapped. A symbol table
// of a size no whole number of symbols fill was "no symbol table", as a
// stripped kernel is, and neither error could be told by errors.As.
func TestParseKeepsCause(t *testing.T) {
	_, orig := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: generic}))
	order := binary.LittleEndian
	tests := []struct {
		name  string
		image func() []byte
		cause string // how the text of an error in the chain starts
		msg   string
	}{
		{"symbol table size not a multiple of a symbol's", func() []byte {
			b := clone(orig)
			i, _ := sectionOfType(t, b, elf.SHT_SYMTAB)
			at := sectionHeader(b, i) + 20 // sh_size
			order.PutUint32(b[at:], order.Uint32(b[at:])-1)
			return b
		}, "length of symbol section is not a multiple of SymSize", "malformed ELF file: reading the symbol table: length of symbol section"},
		{"unreadable headers", func() []byte {
			b := clone(orig)
			b[elf.EI_VERSION] = 9
			return b
		}, "unknown ELF version", "malformed ELF file: its headers cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.image())
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrNoSymbols) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v, want ErrMalformed saying %q", err, tt.msg)
			}
			if !wraps(err, tt.cause) {
				t.Errorf("err %v does not wrap debug/elf's %q", err, tt.cause)
			}
		})
	}
}

// wraps reports whether err or an error it wraps starts with msg.
func wraps(err error, msg string) bool {
	if err == nil {
		return false
	}
	if strings.HasPrefix(err.Error(), msg) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return wraps(u.Unwrap(), msg)
	case interface{ Unwrap() []error }:
		return slices.ContainsFunc(u.Unwrap(), func(e error) bool { return wraps(e, msg) })
	}
	return false
}
