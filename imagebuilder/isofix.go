package imagebuilder

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
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

// ISO 9660's directory records keep the year from 1900 in a byte. go-diskfs
// writes a time in the builder's zone, which fixISORecords then turns to
// UTC: the range kept is a day inside each end, so that no zone (all are
// within 14 hours of UTC) takes a time past one first.
var (
	isoMinTime = time.Date(1900, 1, 2, 0, 0, 0, 0, time.UTC)
	isoMaxTime = time.Date(2155, 12, 30, 23, 59, 59, 0, time.UTC)
)

// clampISOTime is t within what ISO 9660 data images record.
func clampISOTime(t time.Time) time.Time {
	switch {
	case t.Before(isoMinTime):
		return isoMinTime
	case t.After(isoMaxTime):
		return isoMaxTime
	}
	return t
}

// fixISORecords makes the ISO 9660 image in f hold its directory and vol
// alone, nothing of who built it, where or when:
//   - every file's Rock Ridge owner and group (PX) is isoOwner;
//   - every record's date, and its Rock Ridge times (TF), are in UTC
//     (go-diskfs wrote the builder's local time and zone offset);
//   - a record's Rock Ridge access and attribute-change times are its
//     modification time (go-diskfs took them from its work copy: the
//     build's reads and the copy's making);
//   - the root's records and the volume descriptor's creation and
//     modification dates are vol, in UTC, and its expiration and
//     effective dates "not specified" (ECMA-119 8.4.26.1: digits 0,
//     offset 0): go-diskfs wrote the build's time in all four, so the
//     volume expired as it was made.
func fixISORecords(f *os.File, vol time.Time) error {
	pvd := make([]byte, 2048)
	if _, err := f.ReadAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("reading the ISO volume descriptor: %w", err)
	}
	// The root's records (its own, its "..", and each subdirectory's "..")
	// are given vol here, not through the work tree, whose file system
	// may keep a narrower range of times (ext4: from 1901).
	vol = clampISOTime(vol).UTC()
	root := binary.LittleEndian.Uint32(pvd[156+2:])
	volDate := []byte{byte(vol.Year() - 1900), byte(vol.Month()), byte(vol.Day()), byte(vol.Hour()), byte(vol.Minute()), byte(vol.Second()), 0}
	isRoot := false // of the record whose System Use entries su is given next
	err := walkISO(f, func(r []byte) {
		isRoot = r[25]&2 != 0 && binary.LittleEndian.Uint32(r[2:]) == root
		if isRoot {
			copy(r[18:25], volDate)
		} else {
			utcISODate(r[18:25])
		}
	}, func(e []byte) {
		switch {
		case string(e[:2]) == "PX" && len(e) >= 36:
			for _, at := range []int{20, 28} { // uid, gid: both-endian
				binary.LittleEndian.PutUint32(e[at:], isoOwner)
				binary.BigEndian.PutUint32(e[at+4:], isoOwner)
			}
		case string(e[:2]) == "TF" && len(e) >= 5 && e[4]&0x80 == 0:
			fixTF(e, isRoot, volDate)
		}
	})
	if err != nil {
		return err
	}
	copy(pvd[156+18:156+25], volDate) // the root's record
	date := []byte(vol.Format("20060102150405") + "00\x00")
	copy(pvd[813:830], date) // creation
	copy(pvd[830:847], date) // modification
	unset := []byte("0000000000000000\x00")
	copy(pvd[847:864], unset) // expiration
	copy(pvd[864:881], unset) // effective
	if _, err := f.WriteAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("writing the ISO volume descriptor: %w", err)
	}
	return nil
}

// utcISODate rewrites the 7-byte date b of an ISO 9660 directory record
// or Rock Ridge TF entry (years from 1900, then month, day, hour, minute,
// second and the offset from UTC in 15 minutes) as the same instant in
// UTC.
func utcISODate(b []byte) {
	zone := time.FixedZone("", int(int8(b[6]))*15*60)
	t := time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, zone).UTC()
	b[0], b[1], b[2] = byte(t.Year()-1900), byte(t.Month()), byte(t.Day())
	b[3], b[4], b[5], b[6] = byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0
}

// fixTF sets the short-form times of the Rock Ridge TF entry e in UTC,
// and its access and attribute-change times, when it has them, to its
// modification time; with root, every time it holds is the 7-byte date
// vol.
func fixTF(e []byte, root bool, vol []byte) {
	const modify, access, attributes = 2, 4, 8
	stamps := map[byte][]byte{}
	at := 5
	for bit := byte(1); bit < 0x80; bit <<= 1 {
		if e[4]&bit == 0 {
			continue
		}
		if at+7 > len(e) {
			return
		}
		stamps[bit] = e[at : at+7]
		if root {
			copy(stamps[bit], vol)
		} else {
			utcISODate(stamps[bit])
		}
		at += 7
	}
	if m, ok := stamps[modify]; ok {
		for _, bit := range []byte{access, attributes} {
			if s, ok := stamps[bit]; ok {
				copy(s, m)
			}
		}
	}
}

// walkISO calls rec with every directory record of the ISO 9660 image in
// f ("." and ".." included; not the root's record in the volume
// descriptor) and su with each of their System Use entries, those in
// continuation areas too (a record's right after it is given to rec);
// each may change the bytes it is given, which are written back. It runs after fixISOContinuations, so every CE entry
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
