package fstree

import "fmt"

// RoomBlock is the unit in which LimitError and Tree.RoomLimit count the
// room file data takes: ext2's smallest block. A block of a file that
// holds a non-zero byte takes one in any image, of any block size.
const RoomBlock = 1024

// LimitError is the error of reading a set into a Tree once the regular
// files it holds, the one being read included, keep more data in memory
// than Tree.DataLimit or take more room than Tree.RoomLimit. Reading
// stops there: the rest of the sets is not read.
type LimitError struct {
	Room  bool  // RoomLimit was passed, not DataLimit
	Limit int64 // the limit passed, in bytes
	Have  int64 // what the files read by then keep or take, in bytes: more than Limit
}

// Error says which limit was passed and by how much at least.
func (e *LimitError) Error() string {
	if e.Room {
		return fmt.Sprintf("the files read so far take at least %d bytes (%d MiB) of image blocks, more than %d (%d MiB): the sets were read no further",
			e.Have, (e.Have+1<<20-1)>>20, e.Limit, e.Limit>>20)
	}
	return fmt.Sprintf("the files read so far hold %d bytes (%d MiB) of data, more than the %d (%d MiB) read into memory: the sets were read no further",
		e.Have, (e.Have+1<<20-1)>>20, e.Limit, e.Limit>>20)
}

// usage is what regular files keep in memory (mem: their extents'
// bytes) and take in an image at least (room: RoomBlock for each block
// holding a non-zero byte).
type usage struct{ mem, room int64 }

// recountEvery is how many bytes of content a tree reads between two
// counts of the files it holds, once their total passed a limit: a set
// that replaces its files (a later entry of the same path) is counted
// again rather than refused, and a count walks the whole tree, so it is
// not made for every chunk read. A limit is passed by at most this much.
const recountEvery = 16 << 20

// takeFunc is t.take, or nil when t has no limit on the data of its
// sets.
func (t *Tree) takeFunc() func(usage) error {
	if t.DataLimit > 0 || t.RoomLimit > 0 {
		return t.take
	}
	return nil
}

// take counts d more of the file being read against t's limits, and
// returns a *LimitError once the files t holds and the one being read
// (d and what take was told of it before) pass one.
func (t *Tree) take(d usage) error {
	t.cur.mem += d.mem
	t.cur.room += d.room
	t.used.mem += d.mem
	t.used.room += d.room
	if !t.over(t.used) || t.used.mem < t.recountAt {
		return nil
	}
	// Counted as read, t.used includes files replaced since: count
	// what t holds.
	held := t.held()
	t.used = usage{held.mem + t.cur.mem, held.room + t.cur.room}
	t.recountAt = t.used.mem + recountEvery
	if t.RoomLimit > 0 && t.used.room > t.RoomLimit {
		return &LimitError{Room: true, Limit: t.RoomLimit, Have: t.used.room}
	}
	if t.DataLimit > 0 && t.used.mem > t.DataLimit {
		return &LimitError{Limit: t.DataLimit, Have: t.used.mem}
	}
	return nil
}

// taking starts the count of a file being read for clean path p: the
// entry it will replace there, if any, is not counted, unless another
// path holds it too (a hard link).
func (t *Tree) taking(p string) {
	t.replacing = replacing{}
	if d, name, err := t.dir(p, false); err == nil {
		t.replacing = replacing{d, name}
	}
}

// taken ends the count of the file being read: it is in the tree now,
// or its read failed.
func (t *Tree) taken() { t.cur, t.replacing = usage{}, replacing{} }

// replacing is the entry that the file being read will replace: name in
// directory dir.
type replacing struct {
	dir  *Node
	name string
}

// over reports whether u passes one of t's limits.
func (t *Tree) over(u usage) bool {
	return t.DataLimit > 0 && u.mem > t.DataLimit || t.RoomLimit > 0 && u.room > t.RoomLimit
}

// held is what the regular files of t keep and take, each hard-linked
// file once, but for the entry the file being read will replace.
func (t *Tree) held() usage {
	var u usage
	seen := map[*Node]bool{}
	var walk func(n *Node)
	walk = func(n *Node) {
		for name, c := range n.children {
			switch {
			case n == t.replacing.dir && name == t.replacing.name:
			case c.Type == Dir:
				walk(c)
			case c.Type == Regular && !seen[c]:
				seen[c] = true
				for _, e := range c.Extents {
					u.mem += int64(len(e.Data))
				}
				u.room += c.room
			}
		}
	}
	walk(t.Root)
	return u
}

// roomCounter counts the RoomBlock-aligned blocks of a file that hold a
// non-zero byte, from runs of its content given in order.
type roomCounter struct {
	next int64 // the first block not yet counted
	room int64 // the room counted
}

// add counts the blocks of b, the file's content at byte off, and
// returns the room they add.
func (r *roomCounter) add(off int64, b []byte) int64 {
	var room int64
	for len(b) > 0 {
		blk := off / RoomBlock
		end := (blk + 1) * RoomBlock
		part := b[:min(int64(len(b)), end-off)]
		if blk >= r.next && !IsZero(part) {
			room += RoomBlock
			r.next = blk + 1
		}
		b = b[len(part):]
		off += int64(len(part))
	}
	r.room += room
	return room
}
