package imagebuilder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// go-diskfs v1.9.4, the newest release the module proxy serves (checked on
// 2026-12-02), writes six details of a FAT32 volume wrongly, each of
// which fsck.fat reports. fixFAT32 mends them in place once go-diskfs is
// done, one patch per defect; TestGoDiskfsFAT32Defects shows each defect
// in go-diskfs's own output, and fails when a release fixes one (delete
// that patch then).
func fixFAT32(f *os.File) error {
	v, err := readFAT32(f)
	if err != nil {
		return err
	}
	// fixShortFAT first: the others walk the clusters it bounds.
	for _, patch := range []func() error{v.fixShortFAT, v.fixLongNames, v.fixShortNames, v.fixRootDotDot, v.fixEmptyFiles, v.fixFreeCount} {
		if err := patch(); err != nil {
			return err
		}
	}
	return v.punchZeroFATs()
}

// punchZeroFATs gives back the disk under the zeros of the FATs: go-diskfs
// writes both whole, every free cluster's zero entry included (64 MiB on a
// 256 GiB volume), where a hole reads the same. A file system that cannot
// punch holes keeps the blocks: the image is right either way.
func (v *fat32Volume) punchZeroFATs() error {
	const page = 4096 // the unit a hole is made in on Linux file systems
	start := (v.reserved*v.bps + page - 1) &^ (page - 1)
	end := ((v.reserved + v.nfats*v.fatSectors) * v.bps) &^ (page - 1)
	buf := make([]byte, 1<<20)
	run := int64(-1) // start of the current run of zero pages
	punch := func(to int64) error {
		if run < 0 {
			return nil
		}
		from := run
		run = -1
		err := unix.Fallocate(int(v.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, from, to-from)
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("punching a hole of %d bytes at byte %d of the data image: %w", to-from, from, err)
		}
		return nil
	}
	for off := start; off < end; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), end-off)]
		if _, err := v.f.ReadAt(b, off); err != nil {
			return fmt.Errorf("reading FAT bytes at %d: %w", off, err)
		}
		for i := 0; i < len(b); i += page {
			if !fstree.IsZero(b[i : i+page]) {
				if err := punch(off + int64(i)); err != nil {
					return err
				}
			} else if run < 0 {
				run = off + int64(i)
			}
		}
	}
	return punch(end)
}

// fixShortFAT mends go-diskfs's defect "the FAT has no entries for the
// last two clusters": at some sizes (4 GiB, 32 GiB) it sizes the FAT for
// the data clusters without FAT32's two reserved entries (fsck.fat:
// "Filesystem has N clusters but only space for M FAT entries", and
// fixFreeCount would read past the FAT). The volume is declared as many
// clusters shorter, in the boot sector and its backup; go-diskfs cannot
// have used those clusters, having no FAT entry for them.
func (v *fat32Volume) fixShortFAT() error {
	entries := uint32(v.fatSectors * v.bps / 4)
	if v.nclusters <= entries {
		return nil
	}
	if v.nclusters-entries > 2 {
		// Not this defect: shrinking the volume to its FAT would lose
		// more than the two clusters.
		return fmt.Errorf("data image: the FAT has %d entries for %d clusters", entries, v.nclusters)
	}
	total := v.total - int64(v.nclusters-entries)*v.spc
	sectors := []int64{0}
	if v.backup != 0 {
		sectors = append(sectors, v.backup)
	}
	for _, sector := range sectors {
		bs := make([]byte, 512)
		if _, err := v.f.ReadAt(bs, sector*v.bps); err != nil {
			return fmt.Errorf("reading boot sector %d: %w", sector, err)
		}
		if int64(binary.LittleEndian.Uint32(bs[32:])) != v.total {
			return fmt.Errorf("data image: boot sector %d declares %d sectors, the first %d", sector, binary.LittleEndian.Uint32(bs[32:]), v.total)
		}
		binary.LittleEndian.PutUint32(bs[32:], uint32(total))
		if _, err := v.f.WriteAt(bs, sector*v.bps); err != nil {
			return fmt.Errorf("writing boot sector %d: %w", sector, err)
		}
	}
	v.total, v.nclusters = total, entries
	return nil
}

