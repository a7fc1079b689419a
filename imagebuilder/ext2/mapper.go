package ext2

import "fmt"

// indirect is an indirect block being filled: its pointers, and for the
// upper levels the blocks those pointers name.
type indirect struct {
	phys uint32
	ptr  []uint32
	sub  []*indirect
}

// mapper builds the block map of one file as its blocks are allocated:
// an indirect block is allocated just before the first data block it maps.
type mapper struct {
	iw     *imageWriter
	iblock [15]uint32
	roots  [3]*indirect
	all    []*indirect
	count  uint64 // data plus indirect blocks
}

func newMapper(iw *imageWriter) *mapper { return &mapper{iw: iw} }

func (m *mapper) newIndirect() (*indirect, error) {
	b, err := m.iw.alloc()
	if err != nil {
		return nil, err
	}
	pp := m.iw.g.bs / 4
	ind := &indirect{phys: b, ptr: make([]uint32, pp)}
	m.all = append(m.all, ind)
	m.count++
	return ind, nil
}

// put allocates a block for logical block l (given in increasing order) and
// writes data into it.
func (m *mapper) put(l uint32, data []byte) error {
	level, idx, err := blockPath(uint64(l), m.iw.g.bs)
	if err != nil {
		return err
	}
	var slot *uint32
	if level == 0 {
		slot = &m.iblock[idx[0]]
	} else {
		if m.roots[level-1] == nil {
			ind, err := m.newIndirect()
			if err != nil {
				return err
			}
			m.roots[level-1] = ind
			m.iblock[ndir+level-1] = ind.phys
		}
		cur := m.roots[level-1]
		for d := 0; d < level-1; d++ {
			if cur.sub == nil {
				cur.sub = make([]*indirect, len(cur.ptr))
			}
			next := cur.sub[idx[d]]
			if next == nil {
				if next, err = m.newIndirect(); err != nil {
					return err
				}
				cur.sub[idx[d]] = next
				cur.ptr[idx[d]] = next.phys
			}
			cur = next
		}
		slot = &cur.ptr[idx[level-1]]
	}
	if *slot != 0 {
		return fmt.Errorf("logical block %d mapped twice", l)
	}
	b, err := m.iw.alloc()
	if err != nil {
		return err
	}
	*slot = b
	m.count++
	if err := m.iw.out.put(b, data); err != nil {
		return err
	}
	m.iw.done++
	if m.iw.opts.Progress != nil && m.iw.done%1024 == 0 {
		bs := uint64(m.iw.g.bs)
		m.iw.opts.Progress(m.iw.done*bs, m.iw.p.blocks*bs)
	}
	return nil
}

// finish writes the file's indirect blocks.
func (m *mapper) finish() error {
	b := m.iw.indBuf
	for _, ind := range m.all {
		for i, p := range ind.ptr {
			le.PutUint32(b[4*i:], p)
		}
		if err := m.iw.out.put(ind.phys, b); err != nil {
			return err
		}
	}
	m.iw.done += uint64(len(m.all))
	return nil
}
