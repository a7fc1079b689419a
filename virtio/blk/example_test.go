package blk_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// A disk image behind the legacy PCI transport, read by a driver that
// does what NetBSD's ld(4) does: attach, then an IN request of one sector.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "blk-example")
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "root.img")
	_ = os.WriteFile(img, append([]byte("hello from sector 0"), make([]byte, 4096)...), 0o644)

	spec, _ := blk.ParseDiskSpec(img + ",ro,serial=ROOT")
	disk, err := blk.Open(spec.Path, spec.Options)
	if err != nil {
		fmt.Println(err)
		return
	}
	mem := guestmem.New(make([]byte, 1<<20))
	dev, _ := virtio.NewPCIDevice(mem, disk, virtiotest.NewIRQ(), nil)
	defer dev.Close() // stops the worker, closes the image

	drv := virtiotest.Driver{Regs: dev.BARDevice(0)}
	ring, _ := virtiotest.NewRing(mem, 1, drv.QueueSize(0))
	_, _ = drv.Attach(0xFFFFFFFF, []uint32{1})
	fmt.Println("capacity:", drv.Read32(virtio.RegConfig), "sectors; read-only:", disk.ReadOnly())

	_, _ = mem.WriteAt([]byte{blk.TypeIn, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0x10000)
	ring.Publish(ring.AddChain([]virtiotest.Buf{
		{Addr: 0x10000, Len: blk.HeaderSize},
		{Addr: 0x11000, Len: 512, Write: true},
		{Addr: 0x12000, Len: 1, Write: true},
	}))
	drv.Notify(0)
	_, n, _ := ring.WaitUsed(virtiotest.Patience)
	data, _ := mem.Slice(0x11000, 19)
	status, _ := mem.Read8(0x12000)
	fmt.Printf("%q status %d used %d\n", data, status, n)
	// Output:
	// capacity: 8 sectors; read-only: true
	// "hello from sector 0" status 0 used 513
}

func ExampleParseDiskSpec() {
	s, err := blk.ParseDiskSpec("images/data.img,ro,serial=DATA1")
	fmt.Printf("%s ro=%v serial=%s %v\n", s.Path, s.ReadOnly, s.Serial, err)
	_, err = blk.ParseDiskSpec("images/data.img,rw")
	fmt.Println(err)
	// Output:
	// images/data.img ro=true serial=DATA1 <nil>
	// disk "images/data.img,rw": unknown option "rw"; known: ro, serial=ID (a comma in the path is written ,,)
}
