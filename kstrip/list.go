package kstrip

import (
	"bufio"
	"io"
	"strconv"
)

// tableHeader is WriteTable's first row.
var tableHeader = [...]string{"IDX", "NAME", "UNIT", "ATTACH", "AT", "IATTR", "STATE"}

// WriteTable prints entries as an aligned table (names made Printable):
// index, name as userconf
// shows it, cf_unit (the first unit of a Star entry), attachment, parent ("root", "isa?", "mainbus0", or
// "[iattr]?" when any device with that interface attribute will do), the
// parent's interface attribute, and state. Each column but the last is
// as wide as its widest cell plus two spaces.
//
// It makes two passes over entries (the widths, then the rows) and
// builds no row in memory, so a table of any length costs the same
// memory to print.
func WriteTable(w io.Writer, entries []Entry) error {
	var widths [len(tableHeader)]int
	for c, h := range tableHeader {
		widths[c] = len(h)
	}
	var r tableRow
	for i := range entries {
		r.fill(&entries[i])
		for c := range widths {
			widths[c] = max(widths[c], r.width(c))
		}
	}
	bw := bufio.NewWriter(w)
	pad := func(c, n int) {
		if c == len(widths)-1 {
			bw.WriteByte('\n')
			return
		}
		for n = widths[c] + 2 - n; n > 0; n-- {
			bw.WriteByte(' ')
		}
	}
	for c, h := range tableHeader {
		bw.WriteString(h)
		pad(c, len(h))
	}
	for i := range entries {
		r.fill(&entries[i])
		for c := range widths {
			r.write(bw, c)
			pad(c, r.width(c))
		}
	}
	return bw.Flush()
}

// cell is one cell of a table row, kept in pieces so that no string is
// built for it: a, b, then num's digits when hasNum, then z.
type cell struct {
	a, b, z string
	num     int
	hasNum  bool
}

// tableRow holds the cells of one entry's row.
type tableRow struct {
	cells   [len(tableHeader)]cell
	scratch [24]byte
}

// fill sets r's cells to entry e's, as Entry.Label and Parent.String
// render them.
func (r *tableRow) fill(e *Entry) {
	name := cell{a: Printable(e.Name), num: e.Unit, hasNum: true}
	if e.State.IsStar() {
		name = cell{a: name.a, z: "*"}
	}
	at, iattr := cell{a: "root"}, cell{a: "-"}
	if p := e.Parent; p != nil {
		iattr = cell{a: Printable(p.IAttr)}
		switch {
		case p.Name == "":
			at = cell{a: "[", b: iattr.a, z: "]?"}
		case p.Unit == AnyUnit:
			at = cell{a: Printable(p.Name), z: "?"}
		default:
			at = cell{a: Printable(p.Name), num: p.Unit, hasNum: true}
		}
	}
	r.cells = [...]cell{
		{num: e.Index, hasNum: true},
		name,
		{num: e.Unit, hasNum: true},
		{a: Printable(e.Attach)},
		at,
		iattr,
		{a: e.State.String()},
	}
}

// digits returns c's number as text in r's scratch space.
func (r *tableRow) digits(c *cell) []byte {
	if !c.hasNum {
		return nil
	}
	return strconv.AppendInt(r.scratch[:0], int64(c.num), 10)
}

// width is the length of cell c.
func (r *tableRow) width(c int) int {
	x := &r.cells[c]
	return len(x.a) + len(x.b) + len(r.digits(x)) + len(x.z)
}

// write writes cell c to w.
func (r *tableRow) write(w *bufio.Writer, c int) {
	x := &r.cells[c]
	w.WriteString(x.a)
	w.WriteString(x.b)
	w.Write(r.digits(x))
	w.WriteString(x.z)
}
