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

// Image is the disk's open image file, nil for a disk made with New. It
// stays the disk's: read it at explicit offsets (ReadAt), and never close
// it.
func (d *Disk) Image() *os.File { return d.file }
