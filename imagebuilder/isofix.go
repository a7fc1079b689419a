package imagebuilder

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
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
	var ces []int // offsets in the directory of its CE entries, in record order
	return eachISODir(f, func(d *isoDir, at int, rec []byte) (string, error) {
		nameLen := int(rec[32])
		sua := 33 + nameLen + (nameLen+1)%2
		for j := sua; j+4 <= len(rec) && rec[j+2] >= 4 && j+int(rec[j+2]) <= len(rec); j += int(rec[j+2]) {
			if string(rec[j:j+2]) == "CE" && rec[j+2] == 28 {
				ces = append(ces, at+j)
			}
		}
		return "", nil
	}, func(d *isoDir) error {
		defer func() { ces = ces[:0] }()
		if err := moveContinuations(f, d.buf, ces, d.loc+uint32(len(d.buf)/isoBlock)); err != nil {
			return fmt.Errorf("ISO directory at block %d: %w", d.loc, err)
		}
		if len(ces) > 1 {
			if _, err := f.WriteAt(d.buf, int64(d.loc)*isoBlock); err != nil {
				return fmt.Errorf("writing the ISO directory at block %d: %w", d.loc, err)
			}
		}
		return nil
	})
}

// isoBlock is the logical block size eachISODir accepts, go-diskfs's.
const isoBlock = 2048

// isoDir is a directory of an ISO 9660 image, as eachISODir reads it.
type isoDir struct {
	loc  uint32 // its first block
	buf  []byte // its blocks
	path string // what the record naming it gave (eachISODir's rec), "/" for the root
}

