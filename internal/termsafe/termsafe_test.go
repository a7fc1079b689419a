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
	}
	for _, tt := range tests {
		if got := Line(tt.in); got != tt.want {
			t.Errorf("Line(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
