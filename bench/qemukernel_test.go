package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

func TestQEMUKernel(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(guests.Demo)
	zw.Close()
	native := elftest.File{Class: 1, Machine: 3, Entry: 0xc0100000,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: []byte{0xf4}, Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 599001500)}},
	}.Build()

	plain := write("demo.elf", guests.Demo)
	if got, err := QEMUKernel(plain, dir); err != nil || got != plain {
		t.Errorf("plain multiboot kernel: %q, %v; want the file itself", got, err)
	}
	got, err := QEMUKernel(write("demo.elf.gz", gz.Bytes()), dir)
	if err != nil {
		t.Fatalf("gzipped multiboot kernel: %v", err)
	}
	if data, err := os.ReadFile(got); err != nil || !bytes.Equal(data, guests.Demo) {
		t.Errorf("gzipped multiboot kernel: %s does not hold the decompressed kernel (%v)", got, err)
	}
	if _, err := QEMUKernel(write("netbsd", native), dir); !errors.Is(err, ErrQEMUKernel) {
		t.Errorf("native-only NetBSD kernel: err %v, want ErrQEMUKernel", err)
	}
	// Neither kernel: not said to need the native handoff.
	if _, err := QEMUKernel(write("zeros", make([]byte, 8192)), dir); err == nil || errors.Is(err, ErrQEMUKernel) ||
		!errors.Is(err, multiboot.ErrNotMultiboot) || !errors.Is(err, netbsdboot.ErrNotNetBSD) || strings.Contains(err.Error(), "handoff") {
		t.Errorf("a file of zeros: err %v, want one saying it is not a kernel", err)
	}
	if _, err := QEMUKernel(filepath.Join(dir, "missing"), dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing kernel: err %v, want ErrNotExist", err)
	}
}
