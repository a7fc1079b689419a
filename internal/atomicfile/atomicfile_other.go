//go:build !linux

package atomicfile

import "golang.org/x/sys/unix"

// renameat2 is Linux's alone: elsewhere it answers ENOSYS, as an old
// Linux kernel does, which sends a rename that must not replace a file
// to a link, and failing that to a rename once no file is seen.
var renameat2 = func(int, string, int, string, uint) error { return unix.ENOSYS }

// noReplaceFlag is passed to renameat2, which takes no flag here.
const noReplaceFlag = 0
