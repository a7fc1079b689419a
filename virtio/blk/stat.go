package blk

import (
	"errors"
	"os"
)

// Stats counts what the guest did to a disk since it was opened.
type Stats struct {
	// Writes is the number of OUT requests performed and answered OK.
	Writes uint64
	// BytesWritten is the data those requests wrote to the image.
	BytesWritten uint64
}

// Stats returns the disk's counters. It may be called from any
// goroutine, also while the disk serves requests and after it is closed.
func (d *Disk) Stats() Stats {
	return Stats{Writes: d.writes.Load(), BytesWritten: d.written.Load()}
}

// FlushError is the error of the first flush that failed on the host
// (fdatasync's), nil while none has. From that flush on, every FLUSH is
// answered IOERR: what was written before it may not be on the disk, and
// a later fdatasync's success does not say otherwise (Linux reports a
// failed writeback once). It stays until the image is opened again; Reset
// keeps it. It may be called from any goroutine.
func (d *Disk) FlushError() error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	return d.flushErr
}

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
