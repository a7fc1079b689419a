package multiboot

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzLoad from the test image builders")

// fuzzSeeds are valid images of each kind the loader accepts, and images
// at the edge of its checks.
func fuzzSeeds() map[string][]byte {
	stripped := stdELF()
	stripped.symtab = nil
	kludge := stdELF()
	copy(kludge.segs[0].data, mbHeader(FlagMemoryInfo|FlagAOutKludge, kp, kp, kp+0x200, kp+0x1000, kp+0x40))
	return map[string][]byte{
		"elf-symbols":  stdELF().build(),
		"elf-stripped": stripped.build(),
		"elf-kludge":   kludge.build(),
		"aout":         aoutImage(),
		// The first section index past the table, where the loader
		// and NetBSD's pick read a section's sh_link.
		"elf-symtab-link-shnum": patchShdr(tSecSymtab, map[int]uint32{shLink: tShnum}),
		"elf-early-link-shnum":  patchShdr(tSecText, map[int]uint32{shType: 3, shLink: tShnum}),
	}
}

// TestWriteFuzzSeeds checks that the committed seed corpus is what the
// test image builders make, and rewrites it with -write-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzLoad")
	if *writeSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *writeSeeds {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != body {
			t.Errorf("%s is missing or stale (%v): run go test -run TestWriteFuzzSeeds -write-seeds", path, err)
		}
	}
}

// FuzzLoad feeds arbitrary kernel images to Load. It must never panic; a
// refused image must leave guest memory untouched, and an accepted one may
// only change the loader's low window and [KernelStart, End).
func FuzzLoad(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	const size = 3 * mib
	ref := bytes.Repeat([]byte{fill}, size)
	buf := make([]byte, size)
	opts := Options{KernelName: "netbsd", Append: "console=com root=ld0a",
		Modules: []Module{{Name: "m", Data: []byte("module"), Args: "a=b"}}}
	f.Fuzz(func(t *testing.T, image []byte) {
		copy(buf, ref)
		mem := guestmem.New(buf)
		p, err := Load(mem, bytes.NewReader(image), int64(len(image)), opts)
		if err != nil {
			if !bytes.Equal(buf, ref) {
				t.Fatalf("refused image (%v) changed guest memory at %#x", err, changed(buf))
			}
			return
		}
		if p.EAX != BootloaderMagic || p.EBX != LowAreaStart {
			t.Fatalf("EAX, EBX = %#x, %#x", p.EAX, p.EBX)
		}
		if p.KernelStart < lowReserved || p.KernelStart >= p.KernelEnd || p.KernelEnd > p.End || uint64(p.End) > size {
			t.Fatalf("bad extent: start %#x, kernel end %#x, end %#x", p.KernelStart, p.KernelEnd, p.End)
		}
		if p.Entry < p.KernelStart || p.Entry >= p.KernelEnd {
			t.Fatalf("entry %#x outside the image [%#x, %#x)", p.Entry, p.KernelStart, p.KernelEnd)
		}
		for _, r := range [][2]uint64{{0, LowAreaStart}, {LowAreaEnd, uint64(p.KernelStart)}, {uint64(p.End), size}} {
			if !bytes.Equal(buf[r[0]:r[1]], ref[r[0]:r[1]]) {
				t.Fatalf("loader wrote outside its areas, in [%#x, %#x)", r[0], r[1])
			}
		}
	})
}
