package blk

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/smolvmm/smolvmm/virtio"
)

// Feature bits of virtio-blk.
const (
	FeatureSizeMax = 1
	FeatureSegMax  = 2
	FeatureRO      = 5
	FeatureFlush   = 9
)

// Device parameters (see the package documentation).
const (
	QueueSize  = 128
	SegMax     = 32
	SizeMax    = 64 << 10
	SectorSize = 512
	// configSize runs through writeback (byte 32), which NetBSD's ld(4)
	// reads whatever features were agreed to tell whether the disk has
	// a write cache: capacity 8, size_max 4, seg_max 4, geometry 4,
	// blk_size 4, topology 8, writeback 1.
	configSize      = 33
	configWriteback = 32
)

// MaxRequest is the most data one request may move: SEG_MAX segments of
// SIZE_MAX. Larger requests (only a driver ignoring both sends them) fail
// with an I/O error, so no request keeps the worker, and Close, for long.
const MaxRequest = SegMax * SizeMax

// Disk is a virtio block device model over a Backend. It implements
// virtio.Device; wrap it with virtio.NewPCIDevice.
type Disk struct {
	b       Backend
	size    int64 // bytes, of which sectors*SectorSize are exposed
	sectors uint64
	ro      bool
	serial  [SerialLen]byte
	file    *os.File // set by Open; closed by Close
	path    string   // the image's path, set by Open, for warnings
	// warn is the transport's (virtio.Warner), nil until it is set.
	warn func(kind, msg string, args ...any)

	// flushMu guards flushErr, the first flush that failed: every later
	// flush is answered IOERR (FlushError says why).
	flushMu  sync.Mutex
	flushErr error
	// writes and written count the OUT requests answered OK and their
	// bytes (Stats).
	writes, written atomic.Uint64

	// Scratch scatter-gather lists, used only on the worker goroutine.
	rd, wr [][]byte
}

// New makes a disk of size bytes over b. Only whole 512-byte sectors of
// it are exposed: HiddenBytes says how many bytes at its end are not.
// Open is the usual way; New serves tests and other backends.
func New(b Backend, size int64, opts Options) (*Disk, error) {
	if size < SectorSize {
		return nil, fmt.Errorf("size %d bytes: a disk needs at least one %d-byte sector", size, SectorSize)
	}
	if opts.Serial == "" {
		opts.Serial = "smolvmm"
	}
	if err := checkSerial(opts.Serial); err != nil {
		return nil, err
	}
	d := &Disk{b: b, size: size, sectors: uint64(size) / SectorSize, ro: opts.ReadOnly}
	copy(d.serial[:], opts.Serial)
	return d, nil
}

// Capacity is the disk size in 512-byte sectors.
func (d *Disk) Capacity() uint64 { return d.sectors }

// Size is the image's size in bytes, as given to New (Open: the file's).
func (d *Disk) Size() int64 { return d.size }

// HiddenBytes is how many bytes at the end of the image the guest does
// not see: HiddenBytes(Size()).
func (d *Disk) HiddenBytes() int64 { return HiddenBytes(d.size) }

// HiddenBytes is how many bytes at the end of an image of size bytes a
// Disk does not expose: the part of a last sector that is not whole,
// since the guest reads and writes whole sectors. It is 0 for an image
// whose size is a multiple of SectorSize. Reads and writes never reach
// those bytes, so a file system or partition table that ends there is
// cut short.
func HiddenBytes(size int64) int64 {
	if size <= 0 {
		return 0
	}
	return size % SectorSize
}

// Serial is the GET_ID answer (without NUL padding).
func (d *Disk) Serial() string {
	n := 0
	for n < len(d.serial) && d.serial[n] != 0 {
		n++
	}
	return string(d.serial[:n])
}

// ReadOnly reports whether the disk refuses writes.
func (d *Disk) ReadOnly() bool { return d.ro }

// Close closes the image file Open opened (releasing its lock); a disk
// made with New has nothing to close.
func (d *Disk) Close() error {
	if d.file == nil {
		return nil
	}
	err := d.file.Close()
	d.file = nil
	return err
}

// Type is virtio.TypeBlock.
func (d *Disk) Type() uint16 { return virtio.TypeBlock }

// Features offers SIZE_MAX, SEG_MAX, FLUSH, INDIRECT_DESC and, for a
// read-only disk, RO. A read-only disk offers FLUSH too, as a guest may
// flush any disk (ld(4) on unmount); it answers OK without a sync.
func (d *Disk) Features() uint32 {
	f := virtio.Bit(FeatureSizeMax) | virtio.Bit(FeatureSegMax) | virtio.Bit(FeatureFlush) |
		virtio.Bit(virtio.FeatureIndirectDesc)
	if d.ro {
		f |= virtio.Bit(FeatureRO)
	}
	return f
}

// QueueSizes is one request queue of QueueSize entries.
func (d *Disk) QueueSizes() []uint16 { return []uint16{QueueSize} }

// ConfigSize covers capacity through writeback.
func (d *Disk) ConfigSize() int { return configSize }

// ReadConfig serves the configuration: capacity (sectors), size_max,
// seg_max; geometry is zero and blk_size reads 512 though BLK_SIZE is not
// offered; topology is zero (TOPOLOGY is not offered: one logical block
// per physical one, no alignment or I/O size hint); writeback reads 1,
// the write-back cache with flush the disk has (see the package
// documentation), though CONFIG_WCE is not offered. It never changes,
// so it needs no lock.
func (d *Disk) ReadConfig(off int, data []byte) {
	var c [configSize]byte
	binary.LittleEndian.PutUint64(c[0:], d.sectors)
	binary.LittleEndian.PutUint32(c[8:], SizeMax)
	binary.LittleEndian.PutUint32(c[12:], SegMax)
	binary.LittleEndian.PutUint32(c[20:], SectorSize)
	c[configWriteback] = 1
	copy(data, c[off:]) // the transport keeps the access inside configSize
}

// WriteConfig ignores writes: nothing in this configuration is writable.
// CONFIG_WCE is not offered, so writeback stays 1 whatever a driver
// writes there (ld(4), asked to turn the cache off, reads it back and
// fails with EIO).
func (d *Disk) WriteConfig(int, []byte) {}

// SetWarn gives the disk the transport's warning function
// (virtio.Warner): an error of the image on the host (a failed read or
// write: ENOSPC, EIO, an image shrunk under the disk) is logged there,
// once for each operation and errno, with the image's path, the offset
// and the error; a failed fdatasync once, as it is latched (FlushError).
// The guest only sees its request fail.
func (d *Disk) SetWarn(warn func(kind, msg string, args ...any)) { d.warn = warn }

// Activate does nothing: no feature changes how requests are served.
func (d *Disk) Activate(uint32) {}

// Reset does nothing: the disk keeps no per-driver state. A failed
// flush stays latched (FlushError): a driver that starts again has not
// got back the writes it lost.
func (d *Disk) Reset() {}

// Process serves every available request of the queue. It stops at a
// fault on guest memory and returns it (see Handle).
func (d *Disk) Process(_ int, q *virtio.Queue) error {
	for {
		c, ok, err := q.Pop()
		if err != nil || !ok {
			return err
		}
		n, err := d.Handle(&c)
		if err != nil {
			// A fault on guest memory: the transport breaks the
			// device, which gives the chain back no more.
			return err
		}
		if err := q.Push(c.Head, n); err != nil {
			return err
		}
	}
}
