package kstrip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// hostileKernel is a little-endian ELF32 executable whose cfdata has n
// entries, each named name, attached as name, at "name?" with interface
// attribute name: every pointer leads to the one string and the one
// struct cfparent. Such a file gzips to almost nothing.
func hostileKernel(n int, name string) []byte {
	const (
		base    = 0xc0100000
		dataOff = 0x1000
		parOff  = 0x80  // struct cfparent, after the string
		tabOff  = 0x100 // cfdata
	)
	le := binary.LittleEndian
	data := make([]byte, tabOff+24*(n+1))
	copy(data, name)
	le.PutUint32(data[parOff:], base)         // cfp_iattr
	le.PutUint32(data[parOff+4:], base)       // cfp_parent
	le.PutUint32(data[parOff+8:], 0xffffffff) // cfp_unit: ?
	for i := 0; i < n; i++ {
		e := data[tabOff+24*i:]
		le.PutUint32(e[0:], base) // cf_name
		le.PutUint32(e[4:], base) // cf_atname
		le.PutUint16(e[10:], uint16(Star))
		le.PutUint32(e[20:], base+parOff) // cf_pspec
	}
	symtab := make([]byte, 32) // the null symbol, then cfdata
	le.PutUint32(symtab[16:], 1)
	le.PutUint32(symtab[20:], base+tabOff)
	le.PutUint32(symtab[24:], uint32(24*n))
	symtab[28] = 0x11 // STB_GLOBAL, STT_OBJECT
	le.PutUint16(symtab[30:], 1)
	strtab := []byte("\x00cfdata\x00")
	shstr := []byte("\x00.data\x00.symtab\x00.strtab\x00.shstrtab\x00")

	img := make([]byte, dataOff)
	img = append(img, data...)
	symOff := len(img)
	img = append(img, symtab...)
	strOff := len(img)
	img = append(img, strtab...)
	shstrOff := len(img)
	img = append(img, shstr...)
	for len(img)%4 != 0 {
		img = append(img, 0)
	}
	shOff := len(img)
	sh := func(name, typ, flags, addr, off, size, link, info, align, entsize int) {
		for _, v := range []int{name, typ, flags, addr, off, size, link, info, align, entsize} {
			img = le.AppendUint32(img, uint32(v))
		}
	}
	// A variable: base as an int constant overflows a 32-bit int, and
	// sh puts back its 32 bits either way.
	baseField := uint32(base)
	sh(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	sh(1, 1, 3, int(baseField), dataOff, len(data), 0, 0, 4, 0) // .data
	sh(7, 2, 0, 0, symOff, len(symtab), 3, 1, 4, 16)            // .symtab
	sh(15, 3, 0, 0, strOff, len(strtab), 0, 0, 1, 0)            // .strtab
	sh(23, 3, 0, 0, shstrOff, len(shstr), 0, 0, 1, 0)           // .shstrtab

	copy(img, "\x7fELF\x01\x01\x01")
	le.PutUint16(img[16:], 2) // ET_EXEC
	le.PutUint16(img[18:], 3) // EM_386
	le.PutUint32(img[20:], 1)
	le.PutUint32(img[24:], base)
	le.PutUint32(img[28:], 52) // e_phoff
	le.PutUint32(img[32:], uint32(shOff))
	le.PutUint16(img[40:], 52) // e_ehsize
	le.PutUint16(img[42:], 32) // e_phentsize
	le.PutUint16(img[44:], 1)  // e_phnum
	le.PutUint16(img[46:], 40) // e_shentsize
	le.PutUint16(img[48:], 5)  // e_shnum
	le.PutUint16(img[50:], 4)  // e_shstrndx
	ph := img[52:]
	for i, v := range []uint32{1, dataOff, base, base & 0x0fffffff, uint32(len(data)), uint32(len(data)), 6, 0x1000} {
		le.PutUint32(ph[4*i:], v)
	}
	return img
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileTableBounds: a small (gzipped) file could claim a million
// entries that all point at one long name; each was read anew and kept
// (four copies per entry), and the listing held every cell until its end:
// gigabytes. Now a table or a name past its bound is refused saying which
// bound, and one at the bounds reads each name once and lists in memory
// that does not grow with the table.
func TestHostileTableBounds(t *testing.T) {
	long := strings.Repeat("A", maxName-1)
	tests := []struct {
		name    string
		n       int
		entName string
		err     error
		want    []string
	}{
		{"entries past the bound", maxEntries + 1, "com", ErrNoTerminator, []string{fmt.Sprintf("after %d entries, the most a table may have", maxEntries)}},
		{"name past the bound", 10, long + "A", ErrBadString, []string{"cfdata[0]", "cf_name", fmt.Sprintf("names are read up to %d bytes", maxName)}},
		{"at the bounds", maxEntries, long, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := hostileKernel(tt.n, tt.entName)
			k, err := Parse(img)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse: %v, want %v", err, tt.err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Parse: %v, want it to say %q", err, w)
					}
				}
				return
			}
			if err != nil || len(k.Entries) != tt.n || k.Entries[tt.n-1].Name != long {
				t.Fatalf("Parse: %v; want %d entries named %q", err, tt.n, long)
			}
			// The names are read once, not once an entry: the count of
			// allocations does not grow with the table, nor do its bytes
			// but for the Entries themselves.
			if a := testing.AllocsPerRun(2, func() { Parse(img) }); a > 500 {
				t.Errorf("Parse of %d entries: %.0f allocations, want at most 500", tt.n, a)
			}
			if b := allocated(func() { Parse(img) }); b > 160*uint64(tt.n) {
				t.Errorf("Parse of %d entries: %d bytes allocated (%d an entry), want at most 160 an entry", tt.n, b, b/uint64(tt.n))
			}
			// The table is written as it is made, not held until its end.
			if a := testing.AllocsPerRun(2, func() { WriteTable(io.Discard, k.Entries) }); a > 10 {
				t.Errorf("WriteTable of %d entries: %.0f allocations, want at most 10", tt.n, a)
			}
		})
	}
}

