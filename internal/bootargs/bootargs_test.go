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
		// Wedges: findroot matches dk0 by its unit digit and setroot
		// ignores the partition; a name goes on to finddevice.
		{"dk0", ""},
		{"dk9", ""},
		{"dk0a", ""},
		{"NAME=netbsdroot", ""},
		{"name=root", ""},
		{"wedge:root", ""},
		{"NAME=" + strings.Repeat("r", 10), ""},
		// Not a disk: the name becomes rootspec, root on NFS.
		{"vioif0", ""},
		{"wm12", ""},
		{"ld0", "ld is a disk driver with partitions"},
		{"wd1", "wd is a disk driver with partitions"},
		// device-mapper's dm is DV_DISK, so setroot reads a partition
		// (DEV_USES_PARTITIONS, kern_subr.c:178-181).
		{"dm0", "dm is a disk driver with partitions"},
		{"dm0a", ""},
		{"ld10a", `unit "10" has more than one digit`},
		{"dk10", `unit "10" has more than one digit`},
		{"ld10", `unit "10" has more than one digit`},
		{"ld0ab", `partition "ab" is not one letter a-p`},
		{"ld0z", `partition "z" is not one letter a-p`},
		{"ld0A", `partition "A" is not one letter a-p`},
		{"ldxa", "no unit number after the driver name"},
		{"ld-a", "no unit number after the driver name"},
		{"vioif", "no unit number after the driver name"},
		{"0a", "does not start with a driver name"},
		{"LD0a", "does not start with a driver name"},
		{"", "does not start with a driver name"},
		{"NAME=", "names no wedge"},
		{"wedge:", "names no wedge"},
		{"Wedge:root", "does not start with a driver name"},
		{strings.Repeat("x", 14) + "0a", "16 bytes, but the kernel takes at most 15"},
		{"NAME=" + strings.Repeat("r", 11), "16 bytes, but the kernel takes at most 15"},
	} {
		err := CheckRoot(tc.dev)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.dev, err)
		case tc.want == "":
		case !errors.Is(err, ErrAppend):
			t.Errorf("%q: error %v, want ErrAppend", tc.dev, err)
		case !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `root="`+tc.dev+`"`) ||
			!strings.Contains(err.Error(), "a disk partition such as ld0a, a wedge (dk0, or NAME= and its name) or a network interface"):
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

// TestParseConsole: console words NetBSD's multiboot entry would drop or
// misread are refused, naming the value and what is taken; the ones it
// reads as meant pass. Before bootargs checked them, multiboot passed
// every one of these and the guest printed nothing.
func TestParseConsole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil when accepted; else pieces of the error
	}{
		{"console=com", nil},
		{"console=pc", nil},
		{"console=com console_addr=0x3f8 console_speed=9600", nil},
		{"console=com console_addr=0x3F8", nil},
		{"console=com console_addr=0x03f8", nil},
		{"console=com console_addr=0x00003f8", nil}, // 9 characters, read whole
		{"console=com console_addr=1016", nil},      // decimal 0x3f8
		{"console=com console_speed=115200", nil},
		{"console=com console_speed=57600", nil},
		{"console=com console_speed=110", nil},       // divisor 1047, 0.03% off
		{"console=com console_speed=000009600", nil}, // 9 digits, read whole
		// Only com and pc reach the kernel (strncmp on the whole name).
		{"console=ttyS0", []string{`console="ttyS0"`, "console=com", "console=pc"}},
		{"console=com0", []string{`console="com0"`, "console=com"}},
		{"console=COM", []string{`console="COM"`}},
		{"console=serial", []string{`console="serial"`}},
		{"console=", []string{`console=""`}},
		{"console=com,9600", []string{`console="com,9600"`}},
		// A later console= is checked too.
		{"console=com console=ttyS0", []string{`console="ttyS0"`}},
		// Not 0x-hex or decimal as the kernel reads them.
		{"console=com console_addr=0X3F8", []string{`console_addr="0X3F8"`, "0x and hex digits, or decimal digits"}},
		{"console=com console_addr=0x3_f8", []string{`console_addr="0x3_f8"`, "0x and hex digits"}},
		{"console=com console_addr=0b1111111000", []string{`console_addr="0b1111111000"`}},
		{"console=com console_addr=0o1770", []string{`console_addr="0o1770"`}},
		{"console=com console_addr=x", []string{`console_addr="x"`}},
		{"console=com console_addr=0x", []string{`console_addr="0x"`}},
		{"console=com console_addr=", []string{`console_addr=""`}},
		{"console=com console_addr=+1016", []string{`console_addr="+1016"`}},
		// The kernel keeps 9 characters: 0x000003f8 would be 0x3f.
		{"console=com console_addr=0x000003f8", []string{`console_addr="0x000003f8"`, "at most 9 characters"}},
		// Read as the kernel does: 01770 is decimal 1770, not octal 0x3f8.
		{"console=com console_addr=01770", []string{`console_addr="01770" is port 0x6ea`, "only serial port is at 0x3f8"}},
		{"console=com console_addr=017", []string{`console_addr="017" is port 0x11`}},
		// Well formed, but no UART answers there.
		{"console=com console_addr=0x2f8", []string{`console_addr="0x2f8" is port 0x2f8`, "only serial port is at 0x3f8"}},
		{"console=com console_addr=760", []string{`console_addr="760" is port 0x2f8`}},
		{"console=com console_addr=0", []string{`console_addr="0" is port 0x0`}},
		{"console=com console_addr=0x3f8 console_addr=0x2f8", []string{`console_addr="0x2f8"`}},
		// Speeds: decimal only, and one the 16550 can be set to.
		{"console=com console_speed=0x2580", []string{`console_speed="0x2580"`, "decimal digits, at most 9"}},
		{"console=com console_speed=fast", []string{`console_speed="fast"`}},
		{"console=com console_speed=9600baud", []string{`console_speed="9600baud"`}},
		{"console=com console_speed=", []string{`console_speed=""`}},
		{"console=com console_speed=0000009600", []string{`console_speed="0000009600"`, "at most 9"}},
		{"console=com console_speed=0", []string{`console_speed="0"`, "cannot make 0 baud", "e.g. 9600"}},
		{"console=com console_speed=230400", []string{`console_speed="230400"`, "cannot make 230400 baud within 3%"}},
		{"console=com console_speed=100000", []string{`console_speed="100000"`}},
		{"console=com console_speed=999999999", []string{`console_speed="999999999"`}},
	} {
		_, err := Parse(tc.in)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want == nil:
		case !errors.Is(err, ErrAppend):
			t.Errorf("%q: error %v, want ErrAppend", tc.in, err)
		default:
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: error %q lacks %q", tc.in, err, w)
				}
			}
		}
	}
}