// fixShortNames mends go-diskfs's defect "short names are invalid or
// repeated": a name with nothing before its last dot (.profile) gets a
// short name with an empty stem (fsck.fat: "Bad short file name"), and
// names that differ only in characters a short name cannot hold
// (.gitignore, .github; a+.txt, a=.txt) get one short name ("Duplicate
// directory entry"). Each such entry that has a long name gets a new short
// name made from it, as Windows makes one (GITIGN~1), and its long-name
// entries the new name's checksum: names in the guest are unchanged. An
// entry with no long name is its short name and is left as it is (the
// name check refuses the names that would need changing).
func (v *fat32Volume) fixShortNames() error {
	return v.walkDirs(func(dir []byte) bool {
		type named struct {
			at  int   // offset of the short-name entry
			lfn []int // offsets of its long-name entries
		}
		var es []named
		var lfn []int
		for i := 0; i+32 <= len(dir) && dir[i] != 0; i += 32 {
			e := dir[i : i+32]
			switch {
			case e[0] == 0xe5:
				lfn = nil
			case e[11] == attrLFN:
				lfn = append(lfn, i)
			case e[11]&attrVolumeID != 0 || e[0] == '.':
				// fsck.fat compares no name with the label's;
				// "." and ".." are what they are.
				lfn = nil
			default:
				es = append(es, named{i, lfn})
				lfn = nil
			}
		}
		taken := map[string]bool{}
		var redo []named
		for _, e := range es {
			if len(e.lfn) == 0 {
				taken[string(dir[e.at:e.at+11])] = true
			}
		}
		for _, e := range es {
			if len(e.lfn) == 0 {
				continue
			}
			if n := string(dir[e.at : e.at+11]); validShortName(n) && !taken[n] {
				taken[n] = true
			} else {
				redo = append(redo, e)
			}
		}
		// The tails tried for a basis go on from the last one given, so
		// thousands of names sharing one stay a linear search.
		next := map[[2]string]int{}
		for _, e := range redo {
			stem, ext := shortBasis(longName(dir, e.lfn))
			basis := [2]string{stem, ext}
			var n string
			i := max(next[basis], 1)
			for ; ; i++ {
				tail := fmt.Sprintf("~%d", i)
				n = fmt.Sprintf("%-8s%-3s", stem[:min(len(stem), 8-len(tail))]+tail, ext)
				if !taken[n] {
					break
				}
			}
			next[basis] = i + 1
			taken[n] = true
			copy(dir[e.at:e.at+11], n)
			sum := lfnChecksum(dir[e.at : e.at+11])
			for _, l := range e.lfn {
				dir[l+13] = sum
			}
		}
		return len(redo) > 0
	})
}

// shortNameSpecials are the characters besides A-Z and 0-9 that a short
// name may hold.
const shortNameSpecials = "!#$%&'()-@^_`{}~"

// validShortName reports whether the 11 bytes of n are a valid short name:
// stem and extension of valid characters, each padded at its end with
// spaces, and the stem not empty.
func validShortName(n string) bool {
	for _, part := range []string{n[:8], n[8:]} {
		t := strings.TrimRight(part, " ")
		for i := 0; i < len(t); i++ {
			c := t[i]
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 || strings.IndexByte(shortNameSpecials, c) >= 0) {
				return false
			}
		}
	}
	return n[0] != ' ' && n[0] != 0xe5
}

// shortBasis is the stem (at most 8 characters) and extension (at most 3)
// a new short name is made from, as Windows makes them from a long name:
// leading dots and all spaces dropped, the extension after the last dot
// that is left, the other dots dropped, upper case, and any other
// character that a short name cannot hold (+ , ; = [ ], all past ASCII)
// replaced by "_". A stem left empty is "_".
func shortBasis(long string) (stem, ext string) {
	long = strings.TrimLeft(strings.ReplaceAll(long, " ", ""), ".")
	if i := strings.LastIndex(long, "."); i >= 0 {
		long, ext = long[:i], long[i+1:]
	}
	conv := func(s string, max int) string {
		var b strings.Builder
		for _, r := range s {
			if b.Len() == max {
				break
			}
			switch {
			case r == '.':
			case r >= 'a' && r <= 'z':
				b.WriteRune(r - 'a' + 'A')
			case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r < 0x80 && strings.ContainsRune(shortNameSpecials, r):
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
		}
		return b.String()
	}
	stem, ext = conv(long, 8), conv(ext, 3)
	if stem == "" {
		stem = "_"
	}
	return stem, ext
}

// longName is the long name held by the long-name entries at offsets lfn
// of dir (in the order they are stored: the name's end first).
func longName(dir []byte, lfn []int) string {
	var u []uint16
	for i := len(lfn) - 1; i >= 0; i-- {
		e := dir[lfn[i] : lfn[i]+32]
		for _, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			c := binary.LittleEndian.Uint16(e[off:])
			if c == 0 || c == 0xffff {
				return string(utf16.Decode(u))
			}
			u = append(u, c)
		}
	}
	return string(utf16.Decode(u))
}

