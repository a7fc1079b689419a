package imagebuilder_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// TestDataImageNetBSDMounts checks a FAT32 data disk against what NetBSD 9
// checks before it mounts one (msdosfs_mountfs) and before it sees the disk
// as partition a (readdisklabel): the boot signature, a power-of-two
// cluster of at most 64 KiB, at most 63 sectors per track, the FAT32 BPB
// with the 16-bit counts and version zero, a FAT long enough for every
// cluster, and no MBR partition entries, since the 0x55AA signature makes
// NetBSD read bytes 446-509 as a partition table and any entry there would
// take partition a away from the whole disk.
func TestDataImageNetBSDMounts(t *testing.T) {
	for _, mb := range []int{0, 100, 1000} {
		dir, _ := shareDir(t)
		img := filepath.Join(t.TempDir(), "data.img")
		if err := imagebuilder.BuildDataImageSize(dir, img, imagebuilder.DataFAT32, mb); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		_, err = f.ReadAt(b, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		le := binary.LittleEndian
		bps, spc := uint32(le.Uint16(b[11:])), uint32(b[13])
		res, nfats := uint32(le.Uint16(b[14:])), uint32(b[16])
		rootEnts, sec16, fat16 := le.Uint16(b[17:]), le.Uint16(b[19:]), le.Uint16(b[22:])
		spt, huge := le.Uint16(b[24:]), le.Uint32(b[32:])
		fat32, vers := le.Uint32(b[36:]), le.Uint16(b[42:])
		pow2 := func(v uint32) bool { return v != 0 && v&(v-1) == 0 }
		for _, c := range []struct {
			what string
			ok   bool
		}{
			{"boot signature 55aa", b[510] == 0x55 && b[511] == 0xaa},
			{"sectors per cluster a power of 2", pow2(spc)},
			{"bytes per sector a power of 2", pow2(bps)},
			{"cluster at most 64 KiB", spc*bps <= 64<<10},
			{"sector count set", huge != 0},
			{"sectors per track <= 63", spt <= 63},
			{"FAT32: no root entries, 16-bit counts and version zero", rootEnts == 0 && sec16 == 0 && fat16 == 0 && vers == 0},
			{"FAT covers every cluster", fat32*bps/4 >= (huge-res-nfats*fat32)/spc+2},
		} {
			if !c.ok {
				t.Errorf("%d MiB: %s: BPB %x", mb, c.what, b[11:90])
			}
		}
		for i := 0; i < 4; i++ {
			if typ := b[446+16*i+4]; typ != 0 {
				t.Errorf("%d MiB: MBR slot %d has partition type %#x: NetBSD would not see the disk as partition a", mb, i, typ)
			}
		}
	}
}
