//go:build netbsd || openbsd

package fstree

import "golang.org/x/sys/unix"

// seekData and seekHole answer EOPNOTSUPP: NetBSD's and OpenBSD's lseek
// report no holes, so ReadSparse reads the whole file, dropping chunks of zeros.
func seekData(int, int64) (int64, error) { return 0, unix.EOPNOTSUPP }
func seekHole(int, int64) (int64, error) { return 0, unix.EOPNOTSUPP }
