package ext2

import "fmt"

// On-disk constants of ext2 revision 1 as written here.
const (
	inodeSize    = 128 // the classic size: no extra fields are used, and more inodes fit a block
	firstIno     = 11
	rootIno      = 2
	descSize     = 32
	superOffset  = 1024
	minLastGroup = 50 // a last group with fewer free blocks than this is dropped, as mke2fs does
	ndir         = 12 // direct block pointers in an inode
	magic        = 0xEF53
)

// geometry is the block-group layout of one image.
type geometry struct {
	bs        uint32 // block size
	blocks    uint32 // blocks in the file system
	fdb       uint32 // first data block: 1 for 1 KiB blocks, 0 otherwise
	bpg       uint32 // blocks per group
	groups    uint32
	ipg       uint32 // inodes per group
	gdtBlocks uint32 // blocks of group descriptors
	itBlocks  uint32 // blocks of inode table per group
}

// hasSuper tells whether group g carries a superblock copy under
// sparse_super: groups 0 and 1 and the powers of 3, 5 and 7.
func hasSuper(g uint32) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []uint32{3, 5, 7} {
		n := b
		for n < g {
			n *= b
		}
		if n == g {
			return true
		}
	}
	return false
}

func (g *geometry) start(grp uint32) uint32 { return g.fdb + grp*g.bpg }

func (g *geometry) end(grp uint32) uint32 {
	e := g.start(grp) + g.bpg
	if e > g.blocks {
		e = g.blocks
	}
	return e
}

// overhead is the number of metadata blocks at the start of group grp.
func (g *geometry) overhead(grp uint32) uint32 {
	o := 2 + g.itBlocks
	if hasSuper(grp) {
		o += 1 + g.gdtBlocks
	}
	return o
}

// meta returns the block bitmap, inode bitmap, inode table and first data
// block of group grp.
func (g *geometry) meta(grp uint32) (bb, ib, it, data uint32) {
	b := g.start(grp)
	if hasSuper(grp) {
		b += 1 + g.gdtBlocks
	}
	return b, b + 1, b + 2, b + 2 + g.itBlocks
}

// capacity is the number of blocks free for data, directories and indirect blocks.
func (g *geometry) capacity() uint64 {
	var c uint64
	for grp := uint32(0); grp < g.groups; grp++ {
		c += uint64(g.end(grp) - g.start(grp) - g.overhead(grp))
	}
	return c
}

// largeImage is the size from which autoBlockSize picks 4 KiB blocks
// (tests lower it).
var largeImage int64 = 512 << 20

// autoBlockSize picks 1 KiB blocks for images below 512 MiB, as mke2fs does
// for "small" file systems: NetBSD sets are thousands of small files, and
// 1 KiB blocks waste less on them; larger images take 4 KiB.
func autoBlockSize(size int64) uint32 {
	if size < largeImage {
		return 1024
	}
	return 4096
}

// newGeometry lays out a file system of size bytes with block size bs and
// room for at least inodes inodes (wantInodes is the preferred count).
func newGeometry(size int64, bs uint32, inodes, wantInodes uint64) (*geometry, error) {
	g := &geometry{bs: bs, bpg: 8 * bs}
	if bs == 1024 {
		g.fdb = 1
	}
	nb := uint64(size) / uint64(bs)
	if nb > 1<<32-1 {
		return nil, fmt.Errorf("image size %d bytes is over the 32-bit block count limit for %d-byte blocks", size, bs)
	}
	g.blocks = uint32(nb)
	if wantInodes < inodes {
		wantInodes = inodes
	}
	for try := 0; try < 3; try++ {
		if g.blocks <= g.fdb {
			return nil, errTooSmall
		}
		g.groups = (g.blocks - g.fdb + g.bpg - 1) / g.bpg
		g.gdtBlocks = (g.groups*descSize + bs - 1) / bs
		ipb := bs / inodeSize
		ipg := (wantInodes + uint64(g.groups) - 1) / uint64(g.groups)
		ipg = (ipg + uint64(ipb) - 1) / uint64(ipb) * uint64(ipb)
		if ipg > uint64(8*bs) {
			ipg = uint64(8 * bs)
		}
		if ipg*uint64(g.groups) < inodes {
			return nil, errTooSmall
		}
		g.ipg = uint32(ipg)
		g.itBlocks = g.ipg * inodeSize / bs
		last := g.groups - 1
		size := g.end(last) - g.start(last)
		if size >= g.overhead(last)+minLastGroup {
			return g, nil
		}
		if g.groups == 1 {
			return nil, errTooSmall
		}
		g.blocks = g.start(last)
	}
	return nil, errTooSmall
}

var errTooSmall = fmt.Errorf("image too small")
