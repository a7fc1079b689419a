package kstrip

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteTable prints entries as an aligned table (names made Printable):
// index, name as userconf
// shows it, cf_unit (the first unit of a Star entry), attachment, parent ("root", "isa?", "mainbus0", or
// "[iattr]?" when any device with that interface attribute will do), the
// parent's interface attribute, and state.
func WriteTable(w io.Writer, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "IDX\tNAME\tUNIT\tATTACH\tAT\tIATTR\tSTATE")
	for i := range entries {
		e := &entries[i]
		unit := strconv.Itoa(e.Unit)
		iattr := "-"
		if e.Parent != nil {
			iattr = Printable(e.Parent.IAttr)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Index, e.Label(), unit, Printable(e.Attach), e.Parent, iattr, e.State)
	}
	return tw.Flush()
}
