package ext2

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

const ts = 1700000000

// tripleAt1K is the offset of the first block a file maps through its
// triple indirect block with 1 KiB blocks: past 12 direct blocks, 256
// through the single and 256*256 through the double indirect block.
const tripleAt1K = (12 + 256 + 65536) * 1024

// netbsdTree builds a rescue-like tree plus the awkward cases: a file past
// the double-indirect limit (sparse; with a bigOffset past tripleAt1K, with
// data across the last double and first triple indirect block at 1 KiB), a
// multi-block directory, fast and slow symlinks, a FIFO, odd owners (one
// past 16 bits, which rev-1 inodes keep in l_i_uid_high and l_i_gid_high,
// bytes 120-123, and NetBSD reads) and modes.
func netbsdTree(t testing.TB, bigOffset int64) *fstree.Tree {
	t.Helper()
	raw, err := testsets.Bytes(testsets.Rescue(300_000), "tar")
	if err != nil {
		t.Fatal(err)
	}
	tr := fstree.New()
	if err := tr.AddTar(bytes.NewReader(raw), "rescue.tar"); err != nil {
		t.Fatal(err)
	}
	big := &fstree.Node{Type: fstree.Regular, Perm: 0644, Size: bigOffset + 5000,
		Extents: []fstree.Extent{{Off: 0, Data: []byte("head")}}}
	if bigOffset > tripleAt1K+1024 {
		big.Extents = append(big.Extents, fstree.Extent{Off: tripleAt1K - 512, Data: testsets.Blob(11, 1024)})
	}
	big.Extents = append(big.Extents, fstree.Extent{Off: bigOffset, Data: testsets.Blob(9, 5000)})
	mustPut(t, tr, "var/big", big)
	mustPut(t, tr, "var/medium", fstree.NewFile(0600, testsets.Blob(3, 300_000))) // double indirect at 1 KiB
	for i := 0; i < 600; i++ {
		mustPut(t, tr, fmt.Sprintf("usr/share/many/entry-with-a-longish-name-%03d", i), fstree.NewFile(0444, []byte{byte(i), 1}))
	}
	mustPut(t, tr, "bin/fast", fstree.NewSymlink("/rescue/sh"))
	mustPut(t, tr, "bin/slow", fstree.NewSymlink("/"+strings.Repeat("long/", 30)+"target"))
	mustPut(t, tr, "tmp/fifo", &fstree.Node{Type: fstree.FIFO, Perm: 0600})
	owned := fstree.NewFile(04755, []byte("setuid\n"))
	owned.UID, owned.GID, owned.Mtime = 1000, 100, 1234567890
	mustPut(t, tr, "usr/bin/owned", owned)
	wide := fstree.NewFile(0644, []byte("wide ids\n"))
	wide.UID, wide.GID = 100000, 70000
	mustPut(t, tr, "usr/bin/wideids", wide)
	mustPut(t, tr, "empty", fstree.NewFile(0644, nil))
	mustPut(t, tr, "zeros", fstree.NewFile(0644, make([]byte, 8192)))
	return tr
}

func mustPut(t testing.TB, tr *fstree.Tree, p string, n *fstree.Node) {
	t.Helper()
	if err := tr.Put(p, n); err != nil {
		t.Fatal(err)
	}
}

func writeImage(t testing.TB, tr *fstree.Tree, opts Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "root.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, tr, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return img
}

func TestWriteReadBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		bs   uint32
		size int64
	}{
		{"1k", 1024, 12 << 20},
		{"2k", 2048, 12 << 20},
		{"4k", 4096, 16 << 20},
		{"1k-many-groups", 1024, 40 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := netbsdTree(t, tripleAt1K+3*1024*1024)
			img := writeImage(t, tr, Options{Size: tc.size, BlockSize: tc.bs, Timestamp: ts})
			if st, _ := os.Stat(img); st.Size() != tc.size {
				t.Fatalf("image is %d bytes, want %d", st.Size(), tc.size)
			}
			imagecheck.Fsck(t, img)
			checkDebugfs(t, img, tr, tc.bs)
			imagecheck.Compare(t, imagecheck.Describe(tr, ts), imagecheck.Mounted(t, img))
		})
	}
}

