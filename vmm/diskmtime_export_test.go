package vmm

import (
	"os"
	"sync/atomic"

	"github.com/smolvmm/smolvmm/snapshot"
)

// CountDiskDigests makes a restore count the disk images it reads for
// their content digest until the returned restore is called; read
// returns the count so far.
func CountDiskDigests() (read func() int, restore func()) {
	var n atomic.Int64
	diskDigest = func(f *os.File, size int64) (uint32, error) {
		n.Add(1)
		return snapshot.FileDigest(f, size)
	}
	return func() int { return int(n.Load()) }, func() { diskDigest = snapshot.FileDigest }
}
