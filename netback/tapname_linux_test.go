//go:build linux

package netback

import (
	"strings"
	"testing"
)

// keptASCII is why CheckTapName refuses a character Linux takes.
const keptASCII = "Linux would take it, but the name is kept to printable ASCII, as it is echoed to terminals and logs and typed to delete the tap"

// TestCheckTapName: the names Linux takes as an interface's pass, but
// for those with a control or non-ASCII character (which Linux takes);
// the others are refused with the reason, which OpenTap gives after the
// name.
func TestCheckTapName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"tap0", ""},
		{"a", ""},
		{"abcdefghijklmno", ""},
		{"smol-h.1_x", ""},
		{"", "the name is empty: an interface name has 1 to 15 characters"},
		{"abcdefghijklmnop", "the name is 16 bytes: an interface name has at most 15 characters"},
		{".", ". is not an interface name: Linux refuses . and .."},
		{"..", ".. is not an interface name: Linux refuses . and .."},
		{"a/b", "character '/' is not allowed in an interface name"},
		{"x:y", "character ':' is not allowed in an interface name"},
		{"a b", "character U+0020 is not allowed in an interface name: Linux refuses white space"},
		{"a\tb", "character U+0009 is not allowed in an interface name: Linux refuses white space"},
		{"a\rb", "character U+000D is not allowed in an interface name: Linux refuses white space"},
		{"tap\x01", "character U+0001 is not allowed in a tap name: " + keptASCII},
		{"tap\x7f", "character U+007F is not allowed in a tap name: " + keptASCII},
		{"tapé", "character U+00E9 is not allowed in a tap name: " + keptASCII},
	}
	for _, tt := range tests {
		err := CheckTapName(tt.name)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckTapName(%q) = %v, want it taken", tt.name, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("CheckTapName(%q) = %v, want %q", tt.name, err, tt.want)
		}
		if _, err := OpenTap(tt.name); err == nil || !strings.HasPrefix(err.Error(), "tap name ") || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("OpenTap(%q) = %v, want `tap name %q: %s`", tt.name, err, tt.name, tt.want)
		}
	}
}
