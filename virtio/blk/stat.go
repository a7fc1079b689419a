package blk

import (
	"errors"
	"os"
)

// Stat describes the disk's image file (fstat of the open file: the
// image it serves, even if its path now names another). A disk made with
// New over a Backend has no file.
func (d *Disk) Stat() (os.FileInfo, error) {
	if d.file == nil {
		return nil, errors.New("disk has no image file")
	}
	return d.file.Stat()
}
