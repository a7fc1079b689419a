package termsafe

import "testing"

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"./bin/sh", "./bin/sh"},
		{"", ""},
		{"evil\x1b[2J", `"evil\x1b[2J"`},
		{"new\nline", `"new\nline"`},
		{"caf\u00e9", `"caf\u00e9"`},
		{"del\x7f", `"del\x7f"`},
	}
	for _, tt := range tests {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"open x.img: no such file", "open x.img: no such file"},
		{"", ""},
		{`--compare "x": quoted`, `--compare "x": quoted`},
		{"open nl\nx.img: no such file", `open nl\nx.img: no such file`},
		{"a\r\tb", `a\r\tb`},
		{"evil\x1b[2J", `evil\x1b[2J`},
		{"del\x7f c1\u0085", `del\x7f c1\u0085`},
		{"caf\u00e9 \ufffd", "caf\u00e9 \ufffd"},
		{"bad\xffbyte\n", `bad\xffbyte\n`},
		// With anything to escape, a backslash is doubled: a name
		// written with backslashes is told from one with control
		// characters.
		{"x\\n\n", `x\\n\n`},
		{"x\n\n", `x\n\n`},
		{"dir\\\x1b[2J", `dir\\\x1b[2J`},
		{"open a\nb: bad magic \"\\x7fELF\"", `open a\nb: bad magic "\\x7fELF"`},
		// With nothing to escape, the string is as it was: a message
		// that quotes bytes as Go does reads as written.
		{`bad magic "\x00\x7fELF"`, `bad magic "\x00\x7fELF"`},
		{`C:\dir`, `C:\dir`},
		// A bidirectional override shows the rest reversed; line and
		// paragraph separators break the line; a zero-width joiner is
		// a format character too. Readable letters stay.
		{"a\u202eevil", `a\u202eevil`},
		{"a\u2028x\u2029y", `a\u2028x\u2029y`},
		{"zw\u200dj \u00e9", "zw\\u200dj \u00e9"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := Line(tt.in)
		if got != tt.want {
			t.Errorf("Line(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if other, ok := seen[got]; ok && other != tt.in {
			t.Errorf("Line(%q) = Line(%q) = %s", tt.in, other, got)
		}
		seen[got] = tt.in
	}
}