func checkDebugfs(t *testing.T, img string, tr *fstree.Tree, bs uint32) {
	sh, _ := tr.Get("rescue/sh")
	if got := imagecheck.Debugfs(t, img, "cat /rescue/init"); got != string(sh.Content()) {
		t.Errorf("debugfs cat /rescue/init: %d bytes differ from the set's %d", len(got), sh.Size)
	}
	big, _ := tr.Get("var/big")
	if got := imagecheck.Debugfs(t, img, "cat /var/big"); got != string(big.Content()) {
		t.Errorf("debugfs cat /var/big: %d bytes differ from the tree's %d", len(got), big.Size)
	}
	for _, tc := range []struct {
		path string
		want []string // all in debugfs's stat
	}{
		{"/rescue/sh", []string{"Links: 150"}},
		{"/dev/ld1e", []string{"Device major/minor number: 19:12"}},
		{"/bin/fast", []string{`Fast link dest: "/rescue/sh"`}},
		{"/usr/bin/owned", []string{"User:  1000 ", "Group:   100 "}},
		{"/usr/bin/wideids", []string{"User: 100000 ", "Group: 70000 "}},
		// 16 KiB up front (lostFoundBytes), so that fsck reconnects files
		// without allocating; newfs_ext2fs and mke2fs give as much from
		// 2 KiB blocks on, but stop at 12 direct blocks (12 KiB) with 1 KiB.
		{"/lost+found", []string{"Size: 16384\n"}},
	} {
		st := imagecheck.Debugfs(t, img, "stat "+tc.path)
		for _, want := range tc.want {
			if !strings.Contains(st, want) {
				t.Errorf("stat %s: want %q in\n%s", tc.path, want, st)
			}
		}
	}
	st := imagecheck.Debugfs(t, img, "stat /var/big")
	if bs == 1024 && !strings.Contains(st, "TIND") {
		t.Errorf("stat /var/big: want a triple indirect block in\n%s", st)
	}
	if st := imagecheck.Debugfs(t, img, "stat /usr/share/many"); bs == 1024 && !strings.Contains(st, "(IND)") {
		t.Errorf("stat /usr/share/many: a directory past 12 blocks needs an indirect block:\n%s", st)
	}
	ls := imagecheck.Debugfs(t, img, "ls -l /usr/share/many")
	if n := strings.Count(ls, "entry-with-a-longish-name-"); n != 600 {
		t.Errorf("ls -l /usr/share/many: %d entries, want 600", n)
	}
	// Clean, continue on errors, no forced check and no blocks reserved
	// for root: NetBSD's mount -u -w of a file system not clean marks it
	// E2FS_ERRORS, and everything in the VM runs as root.
	sup := imagecheck.Debugfs(t, img, "stats")
	for _, want := range []string{"Filesystem features:      filetype sparse_super large_file\n",
		fmt.Sprintf("Block size:               %d\n", bs), "Inode size:\t          128\n", "Filesystem revision #:    1",
		"Filesystem state:         clean\n", "Errors behavior:          Continue\n",
		"Reserved block count:     0\n", "Maximum mount count:      -1\n"} {
		if !strings.Contains(sup, want) {
			t.Errorf("debugfs stats: want %q in\n%s", want, sup)
		}
	}
}

// TestManyFiles spreads inodes and directories over several block groups.
func TestManyFiles(t *testing.T) {
	raw, err := testsets.Bytes(testsets.Many(3000, 4<<20), "tar")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		bs   uint32
		size int64
	}{
		{"1k", 1024, 16 << 20},
		{"1k-300M-auto", 0, 300 << 20},
		{"4k-600M-auto", 0, 600 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			if err := tr.AddTar(bytes.NewReader(raw), "many.tar"); err != nil {
				t.Fatal(err)
			}
			img := writeImage(t, tr, Options{Size: tc.size, BlockSize: tc.bs, Timestamp: ts, Inodes: 4000})
			if sb := imagecheck.Debugfs(t, img, "stats"); !strings.Contains(sb, "Inodes per group:") || strings.Contains(sb, "Group  0: block bitmap") && !strings.Contains(sb, "Group  1:") {
				t.Errorf("expected several groups:\n%s", sb)
			}
			imagecheck.Fsck(t, img)
			imagecheck.Compare(t, imagecheck.Describe(tr, ts), imagecheck.Mounted(t, img))
		})
	}
}

func TestEmptyTree(t *testing.T) {
	img := writeImage(t, fstree.New(), Options{Size: 1 << 20, Timestamp: ts})
	imagecheck.Fsck(t, img)
	if ls := imagecheck.Debugfs(t, img, "ls -l /"); !strings.Contains(ls, "lost+found") || !strings.Contains(ls, " 11 ") {
		t.Errorf("ls -l /: want lost+found as inode 11 in\n%s", ls)
	}
}

