// Package bootargs reads the append line smolvmm gives a NetBSD kernel
// ("-s console=com root=ld0a"), the same way for both boot protocols: the
// native /boot handoff (package netbsdboot), which turns it into boot
// flags and bootinfo records, and the multiboot entry (package multiboot),
// which passes it as the command line. Both refuse the same mistakes and
// take boot flags from any word.
//
// Console words (console=, console_addr=, console_speed=) are checked as
// NetBSD's multiboot entry reads them (sys/arch/i386/i386/multiboot.c,
// setup_console): a value the kernel would drop or misread leaves a
// smolvmm guest printing nothing, so it is refused before the VM starts.
package bootargs

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrAppend: a boot flag or word the kernel would misread. netbsdboot and
// multiboot export it as their ErrAppend.
var ErrAppend = errors.New("bad boot arguments")

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

// flagBits is BOOT_FLAG() of sys/sys/boot_flag.h:41-89, which both /boot's
// parseopts (sys/arch/i386/stand/lib/parseutils.c:77-108) and the
// multiboot entry's setup_howto (sys/arch/i386/i386/multiboot.c:584-612)
// apply to each letter. The kernel ignores other letters; they are
// refused here, since a typo would otherwise vanish.
var flagBits = map[byte]uint32{
	'1': RBMD1, '2': RBMD2, '3': RBMD3, '4': RBMD4,
	'a': RBAskName, 'b': RBHalt, 'c': RBUserconf, 'd': RBKDB, 'm': RBMiniroot,
	'q': ABQuiet, 's': RBSingle, 'v': ABVerbose, 'x': ABDebug, 'z': ABSilent,
}

// Line is an append line split into what the kernel reads differently.
type Line struct {
	// Flags holds the letters of every -xyz word, each once, in the order
	// they first appear.
	Flags string
	// Howto is Flags as RB_*/AB_* bits (boothowto).
	Howto uint32
	// Words are the other words, in order.
	Words []string
}

// Parse splits an append line at white space. A word that starts with '-'
// (other than a lone "-") holds boot flags, wherever it stands; every
// root= word must name a root device the kernel finds (CheckRoot), every console=
// word a device NetBSD knows (CheckConsole), every console_addr= word the
// serial port this machine has (ConsoleAddr) and every console_speed= word
// a baud rate the kernel can set (ConsoleSpeed). The kernel reads only the
// first of each key; later ones are checked too, as a mistake in one is
// likely a mistake in the line. Errors wrap ErrAppend and name the word.
func Parse(s string) (Line, error) {
	var l Line
	for _, w := range strings.Fields(s) {
		if len(w) > 1 && w[0] == '-' {
			for i := 1; i < len(w); i++ {
				f, ok := flagBits[w[i]]
				if !ok {
					return Line{}, fmt.Errorf("%w: %q: unknown boot flag -%c (NetBSD knows -1 -2 -3 -4 -a -b -c -d -m -q -s -v -x -z)", ErrAppend, w, w[i])
				}
				if l.Howto&f == 0 {
					l.Flags += string(w[i])
				}
				l.Howto |= f
			}
			continue
		}
		key, val, _ := strings.Cut(w, "=")
		var err error
		switch {
		case !strings.Contains(w, "="):
		case key == "root":
			err = CheckRoot(val)
		case key == "console":
			err = CheckConsole(val)
		case key == "console_addr":
			_, err = ConsoleAddr(val)
		case key == "console_speed":
			_, err = ConsoleSpeed(val)
		}
		if err != nil {
			return Line{}, err
		}
		l.Words = append(l.Words, w)
	}
	return l, nil
}

// maxRoot is the longest root device name: BTINFO_ROOTDEVICE's devname
// holds 16 bytes with the NUL (sys/arch/x86/include/bootinfo.h:61-64), and
// the multiboot entry copies root= into that field too.
const maxRoot = 15

// partitionedDisk reports whether driver is one of the x86 kernel's disk
// drivers whose disks have partitions (class DV_DISK in sys/conf/files, sys/dev/*/files.*,
// sys/arch/{amd64,i386,xen}/conf, and device-mapper's dm, declared
// DV_DISK in sys/dev/dm/device-mapper.c; all but dk and flash, which
// DEV_USES_PARTITIONS in sys/kern/kern_subr.c excepts). A root= naming
// one without a partition letter is matched by findroot, which takes the
// NUL after the unit as the partition: the kernel would mount garbage or
// stop at the root device prompt. A switch, not a map: nothing is built
// at package init, which every start of the VMM pays for.
func partitionedDisk(driver string) bool {
	switch driver {
	case "ld", "wd", "sd", "cd", "fd", "md", "vnd", "cgd", "ccd", "raid", "fss",
		"mcd", "ed", "xbd", "altmem", "dm":
		return true
	}
	return false
}

