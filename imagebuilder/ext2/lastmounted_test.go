package ext2_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// Superblock fields by byte offset, as ext2's on-disk superblock lays
// them out.
const (
	sbRBCount    = 8
	sbFBCount    = 12
	sbFICount    = 16
	sbMtime      = 44
	sbWtime      = 48
	sbMntCount   = 52
	sbMaxMnt     = 54
	sbState      = 58
	sbBeh        = 60
	sbLastFsck   = 64
	sbFsckIntv   = 68
	sbRUID       = 80
	sbRGID       = 82
	sbGroupNr    = 90
	sbROCompat   = 100
	sbFsmnt      = 136
	sbFsmntLen   = 64
	roLargeFile  = 0x0002
	stateClean   = 1
	superBytes   = 1024
	blocksPerGrp = 8192 // with 1 KiB blocks, one bitmap block's bits
)

// mountRW changes the superblock sb as NetBSD 9.1's kernel does over a
// read-write mount of the root, some writes and an unmount
// (sys/ufs/ext2fs/ext2fs_vfsops.c): mount -u -w / clears the clean state
// and ext2fs_sb_setmountinfo strlcpy's the mount point into e2fs_fsmnt
// (leaving the bytes after its NUL as they were), sets e2fs_mtime and
// counts the mount; ext2fs_sync and the allocators change the write time
// and free counts, ext2fs_setsize may set LARGEFILE; the unmount marks it
// clean again, or a VM stopped from the host leaves it not clean. The
// kernel writes the superblock alone (ext2fs_sbupdate), no backup.
func mountRW(sb []byte, clean bool) {
	le := binary.LittleEndian
	le.PutUint16(sb[sbState:], 0)
	copy(sb[sbFsmnt:], "/\x00")
	le.PutUint32(sb[sbMtime:], 1800000000)
	le.PutUint16(sb[sbMntCount:], le.Uint16(sb[sbMntCount:])+1)
	le.PutUint32(sb[sbWtime:], 1800000060)
	le.PutUint32(sb[sbFBCount:], le.Uint32(sb[sbFBCount:])-17)
	le.PutUint32(sb[sbFICount:], le.Uint32(sb[sbFICount:])-3)
	le.PutUint32(sb[sbROCompat:], le.Uint32(sb[sbROCompat:])|roLargeFile)
	if clean {
		le.PutUint16(sb[sbState:], stateClean)
	}
}

// fsckNormalise does to backup, the first backup superblock, what
// NetBSD's fsck_ext2fs readsb (sbin/fsck_ext2fs/setup.c) does before it
// compares all 1024 bytes with the superblock: it copies over from sb the
// fields that may differ (reserved, free block and inode counts, mount and
// write times, mount counts, state, error behaviour, last check and
// interval, reserved uid and gid, group number and the LARGEFILE bit).
// Any other difference fails the check: "BAD SUPER BLOCK: VALUES IN SUPER
// BLOCK DISAGREE WITH THOSE IN FIRST ALTERNATE", exit status 8.
func fsckNormalise(backup, sb []byte) {
	for _, f := range []struct{ off, n int }{
		{sbRBCount, 4}, {sbFBCount, 4}, {sbFICount, 4}, {sbMtime, 4}, {sbWtime, 4},
		{sbMntCount, 2}, {sbMaxMnt, 2}, {sbState, 2}, {sbBeh, 2}, {sbLastFsck, 4},
		{sbFsckIntv, 4}, {sbRUID, 2}, {sbRGID, 2}, {sbGroupNr, 2},
	} {
		copy(backup[f.off:f.off+f.n], sb[f.off:f.off+f.n])
	}
	le := binary.LittleEndian
	ro := le.Uint32(backup[sbROCompat:])&^roLargeFile | le.Uint32(sb[sbROCompat:])&roLargeFile
	le.PutUint32(backup[sbROCompat:], ro)
}

// differingFields names the byte offsets at which a and b differ, for a
// failure message.
func differingFields(a, b []byte) []int {
	var offs []int
	for i := range a {
		if a[i] != b[i] {
			offs = append(offs, i)
		}
	}
	return offs
}

// TestLastMountedFsck: NetBSD's kernel writes the mount point into the
// superblock alone at a read-write mount, and fsck_ext2fs compares the
// superblock with its first backup, all but a few fields, before it
// looks at the clean flag: an image of more than one block group whose
// backups did not say "/" already failed fsck -p / (exit status 8) from
// its second boot on. With LastMounted "/" the superblock, after the
// kernel's changes of a mount, matches the first backup as fsck_ext2fs
// normalises it; without it, it does not. Every backup holds the same
// superblock as the first but for its group number.
func TestLastMountedFsck(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lastMounted string
		clean       bool // the unmount marked it clean
		wantSame    bool
	}{
		{"root, clean unmount", "/", true, true},
		{"root, stopped from the host", "/", false, true},
		{"none written", "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "img")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			tree := fstree.New()
			if err := tree.Put("etc/rc", fstree.NewFile(0o644, []byte("#!/bin/sh\n"))); err != nil {
				t.Fatal(err)
			}
			// 64 MiB of 1 KiB blocks: eight groups, backups in 1, 3, 5 and 7.
			opts := ext2.Options{Size: 64 << 20, BlockSize: 1024, Timestamp: 1700000000, LastMounted: tc.lastMounted}
			if err := ext2.Write(f, tree, opts); err != nil {
				t.Fatal(err)
			}
			f.Close()
			img, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			copyAt := func(grp int) []byte {
				off := 1024 + grp*blocksPerGrp*1024 // block 1 + grp groups, first_dblock 1
				return append([]byte(nil), img[off:off+superBytes]...)
			}
			sb, backup := copyAt(0), copyAt(1)
			if got := string(bytes.TrimRight(sb[sbFsmnt:sbFsmnt+sbFsmntLen], "\x00")); got != tc.lastMounted {
				t.Fatalf("last mounted %q, want %q", got, tc.lastMounted)
			}
			for _, grp := range []int{3, 5, 7} { // sparse_super's other backups
				other := copyAt(grp)
				binary.LittleEndian.PutUint16(other[sbGroupNr:], 1)
				if !bytes.Equal(other, backup) {
					t.Errorf("group %d's backup differs from group 1's at bytes %v", grp, differingFields(other, backup))
				}
			}
			mountRW(sb, tc.clean)
			fsckNormalise(backup, sb)
			if same := bytes.Equal(sb, backup); same != tc.wantSame {
				t.Errorf("superblock after a mount matches fsck_ext2fs's normalised first backup: %v, want %v (bytes differing: %v)",
					same, tc.wantSame, differingFields(sb, backup))
			}
		})
	}
}

// TestLastMountedRefused: a mount point longer than the superblock's
// field holds with its NUL, or holding a NUL, is refused, naming it.
func TestLastMountedRefused(t *testing.T) {
	for _, lm := range []string{strings.Repeat("d", 64), "/a\x00b"} {
		f, err := os.Create(filepath.Join(t.TempDir(), "img"))
		if err != nil {
			t.Fatal(err)
		}
		err = ext2.Write(f, fstree.New(), ext2.Options{Size: 4 << 20, LastMounted: lm})
		f.Close()
		if err == nil || !strings.Contains(err.Error(), "last mount point") {
			t.Errorf("LastMounted %q: %v, want it refused", lm, err)
		}
	}
}
