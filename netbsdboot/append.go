package netbsdboot

import (
	"strings"

	"github.com/smolvmm/smolvmm/internal/bootargs"
)

// RB_* and AB_* boot flags (sys/sys/reboot.h:43-75), the bits of
// BootArgs.Howto.
const (
	RBAskName  = bootargs.RBAskName  // -a
	RBSingle   = bootargs.RBSingle   // -s
	RBHalt     = bootargs.RBHalt     // -b
	RBKDB      = bootargs.RBKDB      // -d
	RBMiniroot = bootargs.RBMiniroot // -m
	RBUserconf = bootargs.RBUserconf // -c
	ABQuiet    = bootargs.ABQuiet    // -q
	ABVerbose  = bootargs.ABVerbose  // -v
	ABSilent   = bootargs.ABSilent   // -z
	ABDebug    = bootargs.ABDebug    // -x
	RBMD1      = bootargs.RBMD1      // -1 (i386: no multiprocessor)
	RBMD2      = bootargs.RBMD2      // -2 (i386: no ACPI)
	RBMD3      = bootargs.RBMD3      // -3
	RBMD4      = bootargs.RBMD4      // -4
)

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
	// Warnings names the words the handoff cannot pass (/boot gives the
	// kernel no command line), and a missing console=.
	Warnings []string
}

// ParseAppend reads an append line the way it is written for multiboot
// kernels ("-s console=com root=ld0a"): boot flags from any -xyz word, as
// /boot's boot command takes them, console= (com or pc), console_addr=
// (0x3f8, the machine's only serial port, written as the multiboot entry
// reads it: 0x3f8 or 1016), console_speed= (decimal, a rate the kernel's
// 16550 driver can set) and root= (a disk partition such as ld0a, a wedge
// such as dk0 or NAME=root, or a network interface such as vioif0 for
// root on NFS). Other words are reported in Warnings. The
// multiboot loader reads the line with the same rules (package bootargs).
func ParseAppend(s string) (BootArgs, error) {
	a := BootArgs{Console: "pc", ConsoleSpeed: DefaultConsoleSpeed}
	l, err := bootargs.Parse(s)
	if err != nil {
		return a, err
	}
	a.Howto = l.Howto
	// Each word the handoff cannot pass, or a later one of a key it
	// passes, gets a notice, worded as the multiboot loader's are.
	a.Warnings = l.Unread(bootargs.Native, "")
	addrSet, consoleSet := false, false
	seen := map[string]bool{}
	for _, w := range l.Words {
		key, val, hasEq := strings.Cut(w, "=")
		if !hasEq || seen[key] {
			// The multiboot entry's optstr_get (sys/kern/subr_optstr.c)
			// finds the first; the handoff keeps to it too.
			continue
		}
		seen[key] = true
		switch key {
		case "console":
			// bootargs.Parse checked every console word: com or
			// pc, port 0x3f8, a speed the kernel can set.
			a.Console, consoleSet = val, true
		case "console_addr":
			v, err := bootargs.ConsoleAddr(val)
			if err != nil {
				return a, err
			}
			a.ConsoleAddr, addrSet = uint32(v), true
		case "console_speed":
			v, err := bootargs.ConsoleSpeed(val)
			if err != nil {
				return a, err
			}
			a.ConsoleSpeed = v
		case "root":
			// bootargs checked it, and that it fits
			// BTINFO_ROOTDEVICE's 16 bytes.
			a.Root = val
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
