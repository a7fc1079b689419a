package bootargs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckRoot(t *testing.T) {
	for _, tc := range []struct {
		dev  string
		want string // "" when accepted; else a piece of the error
	}{
		{"ld0a", ""},
		{"wd1p", ""},
		{"raid9e", ""},
		{"md0a", ""},
		{strings.Repeat("x", 13) + "0a", ""},
		{"ld0", "not one unit digit and one partition letter"},
		{"ld10a", "not one unit digit and one partition letter"},
		{"ld0ab", "not one unit digit and one partition letter"},
		{"ld0z", `partition 'z' is not one of a-p`},
		{"ld0A", `partition 'A' is not one of a-p`},
		{"ldxa", "not one unit digit and one partition letter"},
		{"ld-a", `unit '-' is not one digit`},
		{"0a", "does not start with a driver name"},
		{"LD0a", "does not start with a driver name"},
		{"", "does not start with a driver name"},
		{"dk0", "not one unit digit and one partition letter"},
		{strings.Repeat("x", 14) + "0a", "16 bytes, but the kernel takes at most 15"},
	} {
		err := CheckRoot(tc.dev)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.dev, err)
		case tc.want == "":
		case !errors.Is(err, ErrAppend):
			t.Errorf("%q: error %v, want ErrAppend", tc.dev, err)
		case !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `root="`+tc.dev+`"`) ||
			!strings.Contains(err.Error(), "driver name, one unit digit and a partition letter a-p"):
			t.Errorf("%q: error %q does not name the value, say %q and the expected shape", tc.dev, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in        string
		flags     string
		howto     uint32
		words     []string
		multiboot string
	}{
		{"", "", 0, nil, ""},
		{"console=com root=ld0a", "", 0, []string{"console=com", "root=ld0a"}, "console=com root=ld0a"},
		{"console=com root=ld0a -s", "s", RBSingle, []string{"console=com", "root=ld0a"}, "-s console=com root=ld0a"},
		{"-s console=com -v\troot=ld0a  -sq", "svq", RBSingle | ABVerbose | ABQuiet, []string{"console=com", "root=ld0a"}, "-svq console=com root=ld0a"},
		{"-1234abcdmqsvxz", "1234abcdmqsvxz", RBMD1 | RBMD2 | RBMD3 | RBMD4 | RBAskName | RBHalt | RBUserconf | RBKDB | RBMiniroot | ABQuiet | RBSingle | ABVerbose | ABDebug | ABSilent, nil, "-1234abcdmqsvxz"},
		// A lone "-" holds no flag; it is passed as it stands.
		{"- init=/bin/sh", "", 0, []string{"-", "init=/bin/sh"}, "- init=/bin/sh"},
		// Only root= is a root device: rootdev= and values naming root are words.
		{"rootdev=x init=root=0", "", 0, []string{"rootdev=x", "init=root=0"}, "rootdev=x init=root=0"},
	} {
		l, err := Parse(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if l.Flags != tc.flags || l.Howto != tc.howto || !slices.Equal(l.Words, tc.words) {
			t.Errorf("%q: %+v, want flags %q howto %#x words %q", tc.in, l, tc.flags, tc.howto, tc.words)
		}
		if got := l.Multiboot(); got != tc.multiboot {
			t.Errorf("%q: multiboot line %q, want %q", tc.in, got, tc.multiboot)
		}
		// The kernel reads back what the line said.
		if again, err := Parse(l.Multiboot()); err != nil || again.Howto != l.Howto || again.Flags != l.Flags || !slices.Equal(again.Words, l.Words) {
			t.Errorf("%q: the multiboot line reads as %+v, %v", tc.in, again, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"-k", "-k"},
		{"console=com -sk", `"-sk": unknown boot flag -k`},
		{"--s", `unknown boot flag --`},
		{"console=com root=ld0", `root="ld0"`},
		{"root=ld0a root=ld10a", `root="ld10a"`},
		{"root=", `root=""`},
	} {
		if _, err := Parse(tc.in); !errors.Is(err, ErrAppend) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want ErrAppend naming %s", tc.in, err, tc.want)
		}
	}
}