// TestConsoleValues: the values handed to the native handoff are the
// ones the multiboot entry would read from the same words.
func TestConsoleValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
	}{{"0x3f8", 0x3f8}, {"0x3F8", 0x3f8}, {"1016", 0x3f8}, {"0x00003f8", 0x3f8}} {
		if got, err := ConsoleAddr(tc.in); err != nil || got != tc.want {
			t.Errorf("console_addr=%s: %#x, %v; want %#x", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want uint32
	}{{"9600", 9600}, {"115200", 115200}, {"000019200", 19200}, {"300", 300}} {
		if got, err := ConsoleSpeed(tc.in); err != nil || got != tc.want {
			t.Errorf("console_speed=%s: %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// Unread names the words a NetBSD kernel does not act on, by the way the
// line reaches it; under the multiboot entry the first word with a '/'
// becomes the boot path unless the kernel name holds one.
func TestUnread(t *testing.T) {
	for _, tc := range []struct {
		line string
		h    Handoff
		name string
		want []string
	}{
		{"-s console=com console_addr=0x3f8 console_speed=9600 root=ld0a", Native, "", nil},
		{"-s console=com console_addr=0x3f8 console_speed=9600 root=ld0a", MultibootEntry, "netbsd", nil},
		{"console=com single root=ld0a root=wd0a", Native, "", []string{`"single" is not passed: NetBSD's native handoff has no command line`, `"root=wd0a" is not passed: an earlier root= is used`}},
		{"console=com single root=ld0a root=wd0a", MultibootEntry, "netbsd", []string{`"single" is ignored by NetBSD's multiboot entry: it reads only`, `"root=wd0a" is ignored: NetBSD's multiboot entry reads only the first root=`}},
		{"init=/sbin/init x=/y", Native, "", []string{`"init=/sbin/init" is not passed`, `"x=/y" is not passed`}},
		{"init=/sbin/init x=/y", MultibootEntry, "netbsd", []string{`except that its "/sbin/init" becomes the booted kernel's path`, `"x=/y" is ignored by NetBSD's multiboot entry: it reads only`}},
		{"init=/sbin/init", MultibootEntry, "/netbsd", []string{`"init=/sbin/init" is ignored by NetBSD's multiboot entry: it reads only`}},
		// console_speed= and console_addr= are read for a com console
		// only (multiboot.c:545-563, consinit.c:230-246).
		{"console=pc console_speed=9600", Native, "", []string{`"console_speed=9600" is ignored: NetBSD reads console_speed= and console_addr= only for console=com, and the console is pc`}},
		{"console=pc console_speed=9600", MultibootEntry, "netbsd", []string{`"console_speed=9600" is ignored: NetBSD reads console_speed= and console_addr= only for console=com, and the console is pc`}},
		{"console_addr=0x3f8 console_speed=9600", Native, "", []string{`"console_addr=0x3f8" is ignored: NetBSD reads console_speed= and console_addr= only for console=com, and no console= is given`, `"console_speed=9600" is ignored`}},
		{"console_addr=1016", MultibootEntry, "netbsd", []string{`"console_addr=1016" is ignored: NetBSD reads console_speed= and console_addr= only for console=com, and no console= is given`}},
		{"console=pc console=com console_speed=9600 console_speed=19200", Native, "", []string{`"console=com" is not passed: an earlier console= is used`, `"console_speed=9600" is ignored: NetBSD reads`, `"console_speed=19200" is ignored: NetBSD reads`}},
		{"console=com console=pc console_speed=9600", MultibootEntry, "netbsd", []string{`"console=pc" is ignored: NetBSD's multiboot entry reads only the first console=`}},
		// btinfo_bootpath holds 79 bytes and the NUL.
		{"/" + strings.Repeat("p", 100), MultibootEntry, "netbsd", []string{`its "/` + strings.Repeat("p", 78) + `" becomes`}},
	} {
		l, err := Parse(tc.line)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		got := l.Unread(tc.h, tc.name)
		if len(got) != len(tc.want) {
			t.Errorf("%q (%d, %q): %q, want %d notices", tc.line, tc.h, tc.name, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%q (%d, %q): notice %d %q, want %q", tc.line, tc.h, tc.name, i, got[i], w)
			}
		}
	}
}
