// Package ext2 writes an ext2 revision 1 file system image from an
// fstree.Tree, in one pass and without root, in the form NetBSD 9 mounts
// read-write: features filetype, sparse_super and large_file only, 128-byte
// inodes, block-mapped files (12 direct, single, double and triple indirect
// blocks, never extents). The same tree and Options give the same bytes.
package ext2

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// Options control the file system that Write lays out.
type Options struct {
	// Size is the image size in bytes.
	Size int64
	// BlockSize is 1024, 2048 or 4096; 0 picks 1024 below 512 MiB and 4096 above.
	BlockSize uint32
	// Inodes is the number of inodes wanted; 0 gives one per four blocks,
	// or the content's count plus a quarter of it (see spareInodes) if that
	// is more, or in a Size too small for that many, as many as fit.
	Inodes uint64
	// Timestamp (Unix seconds) is written in the superblock and on every node
	// without a time of its own (see fstree.Node.HasMtime); 0 means now
	// unless TimestampSet. Write refuses one outside fstree.MinTime..MaxTime
	// (see CheckTimestamp).
	Timestamp int64
	// TimestampSet makes a Timestamp of 0 mean 1970-01-01T00:00:00Z (as
	// SOURCE_DATE_EPOCH=0 asks) rather than now.
	TimestampSet bool
	// Label is the volume name (at most 16 bytes).
	Label string
	// UUID is the file system UUID; the zero value derives one from
	// Timestamp, Size and Label so the output stays reproducible.
	UUID [16]byte
	// Progress, when set, is called as data blocks are written, with the
	// bytes of data written so far and in all.
	Progress func(done, total uint64)
	// LastMounted is written as the directory the file system was last
	// mounted on (at most 63 bytes, no NUL), in the superblock and in
	// every backup of it: "/" for a root file system. NetBSD writes the
	// mount point into the superblock alone at each read-write mount,
	// and its fsck_ext2fs refuses (exit status 8, checking nothing) a
	// file system whose superblock differs from the first backup in
	// any field but a few, the mount point not among them: written
	// everywhere beforehand, the copies stay alike.
	LastMounted string
}

// TooSmallError says that the content does not fit the requested size.
type TooSmallError struct {
	Size   int64 // requested bytes
	Needed int64 // smallest size in bytes that fits, a whole number of MiB; a lower bound when the sets were read only until their data passed the image (imagebuilder.Config.FixedSize)
}

// Error says how many megabytes the content needs.
func (e *TooSmallError) Error() string {
	return fmt.Sprintf("image of %d bytes (%.1f MiB) is too small for its content: it needs at least %d MiB",
		e.Size, float64(e.Size)/(1<<20), e.Needed>>20)
}

// ContentError says that the tree holds something no ext2 image made here
// can store, whatever its size: a file or symlink target too long, a
// directory linked twice or with too many links, a node of a type ext2
// has no inode for, a lost+found that is not a directory, a name longer
// than a directory entry holds.
type ContentError struct {
	Path string // the node's path in the image, from "/"
	msg  string
}

// Error names the node and what is wrong with it.
func (e *ContentError) Error() string { return e.msg }

func contentErr(path, format string, args ...any) error {
	return &ContentError{Path: path, msg: fmt.Sprintf(format, args...)}
}

func (o *Options) blockSize(size int64) (uint32, error) {
	switch o.BlockSize {
	case 0:
		return autoBlockSize(size), nil
	case 1024, 2048, 4096:
		return o.BlockSize, nil
	}
	return 0, fmt.Errorf("block size %d: NetBSD mounts ext2 with 1024, 2048 or 4096-byte blocks", o.BlockSize)
}

// inodeWish returns the inodes the content needs and the count to aim for.
func (o *Options) inodeWish(p *plan, size int64) (need, want uint64) {
	need = uint64(len(p.inodes)) + firstIno - 2
	if o.Inodes > 0 {
		return need, max(o.Inodes, need)
	}
	want = uint64(size) / uint64(p.bs) / 4
	return need, max(want, need+spareInodes(need))
}

