package ext2_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

func ExampleWrite() {
	t := fstree.New()
	t.Put("etc/rc", fstree.NewFile(0755, []byte("sh\n")))
	t.Put("dev/console", fstree.NewDevice(fstree.CharDev, 0600, 0, 0))
	t.Put("bin/sh", fstree.NewSymlink("/rescue/sh"))

	f, err := os.CreateTemp("", "root-*.img")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := ext2.Write(f, t, ext2.Options{Size: 4 << 20, Timestamp: 1700000000}); err != nil {
		fmt.Println(err)
		return
	}
	// Read back: the superblock's magic, and etc/rc through the
	// directories and inodes.
	img, _ := os.ReadFile(f.Name())
	rc, err := readExt2(img, "etc/rc")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes, magic %#x\n", len(img), binary.LittleEndian.Uint16(img[1080:]))
	fmt.Printf("etc/rc: %q\n", rc)
	// Output:
	// 4194304 bytes, magic 0xef53
	// etc/rc: "sh\n"
}

func ExampleMinSize() {
	data := make([]byte, 5<<20)
	for i := range data {
		data[i] = byte(i%251 + 1)
	}
	t := fstree.New()
	t.Put("data", fstree.NewFile(0644, data))
	n, err := ext2.MinSize(t, &ext2.Options{})
	fmt.Println(n>>20, "MiB", err)

	f, _ := os.CreateTemp("", "small-*.img")
	defer os.Remove(f.Name())
	defer f.Close()
	fmt.Println(ext2.Write(f, t, ext2.Options{Size: 2 << 20}))
	// Output:
	// 6 MiB <nil>
	// image of 2097152 bytes (2.0 MiB) is too small for its content: it needs at least 6 MiB
}

// readExt2 is the content of the regular file at name (slash-separated,
// from the root) of the ext2 image img, read with nothing of the
// writer's: superblock, group descriptors, inodes and directory entries
// as the format lays them out. Only the direct blocks are read (files
// and directories of up to 12 blocks), which the Examples' small files
// fit.
func readExt2(img []byte, name string) ([]byte, error) {
	le := binary.LittleEndian
	if len(img) < 2048 || le.Uint16(img[1080:]) != 0xEF53 {
		return nil, errors.New("no ext2 superblock at offset 1024")
	}
	sb := img[1024:2048]
	bs := 1024 << le.Uint32(sb[24:])
	perGroup, inodeSize := int(le.Uint32(sb[40:])), int(le.Uint16(sb[88:]))
	gdt := (int(le.Uint32(sb[20:])) + 1) * bs // after the superblock's block
	block := func(n uint32) ([]byte, error) {
		off := int(n) * bs
		if n == 0 || off+bs > len(img) {
			return nil, fmt.Errorf("block %d out of the image", n)
		}
		return img[off : off+bs], nil
	}
	// content is inode ino's i_size bytes, from its direct blocks.
	content := func(ino int) ([]byte, error) {
		g, i := (ino-1)/perGroup, (ino-1)%perGroup
		if gdt+g*32+32 > len(img) {
			return nil, fmt.Errorf("inode %d out of the image", ino)
		}
		table := int(le.Uint32(img[gdt+g*32+8:])) * bs
		if table+(i+1)*inodeSize > len(img) {
			return nil, fmt.Errorf("inode %d out of the image", ino)
		}
		in := img[table+i*inodeSize:]
		size := int(le.Uint32(in[4:]))
		var b []byte
		for k := 0; len(b) < size; k++ {
			if k == 12 {
				return nil, fmt.Errorf("inode %d: %d bytes: past the direct blocks", ino, size)
			}
			blk, err := block(le.Uint32(in[40+4*k:]))
			if err != nil {
				return nil, fmt.Errorf("inode %d: %w", ino, err)
			}
			b = append(b, blk...)
		}
		return b[:size], nil
	}
	ino := 2 // the root directory
	for _, part := range strings.Split(name, "/") {
		dir, err := content(ino)
		if err != nil {
			return nil, err
		}
		ino = 0
		for off := 0; off+8 <= len(dir) && ino == 0; {
			recLen, nameLen := int(le.Uint16(dir[off+4:])), int(dir[off+6])
			if recLen < 8 || off+8+nameLen > len(dir) {
				return nil, fmt.Errorf("%s: a bad directory entry at %d", part, off)
			}
			if le.Uint32(dir[off:]) != 0 && string(dir[off+8:off+8+nameLen]) == part {
				ino = int(le.Uint32(dir[off:]))
			}
			off += recLen
		}
		if ino == 0 {
			return nil, fmt.Errorf("%s: no such entry", part)
		}
	}
	return content(ino)
}
