package ext2

import (
	"encoding/binary"
	"fmt"
	"path"
	"sort"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// lostFound is the name e2fsck and the NetBSD fsck look for.
const lostFound = "lost+found"

// lostFoundBytes is how much room lost+found gets up front, so that fsck
// can reconnect files without allocating blocks: 16 KiB, as mke2fs and
// NetBSD's newfs_ext2fs give it from 2 KiB blocks up (with 1 KiB blocks
// they stop at the 12 direct blocks; here the last four go through the
// indirect block, which e2fsck and NetBSD read alike).
const lostFoundBytes = 16384

// maxLinks is the highest link count of a file or directory: NetBSD's
// EXT2FS_LINK_MAX (65000 in 9.1, sys/ufs/ext2fs/ext2fs.h:134), below the
// 65535 the inode's 16-bit field holds. A directory's count is 2 plus its
// subdirectories. (Older kernels' EXT2FS_LINK_MAX of 32000 only refuses
// new links at run time: an image above it still mounts and reads.)
const maxLinks = 65000

// inode is one node to write, with its number and link count.
type inode struct {
	ino    uint32
	node   *fstree.Node
	links  uint32
	dir    [][]byte // directories: content blocks
	parent uint32   // directories: inode of the parent
	path   string   // first path, for messages
}

// plan is the image content, independent of the layout of block groups.
type plan struct {
	bs      uint32
	inodes  []*inode // in inode-number order
	byNode  map[*fstree.Node]*inode
	blocks  uint64 // blocks needed for data, directories and indirect blocks
	lf      *fstree.Node
	present map[*fstree.Node][]uint32 // regular files: logical blocks that are not all zero
}

// fileType maps a node type to the ext2 directory entry type.
func fileType(t fstree.Type) byte {
	switch t {
	case fstree.Regular:
		return 1
	case fstree.Dir:
		return 2
	case fstree.CharDev:
		return 3
	case fstree.BlockDev:
		return 4
	case fstree.FIFO:
		return 5
	case fstree.Symlink:
		return 7
	}
	return 0
}

// newPlan numbers the inodes of t (root 2, lost+found 11, the rest from 12 in
// walk order), counts links and builds directory blocks for block size bs.
func newPlan(t *fstree.Tree, bs uint32) (*plan, error) {
	p := &plan{bs: bs, byNode: map[*fstree.Node]*inode{}, present: map[*fstree.Node][]uint32{}}
	p.lf = t.Root.Child(lostFound)
	if p.lf == nil {
		p.lf = fstree.NewDir(0700)
	} else if p.lf.Type != fstree.Dir {
		return nil, contentErr("/"+lostFound, "/%s is a %s: it must be a directory", lostFound, p.lf.Type)
	}
	add := func(n *fstree.Node, ino uint32, path string) *inode {
		in := &inode{ino: ino, node: n, path: path}
		p.byNode[n] = in
		p.inodes = append(p.inodes, in)
		return in
	}
	add(t.Root, rootIno, "/")
	add(p.lf, firstIno, "/"+lostFound)
	next := uint32(firstIno + 1)
	err := t.Walk(func(path string, n *fstree.Node) error {
		if path == "" || n == p.lf {
			return nil
		}
		if err := checkName(path); err != nil {
			return err
		}
		in := p.byNode[n]
		if in == nil {
			in = add(n, next, "/"+path)
			next++
		}
		if n.Type == fstree.Dir && in.links > 0 {
			return contentErr("/"+path, "/%s: a directory cannot be linked twice", path)
		}
		in.links++
		if in.links > maxLinks {
			return contentErr(in.path, "%s has more than %d links", in.path, maxLinks)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkDirLinks(p.inodes, t.Root.Child(lostFound) == nil); err != nil {
		return nil, err
	}
	p.byNode[t.Root].links = 2 // "." and its own ".."
	p.byNode[p.lf].links = 1
	for _, in := range p.inodes {
		if err := p.prepare(in, t.Root); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkDirLinks refuses a directory whose link count (its entry, its "."
// and each subdirectory's "..") would exceed maxLinks, before prepare
// builds any directory block: the inode's 16-bit field would wrap. addLF
// tells that the root gets a lost+found the tree lacks.
func checkDirLinks(inodes []*inode, addLF bool) error {
	for _, in := range inodes {
		n := in.node
		if n.Type != fstree.Dir {
			continue
		}
		subdirs := 0
		if in.ino == rootIno && addLF {
			subdirs++
		}
		for _, name := range n.Names() {
			if n.Child(name).Type == fstree.Dir {
				subdirs++
			}
		}
		if links := 2 + subdirs; links > maxLinks {
			return contentErr(in.path, "directory %s would have %d links (%d subdirectories), more than the %d NetBSD's ext2fs allows: split it", in.path, links, subdirs, maxLinks)
		}
	}
	return nil
}

// prepare computes the content blocks of one inode and adds them to the count.
func (p *plan) prepare(in *inode, root *fstree.Node) error {
	n := in.node
	switch n.Type {
	case fstree.Dir:
		if err := p.buildDir(in, root); err != nil {
			return err
		}
		nb, err := mappedBlocks(allBlocks(len(in.dir)), p.bs)
		if err != nil {
			return fmt.Errorf("%s: %w", in.path, err)
		}
		p.blocks += nb
	case fstree.Regular:
		if n.Size < 0 {
			return contentErr(in.path, "%s: negative size %d", in.path, n.Size)
		}
		// Checked on the size, not only on the blocks with data: a
		// sparse file whose data ends early still records its size,
		// which e2fsck calls corrupt past what the block map can reach.
		if limit := maxFileBytes(p.bs); n.Size > limit {
			return contentErr(in.path, "%s: %d bytes, more than the %d bytes an ext2 file holds with %d-byte blocks (%d with 4096-byte blocks, which images of 512 MiB or more get by default)",
				in.path, n.Size, limit, p.bs, maxFileBytes(4096))
		}
		pr := p.nonZero(n)
		p.present[n] = pr
		nb, err := mappedBlocks(pr, p.bs)
		if err != nil {
			return fmt.Errorf("%s (%d bytes): %w", in.path, n.Size, err)
		}
		p.blocks += nb
	case fstree.Symlink:
		if len(n.Target) == 0 {
			return contentErr(in.path, "%s: symlink with an empty target", in.path)
		}
		// Checked here too for a tree built without CheckSymlink. The
		// limit is below the least block size, so a target always fits
		// the one block a long symlink gets.
		if err := fstree.CheckSymlink(in.path, n.Target); err != nil {
			return &ContentError{Path: in.path, msg: err.Error()}
		}
		if len(n.Target) >= 60 {
			p.blocks++
		}
	case fstree.CharDev, fstree.BlockDev, fstree.FIFO:
	default:
		return contentErr(in.path, "%s: cannot store a %s", in.path, n.Type)
	}
	return nil
}

// blockPath says where logical block l of a file is mapped: level 0 is a
// direct pointer (idx[0]), levels 1-3 go through the single, double or
// triple indirect block, following idx[0..level-1].
func blockPath(l uint64, bs uint32) (level int, idx [3]uint64, err error) {
	pp := uint64(bs / 4)
	switch {
	case l < ndir:
		return 0, [3]uint64{l}, nil
	case l < ndir+pp:
		return 1, [3]uint64{l - ndir}, nil
	case l < ndir+pp+pp*pp:
		l -= ndir + pp
		return 2, [3]uint64{l / pp, l % pp}, nil
	case l < ndir+pp+pp*pp+pp*pp*pp:
		l -= ndir + pp + pp*pp
		return 3, [3]uint64{l / (pp * pp), l / pp % pp, l % pp}, nil
	}
	return 0, idx, fmt.Errorf("logical block %d is past the triple-indirect limit", l)
}

// maxFileBytes is the size of the largest file the block map reaches
// with blocks of bs bytes: 12 direct blocks, then the single, double and
// triple indirect ones (e2fsck's ext2_max_sizes).
func maxFileBytes(bs uint32) int64 {
	pp := int64(bs / 4)
	return (ndir + pp + pp*pp + pp*pp*pp) * int64(bs)
}

// mappedBlocks counts the data and indirect blocks of a file whose present
// logical blocks are listed (sorted) in present. One indirect block serves
// each distinct prefix of a block's path (the empty prefix included); as
// present is sorted, a prefix is new exactly when it differs from the
// previous block's.
func mappedBlocks(present []uint32, bs uint32) (uint64, error) {
	total := uint64(len(present))
	prevLevel, prevIdx := 0, [3]uint64{}
	for _, l := range present {
		level, idx, err := blockPath(uint64(l), bs)
		if err != nil {
			return 0, err
		}
		same := level == prevLevel
		for d := 0; d < level; d++ {
			if d > 0 && idx[d-1] != prevIdx[d-1] {
				same = false
			}
			if !same {
				total++
			}
		}
		prevLevel, prevIdx = level, idx
	}
	return total, nil
}

func allBlocks(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}

// nonZero lists the logical blocks of a regular file that hold a non-zero
// byte; all-zero blocks are left as holes, which read back as zeros.
func (p *plan) nonZero(n *fstree.Node) []uint32 {
	var out []uint32
	bs := int64(p.bs)
	for _, e := range n.Extents {
		end := e.Off + int64(len(e.Data))
		if end > n.Size {
			end = n.Size
		}
		for b := e.Off / bs; b*bs < end; b++ {
			lo, hi := b*bs-e.Off, (b+1)*bs-e.Off
			if lo < 0 {
				lo = 0
			}
			if hi > end-e.Off {
				hi = end - e.Off
			}
			if fstree.IsZero(e.Data[lo:hi]) {
				continue
			}
			if len(out) > 0 && out[len(out)-1] >= uint32(b) {
				continue
			}
			out = append(out, uint32(b))
		}
	}
	return out
}

// blockData returns the content of logical block b of n, padded to a block.
func (p *plan) blockData(n *fstree.Node, b uint32, buf []byte) []byte {
	bs := int64(p.bs)
	lo, hi := int64(b)*bs, int64(b+1)*bs
	if len(n.Extents) == 1 && n.Extents[0].Off == 0 {
		d := n.Extents[0].Data
		if hi <= int64(len(d)) && hi <= n.Size {
			return d[lo:hi]
		}
	}
	clear(buf)
	// The extents are sorted and apart: start at the first ending past
	// lo, as a sparse file has one per run of data, up to 2^19 in 4 GiB.
	first := sort.Search(len(n.Extents), func(i int) bool {
		return n.Extents[i].Off+int64(len(n.Extents[i].Data)) > lo
	})
	for _, e := range n.Extents[first:] {
		s, t := e.Off, e.Off+int64(len(e.Data))
		if s >= hi {
			break
		}
		if t > n.Size {
			t = n.Size
		}
		if t <= lo {
			continue
		}
		from, to := max(s, lo), min(t, hi)
		copy(buf[from-lo:to-lo], e.Data[from-s:to-s])
	}
	return buf
}

// checkName refuses a tree path whose last name does not fit a directory
// entry: its length is one byte there, so a longer name would wrap to
// another name without a word. The tree's own paths are checked as they
// are put; this holds for any tree.
func checkName(p string) error {
	name := path.Base(p)
	if len(name) > fstree.MaxNameLen {
		return contentErr("/"+p, "/%s: name %.20q... is %d bytes, more than the %d an ext2 directory entry holds", p, name, len(name), fstree.MaxNameLen)
	}
	return nil
}

// buildDir lays out the entries of directory in ("." and ".." first, then
// sorted names) in blocks; lost+found gets extra empty blocks.
func (p *plan) buildDir(in *inode, root *fstree.Node) error {
	n := in.node
	parent := p.byNode[root].ino
	if in.ino != rootIno {
		parent = in.parent
	}
	var blocks [][]byte
	var cur []byte
	var lastOff int
	put := func(ino uint32, name string, ft byte) {
		rl := 8 + (len(name)+3)&^3
		if cur == nil || len(cur)+rl > int(p.bs) {
			if cur != nil {
				binary.LittleEndian.PutUint16(cur[lastOff+4:], uint16(int(p.bs)-lastOff))
				blocks = append(blocks, cur[:p.bs])
			}
			cur = make([]byte, 0, p.bs)
		}
		lastOff = len(cur)
		e := make([]byte, rl)
		binary.LittleEndian.PutUint32(e, ino)
		binary.LittleEndian.PutUint16(e[4:], uint16(rl))
		e[6], e[7] = byte(len(name)), ft
		copy(e[8:], name)
		cur = append(cur, e...)
	}
	put(in.ino, ".", 2)
	put(parent, "..", 2)
	for _, name := range n.Names() {
		c := n.Child(name)
		ci := p.byNode[c]
		if c.Type == fstree.Dir {
			in.links++
			ci.parent = in.ino
			ci.links++ // its "."; the entry here was counted by the walk
		}
		put(ci.ino, name, fileType(c.Type))
	}
	if in.ino == rootIno && n.Child(lostFound) == nil {
		lf := p.byNode[p.lf]
		in.links++
		lf.parent = in.ino
		lf.links++
		put(lf.ino, lostFound, 2)
	}
	binary.LittleEndian.PutUint16(cur[lastOff+4:], uint16(int(p.bs)-lastOff))
	blocks = append(blocks, cur[:p.bs])
	if in.node == p.lf {
		for len(blocks)*int(p.bs) < lostFoundBytes {
			b := make([]byte, p.bs)
			binary.LittleEndian.PutUint16(b[4:], uint16(p.bs))
			blocks = append(blocks, b)
		}
	}
	in.dir = blocks
	return nil
}
