package ext2_test

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
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
	// directories and inodes, by a reader that shares nothing with
	// the writer (the tests' imagecheck.ReadFile).
	img, _ := os.ReadFile(f.Name())
	rc, err := imagecheck.ReadFile(img, "etc/rc")
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
