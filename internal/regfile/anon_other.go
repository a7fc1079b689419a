//go:build !linux

package regfile

import "golang.org/x/sys/unix"

// anonFlags map readAnon's memory: MAP_ANON, the name every Unix has
// (NetBSD's x/sys has no MAP_ANONYMOUS, FreeBSD's no MAP_NORESERVE).
const anonFlags = unix.MAP_PRIVATE | unix.MAP_ANON
