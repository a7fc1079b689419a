package blk

import (
	"encoding/binary"

	"github.com/smolvmm/smolvmm/virtio"
)

// Request types.
const (
	TypeIn    = 0
	TypeOut   = 1
	TypeFlush = 4
	TypeGetID = 8
)

// Status values written in a request's last byte.
const (
	StatusOK     = 0
	StatusIOErr  = 1
	StatusUnsupp = 2
)

// HeaderSize is the size of the request header (type, reserved, sector).
const HeaderSize = 16

// Handle serves one request chain and returns the number of bytes it wrote
// into the chain's writable buffers (data plus the status byte), the value
// for the used ring. Every failure is answered in the status byte; a chain
// without a writable byte gets 0 and nothing is done.
func (d *Disk) Handle(c *virtio.Chain) uint32 {
	var err error
	d.rd, err = c.Segments(d.rd[:0], false)
	if err != nil {
		return 0
	}
	d.wr, err = c.Segments(d.wr[:0], true)
	if err != nil || len(d.wr) == 0 {
		return 0
	}
	// The status is the last writable byte; the writable data is what
	// comes before it.
	last := d.wr[len(d.wr)-1]
	status := last[len(last)-1:]
	d.wr[len(d.wr)-1] = last[:len(last)-1]
	st, n := d.serve(d.rd, d.wr)
	status[0] = st
	return n + 1
}

// serve performs the request whose readable stream is rd (header, then OUT
// data) and whose writable data is wr, and returns its status and the data
// bytes written to wr.
func (d *Disk) serve(rd, wr [][]byte) (status uint8, written uint32) {
	// Copy the header out of guest memory before looking at it.
	var hdr [HeaderSize]byte
	if gather(hdr[:], rd) < HeaderSize {
		return StatusIOErr, 0
	}
	rd = advance(rd, HeaderSize)
	typ := binary.LittleEndian.Uint32(hdr[0:])
	sector := binary.LittleEndian.Uint64(hdr[8:])
	switch typ {
	case TypeIn:
		// Readable bytes after the header are data in the wrong
		// direction: the device cannot put what it reads there.
		if total(rd) != 0 {
			return StatusIOErr, 0
		}
		n, ok := d.span(sector, wr)
		if !ok || readV(d.b, wr, int64(sector*SectorSize)) != nil {
			return StatusIOErr, 0
		}
		return StatusOK, uint32(n)
	case TypeOut:
		// Writable bytes besides the status are data in the wrong
		// direction: the device takes nothing from them to write.
		if d.ro || total(wr) != 0 {
			return StatusIOErr, 0
		}
		if _, ok := d.span(sector, rd); !ok || writeV(d.b, rd, int64(sector*SectorSize)) != nil {
			return StatusIOErr, 0
		}
		return StatusOK, 0
	case TypeFlush:
		if d.b.Sync() != nil {
			return StatusIOErr, 0
		}
		return StatusOK, 0
	case TypeGetID:
		n := scatter(wr, d.serial[:])
		return StatusOK, uint32(n)
	}
	return StatusUnsupp, 0
}

// span checks that the data of bufs is whole sectors that start at sector
// and end inside the disk, without overflow, and no more than SEG_MAX
// segments of SIZE_MAX hold, and returns its length.
func (d *Disk) span(sector uint64, bufs [][]byte) (uint64, bool) {
	n := total(bufs)
	if n%SectorSize != 0 || n > MaxRequest || sector > d.sectors || n/SectorSize > d.sectors-sector {
		return 0, false
	}
	return n, true
}

// total is the number of bytes in bufs.
func total(bufs [][]byte) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b))
	}
	return n
}

// gather copies the start of bufs into dst and returns the bytes copied.
func gather(dst []byte, bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], b)
	}
	return n
}

// scatter copies src into the start of bufs and returns the bytes copied.
func scatter(bufs [][]byte, src []byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(src) {
			break
		}
		n += copy(b, src[n:])
	}
	return n
}
