package netbsdboot

import (
	"bytes"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// TestPlanSymbolsManyStrtabs: which string tables a symbol table links to
// is looked up once per table, not by a scan of every section per string
// table: 65535 string tables once took planSymbols 38 s. Allocations do
// not show the scan, so a generous deadline (the lookup takes
// milliseconds) does; the copy itself must take exactly the linked
// string table.
func TestPlanSymbolsManyStrtabs(t *testing.T) {
	const n = 0xffff
	h := bootelf.Header{Class: bootelf.Class32, Data: bootelf.DataLSB, Raw: make([]byte, 52), Shnum: n}
	secs := make([]bootelf.Section, n)
	for i := range secs {
		secs[i] = bootelf.Section{Index: i, Type: bootelf.SHTStrtab, Offset: 0x10, Size: 8}
	}
	secs[0] = bootelf.Section{}
	secs[1] = bootelf.Section{Index: 1, Type: bootelf.SHTSymtab, Offset: 0x20, Size: 16, Link: n - 1}
	raw := make([]byte, n*40)
	file := make([]byte, 0x40)
	done := make(chan struct{})
	var a *symArea
	var err error
	go func() {
		a, err = planSymbols(bytes.NewReader(file), uint64(len(file)), h, secs, raw, 0x200000)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("planSymbols over %d string tables still running after 15 s", n)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !a.symtab || len(a.pieces) != 2 || a.pieces[0].what != "section 1 (type 2)" || a.pieces[1].what != "section 65534 (type 3)" {
		t.Errorf("pieces %+v, symtab %v; want section 1 and section 65534", a.pieces, a.symtab)
	}
}