// TestWriteTableAligned: WriteTable, which pads its columns itself, lays
// a table out as text/tabwriter did (padding 2), names that need quoting
// and Star entries included.
func TestWriteTableAligned(t *testing.T) {
	for _, o := range []kstriptest.Options{
		{Bits: 32, Entries: generic},
		{Bits: 64, Entries: hostileEntries, NoDrivers: true}, // printable_test.go
	} {
		k, _ := parseFile(t, buildKernel(t, o))
		var want bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "IDX\tNAME\tUNIT\tATTACH\tAT\tIATTR\tSTATE")
		for _, e := range k.Entries {
			iattr := "-"
			if e.Parent != nil {
				iattr = Printable(e.Parent.IAttr)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Index, e.Label(), e.Unit, Printable(e.Attach), e.Parent, iattr, e.State)
		}
		tw.Flush()
		var got bytes.Buffer
		if err := WriteTable(&got, k.Entries); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("WriteTable:\n%s\nwant:\n%s", got.String(), want.String())
		}
	}
}

// TestWarningsOnce: every entry of a hostile table attached at an
// interface attribute no driver table explains was warned of, each with
// the same line (65,536 of them, megabytes of --json); a warning is now
// given once.
func TestWarningsOnce(t *testing.T) {
	img := hostileKernel(1000, "pci")
	// cfp_parent of the one struct cfparent: none, so any device with
	// the attribute will do, and the kernel has no driver table to say
	// which.
	binary.LittleEndian.PutUint32(img[0x1000+0x80+4:], 0)
	k, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	r, err := k.Plan(Plan{Strip: true, Keep: []string{"pci"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `pci* (pci) attaches at any device with interface attribute "pci"`) {
		t.Errorf("%d warnings, want one: %q", len(r.Warnings), r.Warnings[:min(len(r.Warnings), 3)])
	}
}
