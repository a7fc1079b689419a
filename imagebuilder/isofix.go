package imagebuilder

import (
	"encoding/binary"
	"fmt"
	"os"
)

// fixISOContinuations mends go-diskfs v1.9.4's defect "every continuation
// area of a directory is at its first": a directory entry whose System
// Use entries do not fit in its record (a Rock Ridge name of about 137
// bytes or more; the root's ER) gets a CE entry pointing to a
// continuation area. go-diskfs reserves one block per area after the
// directory's extent, but writes the areas packed one after the other from
// the first of those blocks, and points every CE entry at that first
// block, offset 0. Readers then take the first area (the root's ER, or
// another file's name) for each entry's: the name is lost or the tree
// cannot be read. Each area is moved here to a block of its own, in the
// order go-diskfs wrote them, which is the order of the records, and its
// CE entry pointed at it. TestGoDiskfsISOContinuations shows the defect
// and fails when a release fixes it (delete this patch then).
func fixISOContinuations(f *os.File) error {
	pvd := make([]byte, 2048)
	if _, err := f.ReadAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("reading the ISO volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return fmt.Errorf("ISO image has no primary volume descriptor at sector 16")
	}
	le := binary.LittleEndian
	bs := int64(le.Uint16(pvd[128:]))
	if bs != 2048 {
		return fmt.Errorf("ISO image: logical block size %d, want 2048", bs)
	}
	type extent struct{ loc, size uint32 }
	root := pvd[156:]
	queue := []extent{{le.Uint32(root[2:]), le.Uint32(root[10:])}}
	seen := map[uint32]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.loc] {
			continue
		}
		seen[d.loc] = true
		blocks := (int64(d.size) + bs - 1) / bs
		buf := make([]byte, blocks*bs)
		if _, err := f.ReadAt(buf, int64(d.loc)*bs); err != nil {
			return fmt.Errorf("reading the ISO directory at block %d: %w", d.loc, err)
		}
		var ces []int // offsets in buf of the CE entries, in record order
		for blk := int64(0); blk < blocks; blk++ {
			for i := blk * bs; i < (blk+1)*bs && buf[i] != 0; {
				l := int64(buf[i])
				if l < 34 || i+l > (blk+1)*bs {
					return fmt.Errorf("ISO directory at block %d: bad record at byte %d", d.loc, i)
				}
				rec := buf[i : i+l]
				nameLen := int(rec[32])
				sua := 33 + nameLen + (nameLen+1)%2
				for j := sua; j+4 <= len(rec) && rec[j+2] >= 4 && j+int(rec[j+2]) <= len(rec); j += int(rec[j+2]) {
					if string(rec[j:j+2]) == "CE" && rec[j+2] == 28 {
						ces = append(ces, int(i)+j)
					}
				}
				if rec[25]&2 != 0 && !(nameLen == 1 && rec[33] <= 1) {
					queue = append(queue, extent{le.Uint32(rec[2:]), le.Uint32(rec[10:])})
				}
				i += int64(len(rec))
			}
		}
		if err := moveContinuations(f, buf, ces, d.loc+uint32(blocks)); err != nil {
			return fmt.Errorf("ISO directory at block %d: %w", d.loc, err)
		}
		if len(ces) > 1 {
			if _, err := f.WriteAt(buf, int64(d.loc)*bs); err != nil {
				return fmt.Errorf("writing the ISO directory at block %d: %w", d.loc, err)
			}
		}
	}
	return nil
}

// moveContinuations moves the continuation areas that the CE entries at
// ces in dir point to, packed from block first, each to a block of its
// own (first, first+1, ...), and points the entries in dir at them.
func moveContinuations(f *os.File, dir []byte, ces []int, first uint32) error {
	if len(ces) < 2 {
		return nil // one area: at the first block, where its entry points
	}
	const bs = 2048
	le, be := binary.LittleEndian, binary.BigEndian
	var total int
	for _, c := range ces {
		ce := dir[c:]
		if le.Uint32(ce[4:]) != first || le.Uint32(ce[12:]) != 0 {
			return fmt.Errorf("CE entry at byte %d points to block %d offset %d, not to block %d offset 0 as go-diskfs writes them", c, le.Uint32(ce[4:]), le.Uint32(ce[12:]), first)
		}
		n := int(le.Uint32(ce[20:]))
		if n > bs {
			return fmt.Errorf("CE entry at byte %d: continuation area of %d bytes", c, n)
		}
		total += n
	}
	packed := make([]byte, total)
	if _, err := f.ReadAt(packed, int64(first)*bs); err != nil {
		return fmt.Errorf("reading continuation areas at block %d: %w", first, err)
	}
	out := make([]byte, len(ces)*bs)
	var at int
	for k, c := range ces {
		ce := dir[c:]
		area := packed[at : at+int(le.Uint32(ce[20:]))]
		at += len(area)
		// An area that itself continues would point into the packed
		// areas too; go-diskfs makes one only past a block of entries.
		for j := 0; j+4 <= len(area) && area[j+2] >= 4; j += int(area[j+2]) {
			if string(area[j:j+2]) == "CE" {
				return fmt.Errorf("continuation area %d continues itself", k)
			}
		}
		copy(out[k*bs:], area)
		le.PutUint32(ce[4:], first+uint32(k))
		be.PutUint32(ce[8:], first+uint32(k))
	}
	if _, err := f.WriteAt(out, int64(first)*bs); err != nil {
		return fmt.Errorf("writing continuation areas at block %d: %w", first, err)
	}
	return nil
}