// CheckRoot checks a root= value as NetBSD's findroot
// (sys/arch/x86/x86/x86_autoconf.c:355-387) and setroot
// (sys/kern/kern_subr.c) read it. findroot matches a disk by its driver's
// name and one unit digit, and takes the next byte as the partition; a
// value that names no disk becomes rootspec, which finddevice resolves.
// So the value is one of:
//   - a disk partition: driver letters, one unit digit and a partition
//     a-p, such as ld0a (ld10a would be taken as ld1, ld0 as partition
//     NUL);
//   - a wedge: dk and one digit (setroot ignores the partition of a dk;
//     dk10 would be taken as dk1), or NAME= or wedge: and the wedge's name
//     (getwedgename, kern_subr.c:680-694);
//   - another device by its name, letters and a unit number, such as a
//     network interface (vioif0), which setroot takes for root on NFS.
//
// At most 15 bytes fit (maxRoot). The error wraps ErrAppend.
func CheckRoot(dev string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: root=%q: %s; the root device is a disk partition such as ld0a, a wedge (dk0, or NAME= and its name) or a network interface for root on NFS (vioif0)", ErrAppend, dev, why)
	}
	if len(dev) > maxRoot {
		return bad(fmt.Sprintf("%d bytes, but the kernel takes at most %d", len(dev), maxRoot))
	}
	// getwedgename: "wedge:" as written, "NAME=" in any case.
	if name, ok := strings.CutPrefix(dev, "wedge:"); ok || len(dev) >= 5 && strings.EqualFold(dev[:5], "NAME=") {
		if !ok {
			name = dev[5:]
		}
		if name == "" {
			return bad("it names no wedge after the prefix")
		}
		return nil
	}
	n := 0
	for n < len(dev) && dev[n] >= 'a' && dev[n] <= 'z' {
		n++
	}
	driver := dev[:n]
	u := n
	for u < len(dev) && dev[u] >= '0' && dev[u] <= '9' {
		u++
	}
	unit, part := dev[n:u], dev[u:]
	switch {
	case n == 0:
		return bad("it does not start with a driver name in lowercase letters, nor with NAME= or wedge:")
	case unit == "":
		return bad("no unit number after the driver name")
	case part != "" && (len(part) != 1 || part[0] < 'a' || part[0] > 'p'):
		return bad(fmt.Sprintf("partition %q is not one letter a-p", part))
	case len(unit) > 1 && (part != "" || driver == "dk" || driver == "flash" || partitionedDisk(driver)):
		return bad(fmt.Sprintf("unit %q has more than one digit, and findroot reads only the first (%s%c); such a disk can be named only as a wedge, NAME= and its name", unit, driver, unit[0]))
	case part == "" && partitionedDisk(driver):
		return bad(fmt.Sprintf("%s is a disk driver with partitions, and without a partition letter findroot would take the NUL after the unit as one; add it, such as %s%sa", driver, driver, unit))
	}
	return nil
}

// CheckConsole checks a console= value. NetBSD's multiboot entry passes
// the console on to the kernel only when it is exactly "com" or "pc"
// (multiboot.c, setup_console); with anything else the kernel keeps its
// compiled-in display console; handed any other name in BTINFO_CONSOLE by
// the native handoff, consinit (sys/arch/x86/x86/consinit.c) panics
// before it has a console (or, for nullcons, prints nowhere). Either way
// a smolvmm guest prints nothing. The error wraps ErrAppend.
func CheckConsole(dev string) error {
	if dev == "com" || dev == "pc" {
		return nil
	}
	return fmt.Errorf("%w: console=%q: NetBSD knows only console=com (the serial port) and console=pc (a display, which this machine lacks); with any other value the kernel prints nothing", ErrAppend, dev)
}

// UARTPort is the I/O port of the machine's only serial port, COM1
// (vmm.PortCOM1; this package cannot import vmm, which imports it).
const UARTPort = 0x3f8

