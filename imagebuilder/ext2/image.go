package ext2

import (
	"fmt"
	"io"
	"os"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// imageWriter allocates blocks in order, group by group, writes data as it
// goes and keeps the metadata (bitmaps, inode tables) in memory until the end.
type imageWriter struct {
	w    io.WriterAt
	p    *plan
	g    *geometry
	opts *Options

	// Per group, made when the group's first block or inode is taken:
	// an image far larger than its content has thousands of groups that
	// stay empty, whose bitmaps writeMeta makes one at a time and whose
	// inode tables are never written (they read as zeros).
	bbm      [][]byte // block bitmap per group
	ibm      [][]byte // inode bitmap per group
	itab     [][]byte // inode table per group
	dirs     []uint32 // directories per group
	freeB    []uint32
	freeI    []uint32
	curGroup uint32
	next     uint32 // next block to hand out
	out      *blockBuf
	indBuf   []byte // one indirect block being encoded (out copies it)
	done     uint64
}

func newImageWriter(w io.WriterAt, p *plan, g *geometry, opts *Options) *imageWriter {
	iw := &imageWriter{w: w, p: p, g: g, opts: opts}
	iw.out = &blockBuf{w: w, bs: int64(g.bs)}
	iw.indBuf = make([]byte, g.bs)
	iw.bbm = make([][]byte, g.groups)
	iw.ibm = make([][]byte, g.groups)
	iw.itab = make([][]byte, g.groups)
	iw.dirs = make([]uint32, g.groups)
	iw.freeB = make([]uint32, g.groups)
	iw.freeI = make([]uint32, g.groups)
	for grp := uint32(0); grp < g.groups; grp++ {
		iw.freeB[grp] = g.end(grp) - g.start(grp) - g.overhead(grp)
		iw.freeI[grp] = g.ipg
	}
	for ino := uint32(1); ino < firstIno; ino++ { // reserved inodes
		iw.markInode(ino)
	}
	_, _, _, iw.next = g.meta(0)
	return iw
}

// emptyBlockBitmap fills b with the block bitmap of group grp before any
// allocation: its metadata blocks and the padding past the end of the file
// system are in use.
func (g *geometry) emptyBlockBitmap(grp uint32, b []byte) {
	clear(b)
	for i := uint32(0); i < g.overhead(grp); i++ {
		setBit(b, i)
	}
	for i := g.end(grp) - g.start(grp); i < 8*g.bs; i++ {
		setBit(b, i)
	}
}

// emptyInodeBitmap fills b with a group's inode bitmap with no inode in
// use: the bits past the group's inodes are set.
func (g *geometry) emptyInodeBitmap(b []byte) {
	clear(b)
	for i := g.ipg; i < 8*g.bs; i++ {
		setBit(b, i)
	}
}

func (iw *imageWriter) blockBitmap(grp uint32) []byte {
	if iw.bbm[grp] == nil {
		iw.bbm[grp] = make([]byte, iw.g.bs)
		iw.g.emptyBlockBitmap(grp, iw.bbm[grp])
	}
	return iw.bbm[grp]
}

func (iw *imageWriter) inodeBitmap(grp uint32) []byte {
	if iw.ibm[grp] == nil {
		iw.ibm[grp] = make([]byte, iw.g.bs)
		iw.g.emptyInodeBitmap(iw.ibm[grp])
	}
	return iw.ibm[grp]
}

func (iw *imageWriter) inodeTable(grp uint32) []byte {
	if iw.itab[grp] == nil {
		iw.itab[grp] = make([]byte, iw.g.ipg*inodeSize)
	}
	return iw.itab[grp]
}

func setBit(b []byte, i uint32) { b[i/8] |= 1 << (i % 8) }

func (iw *imageWriter) markInode(ino uint32) {
	grp, idx := (ino-1)/iw.g.ipg, (ino-1)%iw.g.ipg
	setBit(iw.inodeBitmap(grp), idx)
	iw.freeI[grp]--
}

// alloc hands out the next free block, moving on to the next group's data
// area when a group is full.
func (iw *imageWriter) alloc() (uint32, error) {
	for iw.next >= iw.g.end(iw.curGroup) {
		iw.curGroup++
		if iw.curGroup >= iw.g.groups {
			return 0, fmt.Errorf("out of blocks (internal sizing error)")
		}
		_, _, _, iw.next = iw.g.meta(iw.curGroup)
	}
	b := iw.next
	iw.next++
	grp := iw.curGroup
	setBit(iw.blockBitmap(grp), b-iw.g.start(grp))
	iw.freeB[grp]--
	return b, nil
}

func (iw *imageWriter) writeAll() error {
	buf := make([]byte, iw.g.bs)
	for _, in := range iw.p.inodes {
		if err := iw.writeInode(in, buf); err != nil {
			return err
		}
	}
	if err := iw.out.flush(); err != nil {
		return err
	}
	if iw.opts.Progress != nil {
		total := iw.p.blocks * uint64(iw.g.bs)
		iw.opts.Progress(total, total)
	}
	return iw.writeMeta()
}

// writeInode allocates and writes the content of one inode and fills its
// slot in the inode table.
func (iw *imageWriter) writeInode(in *inode, buf []byte) error {
	n := in.node
	grp, idx := (in.ino-1)/iw.g.ipg, (in.ino-1)%iw.g.ipg
	raw := iw.inodeTable(grp)[idx*inodeSize : (idx+1)*inodeSize] // zeroed when made
	mode := uint16(n.Perm & 07777)
	var size uint64
	var m *mapper
	switch n.Type {
	case fstree.Regular:
		mode |= 0x8000
		size = uint64(n.Size)
		m = newMapper(iw)
		for _, l := range iw.p.present[n] {
			if err := m.put(l, iw.p.blockData(n, l, buf)); err != nil {
				return fmt.Errorf("the image's %s: %w", in.path, err)
			}
		}
	case fstree.Dir:
		mode |= 0x4000
		size = uint64(len(in.dir)) * uint64(iw.g.bs)
		m = newMapper(iw)
		for l, b := range in.dir {
			if err := m.put(uint32(l), b); err != nil {
				return fmt.Errorf("the image's %s: %w", in.path, err)
			}
		}
		iw.dirs[grp]++
	case fstree.Symlink:
		mode |= 0xA000
		size = uint64(len(n.Target))
		if len(n.Target) < 60 {
			copy(raw[40:100], n.Target) // fast symlink: the target lives in the block pointers
		} else {
			m = newMapper(iw)
			clear(buf)
			copy(buf, n.Target)
			if err := m.put(0, buf); err != nil {
				return fmt.Errorf("the image's %s: %w", in.path, err)
			}
		}
	case fstree.CharDev, fstree.BlockDev:
		mode |= 0x2000
		if n.Type == fstree.BlockDev {
			mode |= 0x6000
		}
		le.PutUint32(raw[40:], netbsdDev(n.Major, n.Minor))
	case fstree.FIFO:
		mode |= 0x1000
	}
	var nblocks uint64
	if m != nil {
		if err := m.finish(); err != nil {
			return fmt.Errorf("the image's %s: %w", in.path, err)
		}
		for i, b := range m.iblock {
			le.PutUint32(raw[40+4*i:], b)
		}
		nblocks = m.count
	}
	// Stored as NetBSD reads it back, signed: a time past 2038 would
	// otherwise wrap to one before 1970.
	mtime, _ := fstree.ClampTime(n.Mtime)
	t := uint32(mtime)
	if !n.HasMtime() {
		t = uint32(iw.opts.Timestamp)
	}
	le.PutUint16(raw[0:], mode)
	le.PutUint16(raw[2:], uint16(n.UID))
	le.PutUint32(raw[4:], uint32(size))
	le.PutUint32(raw[8:], t)  // atime
	le.PutUint32(raw[12:], t) // ctime
	le.PutUint32(raw[16:], t) // mtime
	le.PutUint16(raw[24:], uint16(n.GID))
	le.PutUint16(raw[26:], uint16(in.links))
	le.PutUint32(raw[28:], uint32(nblocks*uint64(iw.g.bs/512)))
	le.PutUint32(raw[108:], uint32(size>>32))
	le.PutUint16(raw[116:], uint16(nblocks*uint64(iw.g.bs/512)>>32))
	le.PutUint16(raw[120:], uint16(n.UID>>16))
	le.PutUint16(raw[122:], uint16(n.GID>>16))
	if in.ino >= firstIno { // the root is among the reserved inodes, already marked
		iw.markInode(in.ino)
	}
	return nil
}

// netbsdDev encodes a device number as NetBSD's makedev does: major<<8|minor
// for minors below 256, the high minor bits above bit 20.
func netbsdDev(major, minor uint32) uint32 {
	return (major<<8)&0x000fff00 | (minor<<12)&0xfff00000 | minor&0xff
}

// writeMeta writes the bitmaps, inode tables, group descriptors and
// superblocks (the primary and the sparse_super backups).
func (iw *imageWriter) writeMeta() error {
	g := iw.g
	bs := int64(g.bs)
	gdt := make([]byte, g.gdtBlocks*g.bs)
	scratchB, scratchI := make([]byte, g.bs), make([]byte, g.bs)
	g.emptyInodeBitmap(scratchI)
	var freeB, freeI uint64
	for grp := uint32(0); grp < g.groups; grp++ {
		bb, ib, it, _ := g.meta(grp)
		d := gdt[grp*descSize:]
		le.PutUint32(d[0:], bb)
		le.PutUint32(d[4:], ib)
		le.PutUint32(d[8:], it)
		le.PutUint16(d[12:], uint16(iw.freeB[grp]))
		le.PutUint16(d[14:], uint16(iw.freeI[grp]))
		le.PutUint16(d[16:], uint16(iw.dirs[grp]))
		freeB += uint64(iw.freeB[grp])
		freeI += uint64(iw.freeI[grp])
		bbm, ibm := iw.bbm[grp], iw.ibm[grp]
		if bbm == nil {
			bbm = scratchB
			g.emptyBlockBitmap(grp, bbm)
		}
		if ibm == nil {
			ibm = scratchI
		}
		// A table no inode of the group used is left out whole.
		for _, w := range []struct {
			blk  uint32
			data []byte
		}{{bb, bbm}, {ib, ibm}, {it, iw.itab[grp]}} {
			if err := iw.writeNonZero(w.data, w.blk); err != nil {
				return fmt.Errorf("writing group %d metadata: %w", grp, err)
			}
		}
	}
	for grp := uint32(0); grp < g.groups; grp++ {
		if !hasSuper(grp) {
			continue
		}
		off := int64(g.start(grp)) * bs
		if grp == 0 {
			off = superOffset
		}
		if _, err := iw.w.WriteAt(iw.superblock(grp, freeB, freeI), off); err != nil {
			return fmt.Errorf("writing superblock of group %d at byte %d: %w", grp, off, err)
		}
		gdtOff := int64(g.start(grp)+1) * bs
		if _, err := iw.w.WriteAt(gdt, gdtOff); err != nil {
			return fmt.Errorf("writing group descriptors of group %d at byte %d: %w", grp, gdtOff, err)
		}
	}
	// Make the image its full size even when its last blocks are unused:
	// a shorter file is extended without writing (its new end a hole), a
	// longer one left as it is (what is past the image is not the
	// image's to cut); a writer that cannot be truncated (a device) gets
	// its last byte written.
	if f, ok := iw.w.(interface {
		Truncate(int64) error
		Stat() (os.FileInfo, error)
	}); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if st.Size() >= iw.opts.Size || f.Truncate(iw.opts.Size) == nil {
				return nil
			}
		}
	}
	last := iw.opts.Size - 1
	var b [1]byte
	if _, err := iw.w.WriteAt(b[:], last); err != nil {
		return fmt.Errorf("extending image to %d bytes: %w", iw.opts.Size, err)
	}
	return nil
}

