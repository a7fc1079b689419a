package virtio

import (
	"encoding/binary"
	"fmt"

	"github.com/smolvmm/smolvmm/guestmem"
)

// Descriptor flags.
const (
	DescNext     = 1
	DescWrite    = 2
	DescIndirect = 4
)

// Desc is one validated buffer of a chain: [Addr, Addr+Len) lies in guest
// memory, and Write says the device may write it (else it may only read).
type Desc struct {
	Addr  uint64
	Len   uint32
	Write bool
}

// Chain is a validated descriptor chain: every buffer is inside guest
// memory, and all readable buffers come before all writable ones. Indirect
// tables are already flattened into Descs.
type Chain struct {
	// Head is the index to give back to Push.
	Head uint16
	// Descs are the buffers in chain order, valid until the queue's next
	// Pop.
	Descs []Desc

	mem *guestmem.Memory
}

// ReadableLen is the total length of the device-readable buffers.
func (c *Chain) ReadableLen() uint64 {
	var n uint64
	for _, d := range c.Descs {
		if !d.Write {
			n += uint64(d.Len)
		}
	}
	return n
}

// WritableLen is the total length of the device-writable buffers.
func (c *Chain) WritableLen() uint64 {
	var n uint64
	for _, d := range c.Descs {
		if d.Write {
			n += uint64(d.Len)
		}
	}
	return n
}

// Segments appends to dst the guest memory of the readable (write false) or
// writable (write true) buffers, in order, skipping empty ones. Buffers
// that follow each other in guest memory are merged into one slice (guest
// RAM is one mapping), so a device can move them in fewer system calls.
// The slices alias guest RAM: the guest can change them at any time, so
// copy before validating their contents.
func (c *Chain) Segments(dst [][]byte, write bool) ([][]byte, error) {
	var start, n uint64 // pending run of adjacent buffers
	flush := func() error {
		if n == 0 {
			return nil
		}
		s, err := c.mem.Slice(start, n)
		if err != nil {
			return fmt.Errorf("chain %d: buffer at %#x: %w", c.Head, start, err)
		}
		dst = append(dst, s)
		return nil
	}
	for _, d := range c.Descs {
		if d.Write != write || d.Len == 0 {
			continue
		}
		if n != 0 && start+n == d.Addr {
			n += uint64(d.Len)
			continue
		}
		if err := flush(); err != nil {
			return dst, err
		}
		start, n = d.Addr, uint64(d.Len)
	}
	return dst, flush()
}

// walker follows one chain: NEXT links within the descriptor table, and at
// most one level of INDIRECT when that feature was agreed. It bounds the work by the size of the table
// it is in, so loops end as "chain too long".
type walker struct {
	mem       *guestmem.Memory
	table     uint64 // address of the current descriptor table
	tableSize uint32 // entries in it
	steps     uint32 // descriptors read from it
	idx       uint32
	indirect  bool // in the indirect table
	allowInd  bool // FeatureIndirectDesc agreed: indirect tables may be followed
	done      bool
	seenWrite bool
	queueSize uint16
	head      uint16
}

// next returns the next buffer of the chain; ok is false at its end.
func (w *walker) next() (d Desc, ok bool, err error) {
	for !w.done {
		if w.idx >= w.tableSize {
			return Desc{}, false, w.fail("descriptor index %d >= table size %d", w.idx, w.tableSize)
		}
		w.steps++
		if w.steps > w.tableSize {
			return Desc{}, false, w.fail("chain longer than its table (%d entries): a loop?", w.tableSize)
		}
		// One bounds check per descriptor; the 16 bytes are copied
		// before they are decoded, so the guest cannot change a field
		// between its check and its use.
		at := w.table + descSize*uint64(w.idx)
		s, err := w.mem.Slice(at, descSize)
		if err != nil {
			return Desc{}, false, w.fail("descriptor %d at %#x outside guest memory", w.idx, at)
		}
		var raw [descSize]byte
		copy(raw[:], s)
		le := binary.LittleEndian
		addr, length, flags, nxt := le.Uint64(raw[0:]), le.Uint32(raw[8:]), le.Uint16(raw[12:]), le.Uint16(raw[14:])
		if flags&DescIndirect != 0 {
			if err := w.enterIndirect(addr, length, flags); err != nil {
				return Desc{}, false, err
			}
			continue
		}
		if err := w.mem.Check(addr, uint64(length)); err != nil {
			return Desc{}, false, w.fail("descriptor %d: buffer: %w", w.idx, err)
		}
		write := flags&DescWrite != 0
		if !write && w.seenWrite {
			return Desc{}, false, w.fail("descriptor %d is device-readable after a device-writable one", w.idx)
		}
		w.seenWrite = w.seenWrite || write
		if flags&DescNext == 0 {
			w.done = true
		} else {
			w.idx = uint32(nxt)
		}
		return Desc{Addr: addr, Len: length, Write: write}, true, nil
	}
	return Desc{}, false, nil
}

// enterIndirect switches to the indirect table an INDIRECT descriptor names.
// The table is read in place, entry by entry, so the driver's later edits
// are seen no earlier than a direct chain's would be.
func (w *walker) enterIndirect(addr uint64, length uint32, flags uint16) error {
	switch {
	case !w.allowInd:
		return w.fail("indirect descriptor %d, but VIRTIO_F_INDIRECT_DESC was not agreed", w.idx)
	case w.indirect:
		return w.fail("indirect descriptor inside an indirect table")
	case flags&DescNext != 0:
		return w.fail("indirect descriptor %d also has NEXT", w.idx)
	case length == 0 || length%descSize != 0:
		return w.fail("indirect table length %d is not a non-zero multiple of %d", length, descSize)
	case length/descSize > uint32(w.queueSize):
		return w.fail("indirect table of %d entries exceeds the queue size %d", length/descSize, w.queueSize)
	}
	if err := w.mem.Check(addr, uint64(length)); err != nil {
		return w.fail("indirect table: %w", err)
	}
	w.indirect = true
	w.table, w.tableSize, w.steps, w.idx = addr, length/descSize, 0, 0
	return nil
}

func (w *walker) fail(format string, args ...any) error {
	where := "queue"
	if w.indirect {
		where = "indirect table"
	}
	// format may wrap a cause (guestmem.ErrOutOfRange) with %w.
	return fmt.Errorf("%w: chain at head %d (%s): %w", ErrRing, w.head, where, fmt.Errorf(format, args...))
}

// walk validates the whole chain starting at head before any device sees
// it, so a device never acts on half of a bad chain.
func (q *Queue) walk(head uint16) (Chain, error) {
	w := walker{mem: q.mem, table: q.desc, tableSize: uint32(q.size), idx: uint32(head),
		queueSize: q.size, head: head, allowInd: q.indirect}
	c := Chain{Head: head, mem: q.mem, Descs: q.descs[:0]}
	for {
		d, ok, err := w.next()
		if err != nil {
			return Chain{}, err
		}
		if !ok {
			q.descs = c.Descs // keep what the chain grew
			return c, nil
		}
		c.Descs = append(c.Descs, d)
	}
}
