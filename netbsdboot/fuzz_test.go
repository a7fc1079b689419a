package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
)

// FuzzLoad feeds arbitrary kernel bytes to Detect and Load: they must
// never panic, and a kernel they accept must fit in guest memory with its
// regions disjoint.
func FuzzLoad(f *testing.F) {
	f.Add(stdKernel(1).Build(), "-s console=com root=ld0a")
	f.Add(stdKernel(2).Build(), "")
	k := stdKernel(1)
	k.Secs = nil
	f.Add(k.Build(), "console=pc")
	f.Add([]byte("\x7fELF\x01\x01\x01"), "-z")
	// The first index past the 9 sections, as e_shstrndx and as the
	// symbol table's sh_link: either, read as a section, lies past the table.
	b := stdKernel(1).Build()
	binary.LittleEndian.PutUint16(b[50:], 9)
	f.Add(b, "console=com")
	k = stdKernel(1)
	k.Secs[4].Link = 9
	f.Add(k.Build(), "console=com")
	mem := guestmem.New(make([]byte, 4<<20)) // reused: Load checks before it writes
	f.Fuzz(func(t *testing.T, image []byte, append string) {
		if _, err := Detect(bytes.NewReader(image), int64(len(image))); err != nil {
			return
		}
		p, err := Load(mem, bytes.NewReader(image), int64(len(image)), Options{Append: append,
			Modules: []Module{{Name: "fs.img", Data: []byte("\x7fELF"), Type: ModuleFS}}})
		if err != nil {
			return
		}
		var end uint64
		for _, r := range p.Regions {
			if r.Addr < end {
				t.Fatalf("region %v overlaps the one before", r)
			}
			end = r.Addr + r.Len
			if end > mem.Size() {
				t.Fatalf("region %v past memory", r)
			}
		}
	})
}
