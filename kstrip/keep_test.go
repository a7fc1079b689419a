package kstrip

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

// TestReadKeepListErrors: a read that fails names the line being read
// (it said "after line 0" of a list's first line), and a line too long
// for a name says so instead of bufio's "token too long".
func TestReadKeepListErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
		is             error
	}{
		{"first line too long", strings.Repeat("x", bufio.MaxScanTokenSize+1), "keep list line 1: longer than 65536 bytes, so not a list of names", bufio.ErrTooLong},
		{"third line too long", "com\n# c\n" + strings.Repeat("x", bufio.MaxScanTokenSize+1), "keep list line 3: longer than", bufio.ErrTooLong},
		{"NUL", "com\nld\x00\n", `keep list line 2: name "ld\x00" contains a NUL byte`, nil},
		// A kernel configuration's words are no names: said of its first
		// such line, not as hundreds of unknown names.
		{"configuration keyword", "mainbus\n# c\noptions INSECURE\n", `keep list line 3, "options INSECURE", is written as in a kernel configuration (config(5))`, ErrConfigFile},
		{"configuration attachment", "com0 at isa? port 0x3f8 irq 4 # console\n", `keep list line 1, "com0 at isa? port 0x3f8 irq 4", is written`, ErrConfigFile},
		{"pseudo-device", "pseudo-device\tbpf\n", `line 1, "pseudo-device\tbpf"`, ErrConfigFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadKeepList(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want %q (matching %v)", err, tt.want, tt.is)
			}
		})
	}
	names, err := ReadKeepList(strings.NewReader("mainbus # root\ncom0, ld\n# com0 at isa?\natabus\n"))
	if err != nil || strings.Join(names, " ") != "mainbus com0 ld atabus" {
		t.Errorf("got %q, %v", names, err)
	}
}
