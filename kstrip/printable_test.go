package kstrip

import (
	"bytes"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// hostileEntries have names with terminal escape sequences, as a hostile
// kernel may: no driver table, whose C identifiers could not hold them.
var hostileEntries = []kstriptest.Entry{
	{Name: "mainbus", Attach: "mainbus"},
	{Name: "evil\x1b[2J", Attach: "evil\x1b]0;pwned\x07", State: 2, Parent: par("mainbusbus", "mainbus", -1)},
	{Name: "cpu", Attach: "cpu\x1b[31m", State: 2, Parent: par("mainbusbus", "mainbus", -1)},
}

// terminalSafe fails unless out holds no control byte but newline and
// tab, and no byte past ASCII.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range []byte(out) {
		if (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f {
			t.Errorf("%s holds byte %#x: %q", what, c, out)
			return
		}
	}
}

// TestPrintableNames: names read from the kernel reached the terminal as
// they were, escape sequences included (a table that clears the screen,
// retitles the window). Names with bytes a terminal acts on are now
// quoted with escapes; plain names are printed as they are.
func TestPrintableNames(t *testing.T) {
	k, _ := parseFile(t, buildKernel(t, kstriptest.Options{Bits: 32, Entries: hostileEntries, NoDrivers: true}))
	var table bytes.Buffer
	if err := WriteTable(&table, k.Entries); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  func() string
		want []string
	}{
		{"table", table.String, []string{`"evil\x1b[2J"*`, `"evil\x1b]0;pwned\a"`, `"cpu\x1b[31m"`, "mainbus0"}},
		{"warnings", func() string {
			r, err := k.Plan(Plan{Strip: true, Keep: []string{"mainbus", "cpu\x1b[31"}, Enable: []string{"cpu"}, Disable: []string{"cpu"}, IgnoreUnknown: true})
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, p := range r.KeptParents {
				kept = append(kept, p.For)
			}
			return strings.Join(append(r.Warnings, kept...), "\n")
		}, []string{`did you mean "cpu\x1b[31m"?`, `cpu* ("cpu\x1b[31m") is both kept and disabled`}},
		{"nothing kept", func() string {
			_, err := k.Plan(Plan{Strip: true, Keep: []string{"cpu\x1b[31"}})
			if err == nil {
				t.Fatal("a keep list that matches nothing was taken")
			}
			return err.Error()
		}, []string{`(did you mean "cpu\x1b[31m" for "cpu\x1b[31"?)`, `of this kernel ("cpu\x1b[31")`}},
		{"parents kept", func() string {
			r, err := k.Plan(Plan{Strip: true, Keep: []string{"evil\x1b[2J"}})
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, p := range r.KeptParents {
				kept = append(kept, p.Label+" for "+p.For)
			}
			return strings.Join(kept, "\n")
		}, []string{`mainbus0 for "evil\x1b[2J"* ("evil\x1b]0;pwned\a")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out()
			terminalSafe(t, tt.name, out)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s lacks %s:\n%s", tt.name, w, out)
				}
			}
		})
	}
	for _, s := range []string{"com_isa", "mainbus", "[ata]?", ""} {
		if got := Printable(s); got != s {
			t.Errorf("Printable(%q) = %q, want it unchanged", s, got)
		}
	}
}