// maxConsoleValue is the longest console_addr= or console_speed= value
// the multiboot entry reads whole: optstr_get copies it into a 10-byte
// buffer with its NUL (multiboot.c, setup_console), so "0x000003f8"
// would be read as 0x3f.
const maxConsoleValue = 9

// ConsoleAddr parses a console_addr= value as NetBSD's multiboot entry
// does: "0x" and hex digits, else decimal digits (so 017 is 17, not an
// octal 15, and 0X3F8 or 0x3_f8 are not numbers), at most 9 characters.
// NetBSD's /boot has no such key (it takes the port from the BIOS data
// area), so the native handoff reads it the same way. The port must be
// UARTPort: the machine has no other serial port, and a console anywhere
// else writes to a port nobody answers, so the guest prints nothing. The
// error wraps ErrAppend.
func ConsoleAddr(val string) (uint16, error) {
	digits, base := val, 10
	if rest, ok := strings.CutPrefix(val, "0x"); ok {
		digits, base = rest, 16
	}
	if len(val) > maxConsoleValue || digits == "" || !allDigits(digits, base) {
		return 0, fmt.Errorf("%w: console_addr=%q: not a port number as NetBSD reads it: 0x and hex digits, or decimal digits, at most %d characters (this machine's serial port is 0x3f8)", ErrAppend, val, maxConsoleValue)
	}
	v, _ := strconv.ParseUint(digits, base, 64) // 9 characters always fit
	if v != UARTPort {
		return 0, fmt.Errorf("%w: console_addr=%q is port %#x, but this machine's only serial port is at 0x3f8 (console_addr=0x3f8 or 1016); the kernel would print nothing", ErrAppend, val, v)
	}
	return UARTPort, nil
}

// ConsoleSpeed parses a console_speed= value as both NetBSD loaders do:
// decimal digits (the multiboot entry's strtoul base 10, /boot's atoi for
// consdev com0,speed), at most 9 characters (see ConsoleAddr). The speed
// must be one the kernel's 16550 driver can set: comspeed
// (sys/dev/ic/com.c) refuses a rate its 1.8432 MHz clock cannot make
// within 3% (COM_TOLERANCE), and the console's tty is then left without a
// speed. 0 is refused too: the kernel would quietly use 9600. The error
// wraps ErrAppend.
func ConsoleSpeed(val string) (uint32, error) {
	if len(val) > maxConsoleValue || val == "" || !allDigits(val, 10) {
		return 0, fmt.Errorf("%w: console_speed=%q: not a baud rate as NetBSD reads it: decimal digits, at most %d (e.g. 9600 or 115200)", ErrAppend, val, maxConsoleValue)
	}
	v, _ := strconv.ParseUint(val, 10, 32) // 9 digits always fit
	if !uartCanSet(v) {
		return 0, fmt.Errorf("%w: console_speed=%q: the 16550's 1.8432 MHz clock cannot make %d baud within 3%%; NetBSD takes 115200/n baud, e.g. 9600, 19200, 38400, 57600 or 115200", ErrAppend, val, v)
	}
	return uint32(v), nil
}

// uartCanSet says whether NetBSD's comspeed accepts speed for a COM_FREQ
// (1843200 Hz) UART: the divisor 115200/speed, rounded, must be at least 1
// and give the speed within 3.0%, with the kernel's rounding.
func uartCanSet(speed uint64) bool {
	const base = 1843200 / 16
	if speed == 0 {
		return false
	}
	round := func(n, q uint64) uint64 { return (n*2/q + 1) / 2 }
	div := round(base, speed)
	if div == 0 {
		return false
	}
	perMille := int64(round(base*1000, speed*div)) - 1000
	return perMille >= -30 && perMille <= 30
}

// allDigits says whether s is made of digits of the base (10 or 16).
func allDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= '0' && c <= '9' ||
			base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
		if !ok {
			return false
		}
	}
	return true
}

// Has reports whether a word of the line sets key (key=value).
func (l Line) Has(key string) bool {
	for _, w := range l.Words {
		if strings.HasPrefix(w, key+"=") {
			return true
		}
	}
	return false
}

// Handoff is a way an append line reaches a NetBSD kernel; it decides
// which words the kernel reads (see Unread).
type Handoff int

const (
	// Native is /boot's handoff (package netbsdboot): no command line,
	// only boothowto and the console and root device records.
	Native Handoff = iota
	// MultibootEntry is NetBSD's multiboot entry (package multiboot),
	// which gets the whole line but reads only some of it
	// (sys/arch/i386/i386/multiboot.c).
	MultibootEntry
)

