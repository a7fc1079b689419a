package imagebuilder

import (
	"encoding/binary"
	"fmt"
	"os"
)

// fixFAT32 corrects three details of go-diskfs's (v1.9.4) FAT32 output so
// that fsck tools and NetBSD's msdosfs see a clean volume: the ".." entry
// of a directory whose parent is the root must name cluster 0 (go-diskfs
// writes the root's cluster), an empty file owns no cluster (go-diskfs
// gives each new file one), and the FSInfo free-cluster count is filled in
// rather than left "unknown".
func fixFAT32(f *os.File) error {
	bpb := make([]byte, 512)
	if _, err := f.ReadAt(bpb, 0); err != nil {
		return fmt.Errorf("reading FAT32 boot sector: %w", err)
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bpb[11:]))
	spc := int64(bpb[13])
	reserved := int64(le.Uint16(bpb[14:]))
	nfats := int64(bpb[16])
	fatSectors := int64(le.Uint32(bpb[36:]))
	root := le.Uint32(bpb[44:])
	fsinfo := int64(le.Uint16(bpb[48:]))
	total := int64(le.Uint32(bpb[32:]))
	if bps == 0 || spc == 0 || fatSectors == 0 || string(bpb[82:87]) != "FAT32" {
		return fmt.Errorf("data image: boot sector is not FAT32 as expected")
	}
	fat := make([]byte, fatSectors*bps)
	if _, err := f.ReadAt(fat, reserved*bps); err != nil {
		return fmt.Errorf("reading FAT: %w", err)
	}
	clusterBytes := spc * bps
	dataStart := (reserved + nfats*fatSectors) * bps
	nclusters := uint32((total-reserved-nfats*fatSectors)/spc) + 2
	next := func(c uint32) uint32 { return le.Uint32(fat[4*int64(c):]) & 0x0fffffff }
	chain := func(c uint32) ([]uint32, error) {
		var cs []uint32
		for c >= 2 && c < 0x0ffffff8 {
			if c >= nclusters || len(cs) > int(nclusters) {
				return nil, fmt.Errorf("data image: bad cluster chain at %d", c)
			}
			cs = append(cs, c)
			c = next(c)
		}
		return cs, nil
	}
	fatDirty := false
	var walk func(dir uint32, isRoot bool) error
	walk = func(dir uint32, isRoot bool) error {
		cs, err := chain(dir)
		if err != nil {
			return err
		}
		for _, c := range cs {
			off := dataStart + int64(c-2)*clusterBytes
			buf := make([]byte, clusterBytes)
			if _, err := f.ReadAt(buf, off); err != nil {
				return fmt.Errorf("reading directory cluster %d: %w", c, err)
			}
			dirty := false
			for i := 0; i+32 <= len(buf); i += 32 {
				e := buf[i : i+32]
				if e[0] == 0 {
					break
				}
				if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x08 != 0 {
					continue
				}
				cl := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
				if e[11]&0x10 == 0 {
					if le.Uint32(e[28:]) == 0 && cl != 0 {
						// An empty file owns no cluster.
						cs, err := chain(cl)
						if err != nil {
							return err
						}
						for _, c := range cs {
							le.PutUint32(fat[4*int64(c):], 0)
						}
						le.PutUint16(e[20:], 0)
						le.PutUint16(e[26:], 0)
						dirty, fatDirty = true, true
					}
					continue
				}
				switch string(e[0:11]) {
				case ".          ":
				case "..         ":
					if cl == root && !isRoot {
						le.PutUint16(e[20:], 0)
						le.PutUint16(e[26:], 0)
						dirty = true
					}
				default:
					if err := walk(cl, false); err != nil {
						return err
					}
				}
			}
			if dirty {
				if _, err := f.WriteAt(buf, off); err != nil {
					return fmt.Errorf("writing directory cluster %d: %w", c, err)
				}
			}
		}
		return nil
	}
	if err := walk(root, true); err != nil {
		return err
	}
	if fatDirty {
		for i := int64(0); i < nfats; i++ {
			if _, err := f.WriteAt(fat, (reserved+i*fatSectors)*bps); err != nil {
				return fmt.Errorf("writing FAT %d: %w", i, err)
			}
		}
	}
	var free uint32
	for c := uint32(2); c < nclusters; c++ {
		if next(c) == 0 {
			free++
		}
	}
	info := make([]byte, 512)
	if _, err := f.ReadAt(info, fsinfo*bps); err != nil {
		return fmt.Errorf("reading FSInfo sector %d: %w", fsinfo, err)
	}
	if le.Uint32(info[0:]) != 0x41615252 || le.Uint32(info[484:]) != 0x61417272 {
		return fmt.Errorf("data image: FSInfo sector %d has no signature", fsinfo)
	}
	le.PutUint32(info[488:], free)
	if _, err := f.WriteAt(info, fsinfo*bps); err != nil {
		return fmt.Errorf("writing FSInfo sector %d: %w", fsinfo, err)
	}
	return nil
}