// writeNonZero writes data, whole blocks from block blk on, skipping the
// blocks that are all zeros: the image reads zeros there already, and an
// unwritten block of a file takes no disk.
func (iw *imageWriter) writeNonZero(data []byte, blk uint32) error {
	bs := int(iw.g.bs)
	for i := 0; i < len(data); {
		if fstree.IsZero(data[i : i+bs]) {
			i += bs
			continue
		}
		j := i + bs
		for j < len(data) && !fstree.IsZero(data[j:j+bs]) {
			j += bs
		}
		b := blk + uint32(i/bs)
		if _, err := iw.w.WriteAt(data[i:j], int64(b)*int64(bs)); err != nil {
			return fmt.Errorf("writing %d bytes at block %d: %w", j-i, b, err)
		}
		i = j
	}
	return nil
}

// lastMountedMax is the longest Options.LastMounted: the superblock's
// 64-byte field less the NUL NetBSD's strlcpy ends it with.
const lastMountedMax = 63

// superblock is group grp's copy of the superblock: the primary for
// group 0, a backup otherwise, alike but for the group number.
func (iw *imageWriter) superblock(grp uint32, freeB, freeI uint64) []byte {
	g, o := iw.g, iw.opts
	s := make([]byte, 1024)
	logBS := uint32(0)
	for 1024<<logBS < g.bs {
		logBS++
	}
	ts := uint32(o.Timestamp)
	le.PutUint32(s[0:], g.ipg*g.groups)
	le.PutUint32(s[4:], g.blocks)
	le.PutUint32(s[8:], 0) // no blocks reserved for root: everything in the VM runs as root
	le.PutUint32(s[12:], uint32(freeB))
	le.PutUint32(s[16:], uint32(freeI))
	le.PutUint32(s[20:], g.fdb)
	le.PutUint32(s[24:], logBS)
	le.PutUint32(s[28:], logBS)
	le.PutUint32(s[32:], g.bpg)
	le.PutUint32(s[36:], g.bpg)
	le.PutUint32(s[40:], g.ipg)
	le.PutUint32(s[48:], ts)     // write time
	le.PutUint16(s[54:], 0xffff) // max mount count -1: no forced checks
	le.PutUint16(s[56:], magic)
	le.PutUint16(s[58:], 1) // clean
	le.PutUint16(s[60:], 1) // on errors: continue
	le.PutUint32(s[64:], ts)
	le.PutUint32(s[76:], 1) // revision 1
	le.PutUint32(s[84:], firstIno)
	le.PutUint16(s[88:], inodeSize)
	le.PutUint16(s[90:], uint16(grp))
	le.PutUint32(s[96:], 0x0002)  // incompat: filetype
	le.PutUint32(s[100:], 0x0003) // ro_compat: sparse_super, large_file
	u := o.uuid(g.blocks)
	copy(s[104:120], u[:])
	copy(s[120:136], o.Label)
	// The rest NUL, as NetBSD's strlcpy of a shorter one leaves it.
	copy(s[136:136+lastMountedMax], o.LastMounted)
	le.PutUint32(s[264:], ts) // mkfs time
	return s
}

// blockBuf gathers consecutive blocks into one write.
type blockBuf struct {
	w     io.WriterAt
	bs    int64
	start uint32
	buf   []byte
}

func (b *blockBuf) put(blk uint32, data []byte) error {
	if len(b.buf) > 0 && (blk != b.start+uint32(int64(len(b.buf))/b.bs) || len(b.buf) >= 1<<20) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if len(b.buf) == 0 {
		b.start = blk
	}
	b.buf = append(b.buf, data...)
	if pad := int64(len(data)) % b.bs; pad != 0 {
		b.buf = append(b.buf, make([]byte, b.bs-pad)...)
	}
	return nil
}

func (b *blockBuf) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	if _, err := b.w.WriteAt(b.buf, int64(b.start)*b.bs); err != nil {
		return fmt.Errorf("writing %d bytes at block %d: %w", len(b.buf), b.start, err)
	}
	b.buf = b.buf[:0]
	return nil
}