// spareInodes is how many free inodes an image whose content takes n
// gets at least (unless Options.Inodes says otherwise): a quarter of n,
// the share of its content an auto-sized image gets as free space, and
// at least 16. With a tenth, an image of many small files ran out of
// inodes while 86% of its blocks were free.
func spareInodes(n uint64) uint64 { return max(n/4, 16) }

// layout plans t for opts and returns the plan and geometry, or a
// *TooSmallError carrying the size that would fit.
func layout(t *fstree.Tree, opts *Options) (*plan, *geometry, error) {
	bs, err := opts.blockSize(opts.Size)
	if err != nil {
		return nil, nil, err
	}
	p, err := newPlan(t, bs)
	if err != nil {
		return nil, nil, err
	}
	if g, err := fit(p, opts, opts.Size, false); err == nil {
		return p, g, nil
	} else if !errors.Is(err, errTooSmall) {
		return nil, nil, err
	}
	need, err := minSize(t, opts, false)
	if err != nil {
		return nil, nil, err
	}
	return nil, nil, &TooSmallError{Size: opts.Size, Needed: need}
}

// fit lays out p in an image of size bytes, or returns errTooSmall. The
// inodes are those opts and the content want, as many as fit the
// groups' bitmaps. With spare set and opts.Inodes 0 (an image sized to
// its content), an image in which fewer than the content's plus its
// spareInodes fit is too small. Without spare (a size given), the spare
// inodes are a wish: when their tables leave too few blocks for the
// content, the image gets as many as do fit, down to the content's own,
// so that a size that held the content before spare inodes were asked
// for still does.
func fit(p *plan, opts *Options, size int64, spare bool) (*geometry, error) {
	need, want := opts.inodeWish(p, size)
	g, err := fitInodes(p, size, need, want)
	if !errors.Is(err, errTooSmall) || spare || opts.Inodes > 0 || want == need {
		if err == nil && spare && opts.Inodes == 0 && uint64(g.ipg)*uint64(g.groups) < need+spareInodes(need) {
			return nil, errTooSmall
		}
		return g, err
	}
	if g, err = fitInodes(p, size, need, need); err != nil {
		return nil, err
	}
	// need fits and want does not: the most inodes between them that fit.
	lo, hi := need, want
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		switch m, err := fitInodes(p, size, need, mid); {
		case err == nil:
			g, lo = m, mid
		case errors.Is(err, errTooSmall):
			hi = mid
		default:
			return nil, err
		}
	}
	return g, nil
}

// fitInodes lays out p in an image of size bytes with at least need and
// up to want inodes, or returns errTooSmall if p's blocks do not fit.
func fitInodes(p *plan, size int64, need, want uint64) (*geometry, error) {
	g, err := newGeometry(size, p.bs, need, want)
	if err != nil {
		return nil, err
	}
	if g.capacity() < p.blocks {
		return nil, errTooSmall
	}
	return g, nil
}

// MinSize returns the smallest image size, in whole MiB, that holds t with
// opts (opts.Size is ignored; the block size follows the size when it is
// 0) and, when opts.Inodes is 0, a quarter more inodes than t takes (see
// spareInodes): the least an image sized to its content should have. An
// image of a size given needs only room for t's own inodes; a
// TooSmallError says how much that is.
func MinSize(t *fstree.Tree, opts *Options) (int64, error) {
	return minSize(t, opts, true)
}

// AutoSize returns the size of an image sized to t's content with room
// to spare: the least that holds it (MinSize) plus extra(least), rounded
// up to a whole MiB. With opts.BlockSize 0 it sets it to the block size
// that least was found with, which the larger size may not get: 1 KiB
// blocks below 512 MiB and 4 KiB above, in which each small file takes
// 4 KiB, so content that needs 401 MiB left 1% of a 512 MiB image free.
func AutoSize(t *fstree.Tree, opts *Options, extra func(least int64) int64) (int64, error) {
	least, err := MinSize(t, opts)
	if err != nil {
		return 0, err
	}
	if opts.BlockSize == 0 {
		opts.BlockSize = autoBlockSize(least)
	}
	return (least + extra(least) + 1<<20 - 1) &^ (1<<20 - 1), nil
}

