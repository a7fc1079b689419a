package netbsdboot

import (
	"fmt"
	"strconv"
	"strings"
)

// RB_* and AB_* boot flags (sys/sys/reboot.h:43-75).
const (
	RBAskName  = 0x00000001 // -a
	RBSingle   = 0x00000002 // -s
	RBHalt     = 0x00000008 // -b
	RBKDB      = 0x00000040 // -d
	RBMiniroot = 0x00000200 // -m
	RBUserconf = 0x00001000 // -c
	ABQuiet    = 0x00010000 // -q
	ABVerbose  = 0x00020000 // -v
	ABSilent   = 0x00040000 // -z
	ABDebug    = 0x00080000 // -x
	RBMD1      = 0x10000000 // -1 (i386: no multiprocessor)
	RBMD2      = 0x20000000 // -2 (i386: no ACPI)
	RBMD3      = 0x40000000 // -3
	RBMD4      = 0x80000000 // -4
)

// bootFlags is BOOT_FLAG() of sys/sys/boot_flag.h:41-89, which /boot's
// parseopts applies to each letter (sys/arch/i386/stand/lib/parseutils.c:77-108).
var bootFlags = map[byte]uint32{
	'1': RBMD1, '2': RBMD2, '3': RBMD3, '4': RBMD4,
	'a': RBAskName, 'b': RBHalt, 'c': RBUserconf, 'd': RBKDB, 'm': RBMiniroot,
	'q': ABQuiet, 's': RBSingle, 'v': ABVerbose, 'x': ABDebug, 'z': ABSilent,
}

// Console defaults: COM1's port and the speed /boot sets before it looks at
// the console device (sys/arch/i386/stand/lib/pcio.c:118).
const (
	DefaultConsoleAddr  = 0x3f8
	DefaultConsoleSpeed = 9600
)

// BootArgs is what the append line asks of the handoff.
type BootArgs struct {
	// Howto is boothowto: the RB_*/AB_* bits of the -flags words.
	Howto uint32
	// Console is BTINFO_CONSOLE's device: "com" or "pc" ("pc", VGA and
	// keyboard, when the line names none, as /boot's default).
	Console      string
	ConsoleAddr  uint32 // I/O port, for "com"
	ConsoleSpeed uint32 // baud
	// Root is BTINFO_ROOTDEVICE's device name (root=ld0a), "" for none.
	Root string
	// Warnings names the words the handoff cannot pass: /boot gives the
	// kernel no command line.
	Warnings []string
}

// ParseAppend reads an append line the way it is written for multiboot
// kernels ("-s console=com root=ld0a"): boot flags from any -xyz word, as
// /boot's boot command takes them, console=, console_addr=, console_speed=
// and root=. Other words are reported in Warnings.
func ParseAppend(s string) (BootArgs, error) {
	a := BootArgs{Console: "pc", ConsoleSpeed: DefaultConsoleSpeed}
	addrSet, consoleSet := false, false
	for _, w := range strings.Fields(s) {
		if len(w) > 1 && w[0] == '-' {
			for i := 1; i < len(w); i++ {
				f, ok := bootFlags[w[i]]
				if !ok {
					return a, fmt.Errorf("%w: %q: unknown boot flag -%c (NetBSD's /boot knows -1 -2 -3 -4 -a -b -c -d -m -q -s -v -x -z)", ErrAppend, w, w[i])
				}
				a.Howto |= f
			}
			continue
		}
		key, val, hasEq := strings.Cut(w, "=")
		switch {
		case !hasEq:
			a.Warnings = append(a.Warnings, fmt.Sprintf("%q is not passed: NetBSD's native handoff has no command line, only boot flags (-s...), console=, console_addr=, console_speed= and root=", w))
		case key == "console":
			if val != "com" && val != "pc" {
				return a, fmt.Errorf("%w: console=%s: the handoff passes console=com (serial) or console=pc", ErrAppend, val)
			}
			a.Console, consoleSet = val, true
		case key == "console_addr":
			v, err := strconv.ParseUint(val, 0, 16)
			if err != nil {
				return a, fmt.Errorf("%w: console_addr=%s: not an I/O port number (e.g. 0x3f8)", ErrAppend, val)
			}
			a.ConsoleAddr, addrSet = uint32(v), true
		case key == "console_speed":
			v, err := strconv.ParseUint(val, 10, 31)
			if err != nil || v == 0 {
				return a, fmt.Errorf("%w: console_speed=%s: not a baud rate (e.g. 9600)", ErrAppend, val)
			}
			a.ConsoleSpeed = uint32(v)
		case key == "root":
			// struct btinfo_rootdevice's devname is 16 bytes
			// (sys/arch/x86/include/bootinfo.h:61-64), NUL included.
			if val == "" || len(val) > 15 || strings.IndexByte(val, 0) >= 0 {
				return a, fmt.Errorf("%w: root=%q: the root device name must be 1 to 15 bytes (BTINFO_ROOTDEVICE holds 16 with the NUL)", ErrAppend, val)
			}
			a.Root = val
		default:
			a.Warnings = append(a.Warnings, fmt.Sprintf("%q is not passed: NetBSD's native handoff has no command line, only boot flags (-s...), console=, console_addr=, console_speed= and root=", w))
		}
	}
	if !consoleSet {
		// /boot's own default (pcio.c) is the display, which a
		// microVM does not have: the kernel would print nothing.
		a.Warnings = append(a.Warnings, "no console= given: the kernel's console is pc, a display this machine does not have, so it will print nothing; console=com puts it on the serial line")
	}
	if a.Console == "com" && !addrSet {
		a.ConsoleAddr = DefaultConsoleAddr
	}
	if a.Console == "pc" {
		a.ConsoleAddr = 0
	}
	return a, nil
}