// readKeys are the keys both handoffs pass on: the multiboot entry's
// optstr_get calls (multiboot.c:442, 539, 548, 555) and the native
// handoff's records.
var readKeys = map[string]bool{"console": true, "console_addr": true, "console_speed": true, "root": true}

// maxBootPath is the longest boot path the multiboot entry keeps:
// btinfo_bootpath's 80 bytes with the NUL (multiboot.c:500-502).
const maxBootPath = 79

// Unread returns a notice for each word of l (flags aside, which both
// handoffs read) that a NetBSD kernel handed the line by h does not act
// on: a word other than console=, console_addr=, console_speed= and
// root=, and a later one of those keys (optstr_get finds the first, and
// the native handoff keeps to it). Under MultibootEntry, the first word
// with a '/' also becomes the kernel's boot path: setup_bootpath
// (multiboot.c:487-512) takes the command line from its first '/' to the
// next space as the booted kernel's file name (BTINFO_BOOTPATH). That
// happens only when kernelName, the command line's first word, holds no
// '/'; kernelName is not used under Native, which passes no line.
// console_speed= and console_addr= are noted unless the console is com:
// the multiboot entry reads them only then (multiboot.c:545-563), and
// the kernel's consinit uses BTINFO_CONSOLE's speed and port only for
// com (sys/arch/x86/x86/consinit.c:230-246), which the native handoff
// passes them in.
func (l Line) Unread(h Handoff, kernelName string) []string {
	bootPath := -1
	if h == MultibootEntry && !strings.Contains(kernelName, "/") {
		bootPath = slices.IndexFunc(l.Words, func(w string) bool { return strings.Contains(w, "/") })
	}
	console := "no console= is given"
	if i := slices.IndexFunc(l.Words, func(w string) bool { return strings.HasPrefix(w, "console=") }); i >= 0 {
		console = "the console is " + strings.TrimPrefix(l.Words[i], "console=")
	}
	var notes []string
	seen := map[string]bool{}
	for i, w := range l.Words {
		key, _, hasEq := strings.Cut(w, "=")
		read := hasEq && readKeys[key] && !seen[key]
		if hasEq && readKeys[key] {
			seen[key] = true
		}
		switch {
		case hasEq && (key == "console_speed" || key == "console_addr") && console != "the console is com":
			notes = append(notes, fmt.Sprintf("%q is ignored: NetBSD reads console_speed= and console_addr= only for console=com, and %s", w, console))
		case i == bootPath:
			path := w[strings.IndexByte(w, '/'):]
			path = path[:min(len(path), maxBootPath)]
			what := fmt.Sprintf("%q is ignored by NetBSD's multiboot entry, except that its", w)
			if read {
				what = fmt.Sprintf("%q's", w)
			}
			notes = append(notes, fmt.Sprintf("%s %q becomes the booted kernel's path (BTINFO_BOOTPATH, sysctl machdep.booted_kernel): the entry takes the command line's first word with a '/', from the '/' on, as the kernel's file name", what, path))
		case read:
		case hasEq && readKeys[key] && h == Native:
			notes = append(notes, fmt.Sprintf("%q is not passed: an earlier %s= is used, as NetBSD's multiboot entry does", w, key))
		case hasEq && readKeys[key]:
			notes = append(notes, fmt.Sprintf("%q is ignored: NetBSD's multiboot entry reads only the first %s=", w, key))
		case h == Native:
			notes = append(notes, fmt.Sprintf("%q is not passed: NetBSD's native handoff has no command line, only boot flags (-s...), console=, console_addr=, console_speed= and root=", w))
		default:
			notes = append(notes, fmt.Sprintf("%q is ignored by NetBSD's multiboot entry: it reads only boot flags (-s...), console=, console_addr=, console_speed= and root= from the command line", w))
		}
	}
	return notes
}

// Multiboot is the line as NetBSD's multiboot entry must get it after the
// kernel's name: setup_howto (sys/arch/i386/i386/multiboot.c:584-612)
// reads flags only from a -xyz word right after the name, while
// optstr_get (sys/kern/subr_optstr.c) finds console= and root= in any
// word. So every flag goes into one word first, then the other words, one
// space apart (the kernel splits at spaces only).
func (l Line) Multiboot() string {
	words := l.Words
	if l.Flags != "" {
		words = append([]string{"-" + l.Flags}, words...)
	}
	return strings.Join(words, " ")
}