// lfnChecksum is the checksum of the 11 bytes of a short name that each
// of its long-name entries holds; one that does not match makes readers
// drop the long name.
func lfnChecksum(n []byte) byte {
	var sum byte
	for _, c := range n[:11] {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// fixRootDotDot mends go-diskfs's defect "'..' of a directory in the
// root names the root's cluster" (fsck.fat: "Invalid '..' entry in the
// second slot"): FAT32 has it name cluster 0 there. (The root itself
// has no "..".)
func (v *fat32Volume) fixRootDotDot() error {
	return v.walk(func(e []byte) bool {
		if string(e[0:11]) != "..         " || entryCluster(e) != v.root {
			return false
		}
		setEntryCluster(e, 0)
		return true
	})
}

// fixEmptyFiles mends go-diskfs's defect "an empty file owns a cluster"
// (it gives each new file one; fsck.fat: "File size is 0 bytes, cluster
// chain length is > 0 bytes"): the chain is freed in both FATs and the
// entry names cluster 0.
func (v *fat32Volume) fixEmptyFiles() error {
	var chainErr error
	freed := false
	err := v.walk(func(e []byte) bool {
		cl := entryCluster(e)
		if e[11]&attrDir != 0 || binary.LittleEndian.Uint32(e[28:]) != 0 || cl == 0 {
			return false
		}
		cs, err := v.chain(cl)
		if err != nil {
			chainErr = err
			return false
		}
		for _, c := range cs {
			binary.LittleEndian.PutUint32(v.fat[4*int64(c):], 0)
		}
		setEntryCluster(e, 0)
		freed = true
		return true
	})
	if err == nil {
		err = chainErr
	}
	if err != nil || !freed {
		return err
	}
	for i := int64(0); i < v.nfats; i++ {
		if _, err := v.f.WriteAt(v.fat, (v.reserved+i*v.fatSectors)*v.bps); err != nil {
			return fmt.Errorf("writing FAT %d: %w", i, err)
		}
	}
	return nil
}

// fixFreeCount mends go-diskfs's defect "FSInfo's free-cluster count is
// left unknown (0xFFFFFFFF)" (fsck.fat: "Free cluster summary
// uninitialized"): it is counted from the FAT, after fixEmptyFiles.
func (v *fat32Volume) fixFreeCount() error {
	var free uint32
	for c := uint32(2); c < v.nclusters; c++ {
		if v.next(c) == 0 {
			free++
		}
	}
	info := make([]byte, 512)
	if _, err := v.f.ReadAt(info, v.fsinfo*v.bps); err != nil {
		return fmt.Errorf("reading FSInfo sector %d: %w", v.fsinfo, err)
	}
	le := binary.LittleEndian
	if le.Uint32(info[0:]) != 0x41615252 || le.Uint32(info[484:]) != 0x61417272 {
		return fmt.Errorf("data image: FSInfo sector %d has no signature", v.fsinfo)
	}
	le.PutUint32(info[488:], free)
	if _, err := v.f.WriteAt(info, v.fsinfo*v.bps); err != nil {
		return fmt.Errorf("writing FSInfo sector %d: %w", v.fsinfo, err)
	}
	return nil
}

// fat32Volume is the layout of a FAT32 volume and its first FAT, as the
// patches need them.
type fat32Volume struct {
	f                                     *os.File
	bps, spc, reserved, nfats, fatSectors int64
	root                                  uint32 // the root directory's first cluster
	fsinfo                                int64  // the FSInfo sector
	backup                                int64  // the backup boot sector, 0 for none
	total                                 int64  // sectors in the volume
	nclusters                             uint32 // clusters 2..nclusters-1 hold data
	dataStart                             int64
	fat                                   []byte
}

const (
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrLFN      = 0x0f
)

func readFAT32(f *os.File) (*fat32Volume, error) {
	bpb := make([]byte, 512)
	if _, err := f.ReadAt(bpb, 0); err != nil {
		return nil, fmt.Errorf("reading FAT32 boot sector: %w", err)
	}
	le := binary.LittleEndian
	v := &fat32Volume{f: f,
		bps: int64(le.Uint16(bpb[11:])), spc: int64(bpb[13]), reserved: int64(le.Uint16(bpb[14:])),
		nfats: int64(bpb[16]), fatSectors: int64(le.Uint32(bpb[36:])),
		root: le.Uint32(bpb[44:]), fsinfo: int64(le.Uint16(bpb[48:])),
		backup: int64(le.Uint16(bpb[50:])), total: int64(le.Uint32(bpb[32:])),
	}
	if v.bps == 0 || v.spc == 0 || v.fatSectors == 0 || string(bpb[82:87]) != "FAT32" {
		return nil, fmt.Errorf("data image: boot sector is not FAT32 as expected")
	}
	v.fat = make([]byte, v.fatSectors*v.bps)
	if _, err := f.ReadAt(v.fat, v.reserved*v.bps); err != nil {
		return nil, fmt.Errorf("reading FAT: %w", err)
	}
	v.dataStart = (v.reserved + v.nfats*v.fatSectors) * v.bps
	v.nclusters = uint32((v.total-v.reserved-v.nfats*v.fatSectors)/v.spc) + 2
	return v, nil
}

func (v *fat32Volume) next(c uint32) uint32 {
	return binary.LittleEndian.Uint32(v.fat[4*int64(c):]) & 0x0fffffff
}

// chain lists the clusters of the chain that starts at c.
func (v *fat32Volume) chain(c uint32) ([]uint32, error) {
	var cs []uint32
	for c >= 2 && c < 0x0ffffff8 {
		if c >= v.nclusters || len(cs) > int(v.nclusters) {
			return nil, fmt.Errorf("data image: bad cluster chain at %d", c)
		}
		cs = append(cs, c)
		c = v.next(c)
	}
	return cs, nil
}

// walk calls fn with each short-name entry of every directory ("." and
// ".." included; not the volume label); fn reports whether it changed
// the entry, which is then written back.
func (v *fat32Volume) walk(fn func(e []byte) bool) error {
	var walk func(dir uint32) error
	walk = func(dir uint32) error {
		cs, err := v.chain(dir)
		if err != nil {
			return err
		}
		clusterBytes := v.spc * v.bps
		for _, c := range cs {
			off := v.dataStart + int64(c-2)*clusterBytes
			buf := make([]byte, clusterBytes)
			if _, err := v.f.ReadAt(buf, off); err != nil {
				return fmt.Errorf("reading directory cluster %d: %w", c, err)
			}
			dirty := false
			for i := 0; i+32 <= len(buf) && buf[i] != 0; i += 32 {
				e := buf[i : i+32]
				if e[0] == 0xe5 || e[11] == attrLFN || e[11]&attrVolumeID != 0 {
					continue
				}
				name := string(e[0:11])
				if fn(e) {
					dirty = true
				}
				if e[11]&attrDir != 0 && name != ".          " && name != "..         " {
					if err := walk(entryCluster(e)); err != nil {
						return err
					}
				}
			}
			if dirty {
				if _, err := v.f.WriteAt(buf, off); err != nil {
					return fmt.Errorf("writing directory cluster %d: %w", c, err)
				}
			}
		}
		return nil
	}
	return walk(v.root)
}

// walkDirs calls fn with the whole of every directory, its clusters in
// order (so that a long name may span two); fn reports whether it changed
// the directory, which is then written back.
func (v *fat32Volume) walkDirs(fn func(dir []byte) bool) error {
	var walk func(first uint32) error
	walk = func(first uint32) error {
		cs, err := v.chain(first)
		if err != nil {
			return err
		}
		cb := v.spc * v.bps
		dir := make([]byte, int64(len(cs))*cb)
		for i, c := range cs {
			if _, err := v.f.ReadAt(dir[int64(i)*cb:int64(i+1)*cb], v.dataStart+int64(c-2)*cb); err != nil {
				return fmt.Errorf("reading directory cluster %d: %w", c, err)
			}
		}
		if fn(dir) {
			for i, c := range cs {
				if _, err := v.f.WriteAt(dir[int64(i)*cb:int64(i+1)*cb], v.dataStart+int64(c-2)*cb); err != nil {
					return fmt.Errorf("writing directory cluster %d: %w", c, err)
				}
			}
		}
		for i := 0; i+32 <= len(dir) && dir[i] != 0; i += 32 {
			e := dir[i : i+32]
			if e[0] == 0xe5 || e[11] == attrLFN || e[11]&attrVolumeID != 0 || e[11]&attrDir == 0 || e[0] == '.' {
				continue
			}
			if err := walk(entryCluster(e)); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(v.root)
}

func entryCluster(e []byte) uint32 {
	return uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
}

func setEntryCluster(e []byte, c uint32) {
	binary.LittleEndian.PutUint16(e[20:], uint16(c>>16))
	binary.LittleEndian.PutUint16(e[26:], uint16(c))
}