// isoOwner is the owner and group every file of an ISO 9660 data image
// gets: go-diskfs takes them from its work copy, which belongs to whoever
// builds the image, and the image holds the directory, not who built it.
const isoOwner = 0

// fixISOOwners sets the Rock Ridge owner and group (PX) of every file
// and directory of the ISO 9660 image in f to isoOwner.
func fixISOOwners(f *os.File) error {
	return walkISO(f, nil, func(e []byte) {
		if string(e[:2]) != "PX" || len(e) < 36 {
			return
		}
		for _, at := range []int{20, 28} { // uid, gid: both-endian
			binary.LittleEndian.PutUint32(e[at:], isoOwner)
			binary.BigEndian.PutUint32(e[at+4:], isoOwner)
		}
	})
}

// walkISO calls rec with every directory record of the ISO 9660 image in
// f ("." and ".." included; not the root's record in the volume
// descriptor) and su with each of their System Use entries, those in
// continuation areas too; each may change the bytes it is given, which
// are written back. It runs after fixISOContinuations, so every CE entry
// points to an area of its own.
func walkISO(f *os.File, rec func(r []byte), su func(e []byte)) error {
	pvd := make([]byte, 2048)
	if _, err := f.ReadAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("reading the ISO volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return fmt.Errorf("ISO image has no primary volume descriptor at sector 16")
	}
	le := binary.LittleEndian
	const bs = 2048
	if n := le.Uint16(pvd[128:]); n != bs {
		return fmt.Errorf("ISO image: logical block size %d, want %d", n, bs)
	}
	type extent struct{ loc, size uint32 }
	root := pvd[156:]
	queue := []extent{{le.Uint32(root[2:]), le.Uint32(root[10:])}}
	seen := map[uint32]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.loc] {
			continue
		}
		seen[d.loc] = true
		blocks := (int64(d.size) + bs - 1) / bs
		buf := make([]byte, blocks*bs)
		if _, err := f.ReadAt(buf, int64(d.loc)*bs); err != nil {
			return fmt.Errorf("reading the ISO directory at block %d: %w", d.loc, err)
		}
		for blk := int64(0); blk < blocks; blk++ {
			for i := blk * bs; i < (blk+1)*bs && buf[i] != 0; {
				l := int64(buf[i])
				if l < 34 || i+l > (blk+1)*bs {
					return fmt.Errorf("ISO directory at block %d: bad record at byte %d", d.loc, i)
				}
				r := buf[i : i+l]
				if rec != nil {
					rec(r)
				}
				nameLen := int(r[32])
				if err := walkSUSP(f, r[33+nameLen+(nameLen+1)%2:], su, 0); err != nil {
					return fmt.Errorf("ISO directory at block %d, record at byte %d: %w", d.loc, i, err)
				}
				if r[25]&2 != 0 && !(nameLen == 1 && r[33] <= 1) {
					queue = append(queue, extent{le.Uint32(r[2:]), le.Uint32(r[10:])})
				}
				i += l
			}
		}
		if _, err := f.WriteAt(buf, int64(d.loc)*bs); err != nil {
			return fmt.Errorf("writing the ISO directory at block %d: %w", d.loc, err)
		}
	}
	return nil
}

// walkSUSP calls su with each System Use entry in area, and with those of
// the continuation area a CE entry in it points to, which it writes back;
// depth counts the areas followed, which end well before 16.
func walkSUSP(f *os.File, area []byte, su func(e []byte), depth int) error {
	if depth > 16 {
		return fmt.Errorf("more than 16 continuation areas in a row")
	}
	le := binary.LittleEndian
	for j := 0; j+4 <= len(area) && area[j+2] >= 4 && j+int(area[j+2]) <= len(area); j += int(area[j+2]) {
		e := area[j : j+int(area[j+2])]
		if su != nil {
			su(e)
		}
		if string(e[:2]) != "CE" || len(e) != 28 {
			continue
		}
		at := int64(le.Uint32(e[4:]))*2048 + int64(le.Uint32(e[12:]))
		n := le.Uint32(e[20:])
		if n > 2048 {
			return fmt.Errorf("continuation area of %d bytes", n)
		}
		cont := make([]byte, n)
		if _, err := f.ReadAt(cont, at); err != nil {
			return fmt.Errorf("reading the continuation area at byte %d: %w", at, err)
		}
		if err := walkSUSP(f, cont, su, depth+1); err != nil {
			return err
		}
		if _, err := f.WriteAt(cont, at); err != nil {
			return fmt.Errorf("writing the continuation area at byte %d: %w", at, err)
		}
	}
	return nil
}
