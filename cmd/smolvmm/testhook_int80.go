//go:build smolvmm_testhook && amd64

package main

// int80Getpid makes getpid through the i386 system call gate (int $0x80,
// where getpid is 20) and returns what the kernel returned.
func int80Getpid() int64
