package imagebuilder

import (
	"encoding/binary"
	"fmt"
)

// lfnUnitOffsets are the offsets of the 13 UTF-16 units in a long-name
// entry.
var lfnUnitOffsets = [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

// maxLFNUnits is the longest long name FAT allows, in UTF-16 units.
const maxLFNUnits = 255

// fixLongNames mends go-diskfs's defect "a long name past ASCII gets too
// many entries": it counts a long name's entries by the name's UTF-8
// bytes, not its UTF-16 units (calculateSlots), so that entries of
// nothing but 0xFFFF padding follow the name; and reading a directory
// back it keeps that padding as U+FFFF characters of the name
// (longFilenameEntryFromBytes), which it writes out again, before the
// 0x0000 terminator, when it adds the next entry to the directory. The
// name then grows with each entry added after it (fsck.fat: "A new long
// file name starts within an old one"), and readers that check long names
// (mtools, NetBSD's msdosfs winChkName) list a name that cannot be opened,
// or drop it. Each long name is cut at its first 0x0000 or 0xFFFF unit
// (no name holds either: fatNameProblem refuses U+FFFF), and written again
// just before its short-name entry in as many entries as its UTF-16 units
// need, ended with 0x0000 and padded with 0xFFFF; the entries left over
// before them are marked deleted.
func (v *fat32Volume) fixLongNames() error {
	var bad error
	err := v.walkDirs(func(dir []byte) bool {
		changed, err := fixDirLongNames(dir)
		if bad == nil {
			bad = err
		}
		return changed
	})
	if err == nil {
		err = bad
	}
	return err
}

// fixDirLongNames rewrites each long name of the directory dir (its
// clusters in order) as fixLongNames says, and reports whether dir
// changed.
func fixDirLongNames(dir []byte) (bool, error) {
	changed := false
	run := 0 // long-name entries just before entry i
	for i := 0; i+32 <= len(dir) && dir[i] != 0; i += 32 {
		if dir[i+11] == attrLFN {
			run++
			continue
		}
		if run > 0 && dir[i] != 0xe5 {
			units := lfnUnits(dir, i, run)
			if len(units) > maxLFNUnits {
				return changed, fmt.Errorf("data image: the long name of directory entry %d (short name %q) has %d UTF-16 units, past FAT's %d", i/32, dir[i:i+11], len(units), maxLFNUnits)
			}
			if len(units) > 0 && writeLFN(dir, i, run, units) {
				changed = true
			}
		}
		run = 0
	}
	return changed, nil
}

// lfnUnits is the long name held by the run entries before the short-name
// entry at offset at of dir, in UTF-16 units, up to its first 0x0000 or
// 0xFFFF. The entry next to the short name holds the name's start; the
// ordinals are not read, go-diskfs's having wrapped past 0x3F.
func lfnUnits(dir []byte, at, run int) []uint16 {
	var u []uint16
	for k := 1; k <= run; k++ {
		e := dir[at-32*k : at-32*k+32]
		for _, off := range lfnUnitOffsets {
			c := binary.LittleEndian.Uint16(e[off:])
			if c == 0 || c == 0xffff {
				return u
			}
			u = append(u, c)
		}
	}
	return u
}

// writeLFN writes units as the long name of the short-name entry at
// offset at of dir, in the entries just before it, as the FAT spec has
// it: ordinals 1 up from the short name, the last one's 0x40 bit set, each
// with the short name's checksum, the name ended with 0x0000 and padded
// with 0xFFFF unless it fills its last entry. Of the run entries there,
// those the name does not need are marked deleted. It reports whether dir
// changed.
func writeLFN(dir []byte, at, run int, units []uint16) bool {
	n := (len(units) + 12) / 13
	padded := make([]uint16, 13*n)
	for j := range padded {
		switch {
		case j < len(units):
			padded[j] = units[j]
		case j == len(units):
			padded[j] = 0
		default:
			padded[j] = 0xffff
		}
	}
	sum := lfnChecksum(dir[at : at+11])
	changed := false
	for k := 1; k <= run; k++ {
		e := dir[at-32*k : at-32*k+32]
		if k > n {
			if e[0] != 0xe5 {
				e[0] = 0xe5
				changed = true
			}
			continue
		}
		var want [32]byte
		want[0] = byte(k)
		if k == n {
			want[0] |= 0x40
		}
		want[11] = attrLFN
		want[13] = sum
		for j, off := range lfnUnitOffsets {
			binary.LittleEndian.PutUint16(want[off:], padded[13*(k-1)+j])
		}
		if string(e) != string(want[:]) {
			copy(e, want[:])
			changed = true
		}
	}
	return changed
}