func TestDeterministic(t *testing.T) {
	opts := Options{Size: 8 << 20, Timestamp: ts}
	a := writeImage(t, netbsdTree(t, 1<<20), opts)
	b := writeImage(t, netbsdTree(t, 1<<20), opts)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two images of the same tree and options differ")
	}
	c := writeImage(t, netbsdTree(t, 1<<20), Options{Size: 8 << 20, Timestamp: ts + 1})
	cb, _ := os.ReadFile(c)
	if bytes.Equal(ab, cb) {
		t.Fatal("a different timestamp gave the same bytes")
	}
}

func TestTooSmall(t *testing.T) {
	tr := netbsdTree(t, 1<<20)
	mustPut(t, tr, "var/data", fstree.NewFile(0644, testsets.Blob(5, 3<<20)))
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = Write(f, tr, Options{Size: 2 << 20, Timestamp: ts})
	var tse *TooSmallError
	if err == nil || !errors.As(err, &tse) {
		t.Fatalf("Write into 1 MiB: got %v, want a TooSmallError", err)
	}
	min, err := MinSize(tr, &Options{Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	if tse.Needed != min || !strings.Contains(tse.Error(), fmt.Sprintf("at least %d MiB", min>>20)) {
		t.Errorf("error %q: want the minimum %d MiB", tse, min>>20)
	}
	img := writeImage(t, tr, Options{Size: min, Timestamp: ts})
	imagecheck.Fsck(t, img)
	f2, _ := os.Create(filepath.Join(t.TempDir(), "img2"))
	defer f2.Close()
	if err := Write(f2, tr, Options{Size: min - 1<<20, Timestamp: ts}); !errors.As(err, &tse) {
		t.Errorf("one MiB below the minimum: got %v, want TooSmallError", err)
	}
}

func TestNetBSDDev(t *testing.T) {
	for _, tc := range []struct{ maj, min, want uint32 }{
		{0, 0, 0}, {19, 8, 0x1308}, {165, 0, 0xa500}, {19, 300, 0x10132c},
	} {
		if got := netbsdDev(tc.maj, tc.min); got != tc.want {
			t.Errorf("netbsdDev(%d,%d) = %#x, want %#x", tc.maj, tc.min, got, tc.want)
		}
	}
}

func TestHasSuper(t *testing.T) {
	var got []uint32
	for g := uint32(0); g < 130; g++ {
		if hasSuper(g) {
			got = append(got, g)
		}
	}
	if want := "[0 1 3 5 7 9 25 27 49 81 125]"; fmt.Sprint(got) != want {
		t.Errorf("groups with superblock backups: %v, want %s", got, want)
	}
}

func TestBadTrees(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*fstree.Tree)
		want string
	}{
		{"lost+found file", func(tr *fstree.Tree) { tr.Put("lost+found", fstree.NewFile(0644, nil)) }, "must be a directory"},
		{"long symlink", func(tr *fstree.Tree) { tr.Put("x", fstree.NewSymlink(strings.Repeat("a", 1024))) }, "symlink /x: its target is 1024 bytes"},
		{"bad block size", nil, "block size 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			opts := Options{Size: 4 << 20, Timestamp: ts, BlockSize: 1024}
			if tc.mod != nil {
				tc.mod(tr)
			} else {
				opts.BlockSize = 512
			}
			f, _ := os.Create(filepath.Join(t.TempDir(), "img"))
			defer f.Close()
			err := Write(f, tr, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestFileSizeLimit: only a file's blocks holding data were checked
// against the triple-indirect limit, so a sparse file larger than the
// block map reaches (17 GiB with 1 KiB blocks) was written with its size,
// and e2fsck called the image corrupt ("i_size is too big"). A file up to
// the limit is written and checks clean; one byte more is refused, naming
// the file.
func TestFileSizeLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		bs   uint32
		size int64
		want string // in the error; "" for none
	}{
		{"1k at the limit", 1024, (12 + 256 + 256*256 + 256*256*256) * 1024, ""},
		{"1k past the limit", 1024, (12+256+256*256+256*256*256)*1024 + 1,
			"/big: 17247252481 bytes, more than the 17247252480 bytes an ext2 file holds with 1024-byte blocks"},
		{"2k past the limit", 2048, (12+512+512*512+512*512*512)*2048 + 1, "/big: 275415851009 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			mustPut(t, tr, "big", &fstree.Node{Type: fstree.Regular, Perm: 0644, Size: tc.size,
				Extents: []fstree.Extent{{Off: min(tc.size, (12+256+256*256+256*256*256)*1024) - 1, Data: []byte("z")}}})
			opts := Options{Size: 4 << 20, BlockSize: tc.bs, Timestamp: ts}
			if tc.want == "" {
				img := writeImage(t, tr, opts)
				imagecheck.Fsck(t, img)
				return
			}
			f, err := os.Create(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := Write(f, tr, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestStoredTimes: a node's mtime was stored as its low 32 bits, which
// NetBSD reads signed, so 4000000000 (2096) read back as 1960. A time
// outside 1901..2038 is stored as the nearest end; one inside as it is,
// before 1970 included; none (0) as the image's timestamp. A time of 0
// given (MtimeSet: a set built with SOURCE_DATE_EPOCH=0) was taken for
// none too; it is stored as 1970-01-01.
func TestStoredTimes(t *testing.T) {
	tests := []struct {
		mtime int64
		set   bool   // MtimeSet
		want  string // debugfs's stat line
	}{
		{4000000000, false, "mtime: 0x7fffffff"},
		{1 << 40, false, "mtime: 0x7fffffff"},
		{-3000000000, false, "mtime: 0x80000000"},
		{-100, false, "mtime: 0xffffff9c"},
		{1600000000, false, "mtime: 0x5f5e1000"},
		{1600000000, true, "mtime: 0x5f5e1000"},
		{0, false, fmt.Sprintf("mtime: %#08x", ts)},
		{0, true, "mtime: 0x00000000"},
	}
	tr := fstree.New()
	for i, tt := range tests {
		n := fstree.NewFile(0o644, nil)
		n.Mtime, n.MtimeSet = tt.mtime, tt.set
		mustPut(t, tr, fmt.Sprint("f", i), n)
	}
	img := writeImage(t, tr, Options{Size: 4 << 20, Timestamp: ts})
	for i, tt := range tests {
		if got := imagecheck.Debugfs(t, img, fmt.Sprint("stat /f", i)); !strings.Contains(got, tt.want) {
			t.Errorf("mtime %d: debugfs stat:\n%s\nwant %q", tt.mtime, got, tt.want)
		}
	}
}

// TestSymlinkInlineBoundary writes symlinks around the 60 bytes of block
// pointers: NetBSD reads a target shorter than 60 bytes (its
// EXT2_MAXSYMLINKLEN) from the inode and a longer one from a data block,
// so a 59-byte target must be inline with no block and a 60-byte one must
// have its block, or NetBSD would read a block number as the path.
func TestSymlinkInlineBoundary(t *testing.T) {
	tr := fstree.New()
	t59, t60 := "/"+strings.Repeat("x", 58), "/"+strings.Repeat("y", 59)
	mustPut(t, tr, "l59", fstree.NewSymlink(t59))
	mustPut(t, tr, "l60", fstree.NewSymlink(t60))
	img := writeImage(t, tr, Options{Size: 4 << 20, BlockSize: 1024, Timestamp: ts})
	imagecheck.Fsck(t, img)
	for _, tc := range []struct{ path, want string }{
		{"/l59", "Fast link dest: \"" + t59 + "\""},
		{"/l60", "Blockcount: 2\n"},
	} {
		if st := imagecheck.Debugfs(t, img, "stat "+tc.path); !strings.Contains(st, tc.want) {
			t.Errorf("stat %s: want %q in\n%s", tc.path, tc.want, st)
		}
	}
	if st := imagecheck.Debugfs(t, img, "stat /l59"); !strings.Contains(st, "Blockcount: 0\n") {
		t.Errorf("stat /l59: a fast symlink must own no block:\n%s", st)
	}
	if got := imagecheck.Debugfs(t, img, "cat /l60"); !strings.HasPrefix(got, t60) {
		t.Errorf("block of /l60 holds %q, want the target", got)
	}
}

// fullWriter is a device that fills up after limit bytes.
type fullWriter struct{ limit int64 }

func (w fullWriter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > w.limit {
		return 0, fmt.Errorf("write image: %w", syscall.ENOSPC)
	}
	return len(p), nil
}

// TestWriteNoSpace: a failed write names the file of the image it was
// writing as the image's (not a bare "/bin/sh: ..."), and keeps the cause.
func TestWriteNoSpace(t *testing.T) {
	tr := fstree.New()
	mustPut(t, tr, "bin/sh", fstree.NewFile(0555, testsets.Blob(1, 200_000)))
	err := Write(fullWriter{limit: 64 << 10}, tr, Options{Size: 4 << 20, Timestamp: ts})
	if !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "the image's /") || !strings.Contains(err.Error(), ": writing ") {
		t.Fatalf("Write = %v; want ENOSPC naming the file of the image being written", err)
	}
}

// contentBlocks bounds the blocks of an image of tr with opts that can
// hold a non-zero byte: the content, every group's two bitmaps, the
// superblock and descriptor copies, and the inode-table blocks of the
// inodes in use (numbered densely from 1).
func contentBlocks(t *testing.T, tr *fstree.Tree, opts Options) (blocks uint64, bs uint32) {
	t.Helper()
	p, g, err := layout(tr, &opts)
	if err != nil {
		t.Fatal(err)
	}
	n := p.blocks + 2*uint64(g.groups)
	for grp := uint32(0); grp < g.groups; grp++ {
		if hasSuper(grp) {
			n += 1 + uint64(g.gdtBlocks)
		}
	}
	highest := uint64(p.inodes[len(p.inodes)-1].ino)
	used := (highest + uint64(g.ipg) - 1) / uint64(g.ipg) // groups with an inode in use
	n += (highest*inodeSize+uint64(g.bs)-1)/uint64(g.bs) + used
	return n, g.bs
}

// TestSparseImage: the blocks that hold only zeros (inode tables of groups
// with no inode in use, the unused end of the others) are left as holes, so
// a large image of little content takes about its content on disk, and
// still reads as a whole file system.
func TestSparseImage(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(probe, 1<<20); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(probe); err != nil || st.Sys().(*syscall.Stat_t).Blocks != 0 {
		t.Skipf("the file system of %s does not keep holes in files", probe)
	}
	// Room for the host file system's own block maps of the image.
	const slack = 256 << 10
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"1G-4k", 1 << 30},     // 8 groups, 1 MiB of inode table each
		{"300M-1k", 300 << 20}, // 38 groups of 1 KiB blocks
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := netbsdTree(t, 1<<20)
			opts := Options{Size: tc.size, Timestamp: ts}
			img := writeImage(t, tr, opts)
			st, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != tc.size {
				t.Fatalf("image is %d bytes, want %d", st.Size(), tc.size)
			}
			n, bs := contentBlocks(t, tr, opts)
			bound := int64(n)*int64(bs) + slack
			if got := st.Sys().(*syscall.Stat_t).Blocks * 512; got > bound {
				t.Errorf("image of %d MiB takes %d KiB on disk; its content and metadata are %d KiB (bound %d KiB)",
					tc.size>>20, got>>10, int64(n)*int64(bs)>>10, bound>>10)
			}
			imagecheck.Fsck(t, img)
		})
	}
}

