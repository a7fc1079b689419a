// Package bootargs reads the append line smolvmm gives a NetBSD kernel
// ("-s console=com root=ld0a"), the same way for both boot protocols: the
// native /boot handoff (package netbsdboot), which turns it into boot
// flags and bootinfo records, and the multiboot entry (package multiboot),
// which passes it as the command line. Both refuse the same mistakes and
// take boot flags from any word.
package bootargs

import (
	"errors"
	"fmt"
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
// root= word must name a disk partition (see CheckRoot). Errors wrap
// ErrAppend and name the word.
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
		if dev, ok := strings.CutPrefix(w, "root="); ok {
			if err := CheckRoot(dev); err != nil {
				return Line{}, err
			}
		}
		l.Words = append(l.Words, w)
	}
	return l, nil
}

// maxRoot is the longest root device name: BTINFO_ROOTDEVICE's devname
// holds 16 bytes with the NUL (sys/arch/x86/include/bootinfo.h:61-64), and
// the multiboot entry copies root= into that field too.
const maxRoot = 15

// CheckRoot checks a root= value: a driver name of lowercase letters, one
// unit digit and a partition letter a-p, such as ld0a. findroot
// (sys/arch/x86/x86/x86_autoconf.c:368-372) takes the byte after the
// driver's name as the unit and the next as the partition, so ld0 or ld10a
// would boot from the wrong partition or stop at the root device prompt.
// The error wraps ErrAppend.
func CheckRoot(dev string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: root=%q: %s; the root device is a driver name, one unit digit and a partition letter a-p, such as ld0a", ErrAppend, dev, why)
	}
	if len(dev) > maxRoot {
		return bad(fmt.Sprintf("%d bytes, but the kernel takes at most %d", len(dev), maxRoot))
	}
	n := 0
	for n < len(dev) && dev[n] >= 'a' && dev[n] <= 'z' {
		n++
	}
	switch {
	case n == 0:
		return bad("it does not start with a driver name in lowercase letters")
	case len(dev) != n+2:
		return bad("not one unit digit and one partition letter after the driver name")
	case dev[n] < '0' || dev[n] > '9':
		return bad(fmt.Sprintf("unit %q is not one digit", dev[n]))
	case dev[n+1] < 'a' || dev[n+1] > 'p':
		return bad(fmt.Sprintf("partition %q is not one of a-p", dev[n+1]))
	}
	return nil
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
