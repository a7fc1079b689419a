package atomicfile

import "golang.org/x/sys/unix"

// renameat2 is unix.Renameat2 (a variable for the tests), and
// noReplaceFlag its flag that refuses an existing name.
var renameat2 = unix.Renameat2

const noReplaceFlag = unix.RENAME_NOREPLACE