// minSize is MinSize, the spare inodes asked for or not (see fit).
func minSize(t *fstree.Tree, opts *Options, spare bool) (int64, error) {
	plans := map[uint32]*plan{}
	fits := func(mb int64) (bool, error) {
		size := mb << 20
		bs, err := opts.blockSize(size)
		if err != nil {
			return false, err
		}
		p := plans[bs]
		if p == nil {
			if p, err = newPlan(t, bs); err != nil {
				return false, err
			}
			plans[bs] = p
		}
		_, err = fit(p, opts, size, spare)
		if errors.Is(err, errTooSmall) {
			return false, nil
		}
		return err == nil, err
	}
	hi := int64(1)
	for {
		ok, err := fits(hi)
		if err != nil {
			return 0, err
		}
		if ok {
			break
		}
		if hi > 1<<22 {
			return 0, fmt.Errorf("content does not fit in %d MiB", hi)
		}
		hi *= 2
	}
	lo := hi / 2 // does not fit (or 0)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		ok, err := fits(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi << 20, nil
}

// Write lays out t as an ext2 file system of opts.Size bytes and writes it
// to w at offset 0. Blocks it does not use, and blocks of zeros (most of
// the inode tables of a large image), are not written: w should read zeros
// there (a new or truncated file does). A regular file shorter than
// opts.Size (a w with Truncate and Stat methods: an *os.File) is extended
// to it with Truncate, so it keeps those blocks as holes; a longer one
// keeps its length and what is past the image.
func Write(w io.WriterAt, t *fstree.Tree, opts Options) error {
	if w == nil {
		return fmt.Errorf("no image file to write to")
	}
	if opts.Size <= 0 {
		return fmt.Errorf("image size %d: must be positive", opts.Size)
	}
	if len(opts.Label) > 16 {
		return fmt.Errorf("volume label %q is %d bytes, at most 16", opts.Label, len(opts.Label))
	}
	if len(opts.LastMounted) > lastMountedMax || strings.IndexByte(opts.LastMounted, 0) >= 0 {
		return fmt.Errorf("last mount point %q: at most %d bytes, no NUL, fit the superblock's field", opts.LastMounted, lastMountedMax)
	}
	if err := CheckTimestamp(opts.Timestamp); err != nil {
		return err
	}
	if opts.Timestamp == 0 && !opts.TimestampSet {
		opts.Timestamp = time.Now().Unix()
	}
	p, g, err := layout(t, &opts)
	if err != nil {
		return err
	}
	iw := newImageWriter(w, p, g, &opts)
	if err := iw.writeAll(); err != nil {
		return err
	}
	return nil
}

// CheckTimestamp reports an error when ts, an Options.Timestamp, is a
// time ext2 cannot store: outside fstree.MinTime..MaxTime. NetBSD reads
// an inode's 32-bit times signed, so any other would wrap (2^31+100
// reads as 1901). An explicit time is refused rather than clamped as a
// set's file times are: the image would not say what was asked for.
func CheckTimestamp(ts int64) error {
	if ts < fstree.MinTime || ts > fstree.MaxTime {
		return fmt.Errorf("Timestamp %d is outside the times ext2 stores, %d (%s) to %d (%s)", ts,
			int64(fstree.MinTime), time.Unix(fstree.MinTime, 0).UTC().Format(time.RFC3339),
			int64(fstree.MaxTime), time.Unix(fstree.MaxTime, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// uuid derives a version-4-shaped UUID from the options when none is given.
func (o *Options) uuid(blocks uint32) [16]byte {
	if o.UUID != [16]byte{} {
		return o.UUID
	}
	h := sha256.New()
	fmt.Fprintf(h, "smolvmm ext2 %d %d %q", o.Timestamp, blocks, o.Label)
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

var le = binary.LittleEndian