// countingImage is an io.WriterAt that keeps nothing and counts the bytes
// written to it.
type countingImage struct{ written int64 }

func (c *countingImage) WriteAt(p []byte, off int64) (int, error) {
	c.written += int64(len(p))
	return len(p), nil
}

// TestLargeImageCost: a 1 TiB image of little content (8192 groups) is
// written, and held in memory while it is laid out, in proportion to its
// metadata and content, not to its inode tables (8 GiB).
func TestLargeImageCost(t *testing.T) {
	tr := netbsdTree(t, 1<<20)
	opts := Options{Size: 1 << 40, Timestamp: ts}
	n, bs := contentBlocks(t, tr, opts)
	var img countingImage
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := Write(&img, tr, opts); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if want := int64(n)*int64(bs) + 1; img.written > want {
		t.Errorf("wrote %d MiB for %d MiB of content and metadata", img.written>>20, want>>20)
	}
	// The tree's content is already in memory: what Write allocates is
	// its plan, the descriptors and the groups' bookkeeping.
	const bound = 32 << 20
	if got := after.TotalAlloc - before.TotalAlloc; got > bound {
		t.Errorf("Write allocated %d MiB for a 1 TiB image, want at most %d MiB", got>>20, bound>>20)
	}
}

// An image written into a longer file leaves what is past it: the file is
// extended to the image's size, never shortened to it.
func TestWriteKeepsLongerFile(t *testing.T) {
	tr := netbsdTree(t, 1<<20)
	opts := Options{Size: 8 << 20, Timestamp: ts}
	img := filepath.Join(t.TempDir(), "disk.img")
	tail := []byte("past the image")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(tail, opts.Size+4096); err != nil {
		t.Fatal(err)
	}
	if err := Write(f, tr, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := make([]byte, len(tail))
	if _, err := f.ReadAt(got, opts.Size+4096); err != nil || !bytes.Equal(got, tail) {
		t.Errorf("past the image: %q, %v; want %q", got, err, tail)
	}
}