// eachISODir reads f's primary volume descriptor, then each directory
// reachable from the root once, breadth first: rec is called with each
// of its records in order (at is the record's byte offset in d.buf), and
// returns the path that a record naming a subdirectory gives it; then
// done is called with the directory, which it may write back.
func eachISODir(f *os.File, rec func(d *isoDir, at int, r []byte) (string, error), done func(d *isoDir) error) error {
	pvd := make([]byte, isoBlock)
	if _, err := f.ReadAt(pvd, 16*isoBlock); err != nil {
		return fmt.Errorf("reading the ISO volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return fmt.Errorf("ISO image has no primary volume descriptor at sector 16")
	}
	le := binary.LittleEndian
	if n := le.Uint16(pvd[128:]); n != isoBlock {
		return fmt.Errorf("ISO image: logical block size %d, want %d", n, isoBlock)
	}
	type extent struct {
		loc, size uint32
		path      string
	}
	root := pvd[156:]
	queue := []extent{{le.Uint32(root[2:]), le.Uint32(root[10:]), "/"}}
	seen := map[uint32]bool{}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if seen[e.loc] {
			continue
		}
		seen[e.loc] = true
		blocks := (int(e.size) + isoBlock - 1) / isoBlock
		d := &isoDir{loc: e.loc, buf: make([]byte, blocks*isoBlock), path: e.path}
		if _, err := f.ReadAt(d.buf, int64(d.loc)*isoBlock); err != nil {
			return fmt.Errorf("reading the ISO directory at block %d: %w", d.loc, err)
		}
		for blk := 0; blk < blocks; blk++ {
			for i := blk * isoBlock; i < (blk+1)*isoBlock && d.buf[i] != 0; {
				l := int(d.buf[i])
				if l < 34 || i+l > (blk+1)*isoBlock {
					return fmt.Errorf("ISO directory at block %d: bad record at byte %d", d.loc, i)
				}
				r := d.buf[i : i+l]
				sub, err := rec(d, i, r)
				if err != nil {
					return err
				}
				if nameLen := int(r[32]); r[25]&2 != 0 && !(nameLen == 1 && r[33] <= 1) {
					queue = append(queue, extent{le.Uint32(r[2:]), le.Uint32(r[10:]), sub})
				}
				i += l
			}
		}
		if err := done(d); err != nil {
			return err
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

// ISO 9660's directory records keep the year from 1900 in a byte. The
// range kept is a day inside each end, as when fixISORecords turned
// go-diskfs's local times to UTC (all zones are within 14 hours of it):
// an image built then in a zone of whole quarter hours is built the same
// now.
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

// isoDate is t, clamped, as the 7-byte date of an ISO 9660 directory
// record or Rock Ridge TF entry (years from 1900, then month, day, hour,
// minute, second and the offset from UTC in 15 minutes), in UTC.
func isoDate(t time.Time) []byte {
	t = clampISOTime(t).UTC()
	return []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// fixISORecords makes the ISO 9660 image in f hold its directory alone,
// nothing of who built it, where or when; times holds each entry's time
// by its path (see dataTimes), the root's the volume's:
//   - every file's Rock Ridge owner and group (PX) is isoOwner;
//   - every record's date, and every time of its Rock Ridge TF entry, is
//     its entry's time from times, in UTC. go-diskfs dated them from its
//     work copy, in the builder's local time with the zone's offset cut
//     to whole quarter hours (Africa/Monrovia's -0:44:30 until 1972, any
//     zone's local mean time): the minutes cut were lost, and the image
//     differed from zone to zone. Its access and attribute-change times
//     were the build's reads and the copy's making;
//   - the volume descriptor's creation and modification dates are the
//     root's time, and its expiration and effective dates "not
//     specified" (ECMA-119 8.4.26.1: digits 0, offset 0): go-diskfs wrote
//     the build's time in all four, so the volume expired as it was made.
func fixISORecords(f *os.File, times dataTimes) error {
	pvd := make([]byte, 2048)
	if _, err := f.ReadAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("reading the ISO volume descriptor: %w", err)
	}
	vol, err := times.at("/")
	if err != nil {
		return err
	}
	err = walkISO(f, func(r isoRecord) error {
		t, err := times.at(r.path)
		if err != nil {
			return err
		}
		date := isoDate(t)
		copy(r.rec[18:25], date)
		for _, e := range r.su {
			switch {
			case string(e[:2]) == "PX" && len(e) >= 36:
				for _, at := range []int{20, 28} { // uid, gid: both-endian
					binary.LittleEndian.PutUint32(e[at:], isoOwner)
					binary.BigEndian.PutUint32(e[at+4:], isoOwner)
				}
			case string(e[:2]) == "TF" && len(e) >= 5 && e[4]&0x80 == 0:
				// Short form: go-diskfs writes the modification,
				// access and attribute-change times, 7 bytes each.
				for at := 5; at+7 <= len(e); at += 7 {
					copy(e[at:at+7], date)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	copy(pvd[156+18:156+25], isoDate(vol)) // the root's record
	date := []byte(clampISOTime(vol).UTC().Format("20060102150405") + "00\x00")
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

// isoRecord is a directory record of an ISO 9660 image, as walkISO gives
// it.
type isoRecord struct {
	rec []byte
	// path is the record's path by Rock Ridge names ("/" the root,
	// "/sub/f"): a "." record's is its directory's, a ".." record's its
	// directory's parent's.
	path string
	su   [][]byte // its System Use entries, those in continuation areas too
}

// isoArea is a continuation area read from an ISO 9660 image at byte at.
type isoArea struct {
	at int64
	b  []byte
}

// walkISO calls fn with every directory record of the ISO 9660 image in
// f ("." and ".." included; not the root's record in the volume
// descriptor), and writes back what fn changes in it and in its System
// Use entries. It runs after fixISOContinuations, so every CE entry
// points to an area of its own. A record but "." and ".." without a Rock
// Ridge name (NM) is an error: its path is unknown.
func walkISO(f *os.File, fn func(r isoRecord) error) error {
	return eachISODir(f, func(d *isoDir, at int, rec []byte) (string, error) {
		r := isoRecord{rec: rec}
		nameLen := int(rec[32])
		if 33+nameLen > len(rec) {
			return "", fmt.Errorf("ISO directory at block %d, record at byte %d: name of %d bytes past the record's end", d.loc, at, nameLen)
		}
		var areas []isoArea
		if err := readSUSP(f, rec[33+nameLen+(nameLen+1)%2:], &r.su, &areas, 0); err != nil {
			return "", fmt.Errorf("ISO directory at block %d, record at byte %d: %w", d.loc, at, err)
		}
		dot := nameLen == 1 && rec[33] <= 1
		switch {
		case dot && rec[33] == 0:
			r.path = d.path
		case dot:
			r.path = path.Dir(d.path)
		default:
			name, ok := rockRidgeName(r.su)
			if !ok {
				return "", fmt.Errorf("ISO directory at block %d, record at byte %d (%q): no Rock Ridge name", d.loc, at, rec[33:33+nameLen])
			}
			r.path = path.Join(d.path, name)
		}
		if err := fn(r); err != nil {
			return "", err
		}
		for _, a := range areas {
			if _, err := f.WriteAt(a.b, a.at); err != nil {
				return "", fmt.Errorf("writing the continuation area at byte %d: %w", a.at, err)
			}
		}
		return r.path, nil
	}, func(d *isoDir) error {
		if _, err := f.WriteAt(d.buf, int64(d.loc)*isoBlock); err != nil {
			return fmt.Errorf("writing the ISO directory at block %d: %w", d.loc, err)
		}
		return nil
	})
}

// rockRidgeName is the name the NM entries among su spell, and whether
// there are any that name neither "." nor "..".
func rockRidgeName(su [][]byte) (string, bool) {
	var name []byte
	found := false
	for _, e := range su {
		if string(e[:2]) == "NM" && len(e) >= 5 && e[4]&6 == 0 {
			name, found = append(name, e[5:]...), true
		}
	}
	return string(name), found && len(name) > 0
}

// readSUSP appends each System Use entry in area to es, and those of the
// continuation area a CE entry in it points to, which it reads and
// appends to areas, to be written back; depth counts the areas followed,
// which end well before 16.
func readSUSP(f *os.File, area []byte, es *[][]byte, areas *[]isoArea, depth int) error {
	if depth > 16 {
		return fmt.Errorf("more than 16 continuation areas in a row")
	}
	le := binary.LittleEndian
	for j := 0; j+4 <= len(area) && area[j+2] >= 4 && j+int(area[j+2]) <= len(area); j += int(area[j+2]) {
		e := area[j : j+int(area[j+2])]
		*es = append(*es, e)
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
		*areas = append(*areas, isoArea{at, cont})
		if err := readSUSP(f, cont, es, areas, depth+1); err != nil {
			return err
		}
	}
	return nil
}
