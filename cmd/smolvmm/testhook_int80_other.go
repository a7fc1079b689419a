//go:build smolvmm_testhook && !amd64

package main

import "golang.org/x/sys/unix"

// int80Getpid answers as a kernel without the call would (-ENOSYS): the
// hook checks amd64's filter against i386's gate, which only an amd64
// build has to check.
func int80Getpid() int64 { return -int64(unix.ENOSYS) }
