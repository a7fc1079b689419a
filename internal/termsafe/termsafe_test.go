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
