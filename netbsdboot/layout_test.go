package netbsdboot

import (
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// Modules go after the kernel's highest segment, so an ELF cannot make
// them overlap it; the layout still refuses a kernel segment that lies
// where a module would go.
func TestLayOutRefusesOverlap(t *testing.T) {
	k := &kernel{
		segs: []bootelf.Segment{{Name: "segment 0", Addr: 0x100000, MemSize: 0x1000},
			{Name: "segment 1", Addr: 0x103000, MemSize: 0x1000}},
		syms: &symArea{start: 0x101000, end: 0x101100},
	}
	_, err := layOut(k, Options{Modules: []Module{{Name: "m.kmod", Data: make([]byte, 0x1800), Type: ModuleFS}}}, 16<<20)
	if !errors.Is(err, ErrModule) || !errors.Is(err, ErrOverlap) {
		t.Fatalf("layOut: %v, want ErrModule and ErrOverlap", err)
	}
}
