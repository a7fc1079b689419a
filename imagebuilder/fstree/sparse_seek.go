//go:build !netbsd && !openbsd

package fstree

import "golang.org/x/sys/unix"

// seekData and seekHole are lseek(2)'s SEEK_DATA and SEEK_HOLE from off.
func seekData(fd int, off int64) (int64, error) { return unix.Seek(fd, off, unix.SEEK_DATA) }
func seekHole(fd int, off int64) (int64, error) { return unix.Seek(fd, off, unix.SEEK_HOLE) }
