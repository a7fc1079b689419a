package regfile

import "golang.org/x/sys/unix"

// anonFlags map readAnon's memory: its reservation is not counted
// against the commit limit where overcommit is heuristic (mode 0).
const anonFlags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE
