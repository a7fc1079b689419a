package netbsdboot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
)

// FuzzModules loads a good i386 or amd64 kernel with one boot module of
// arbitrary bytes and type (any of the five, or one unknown). With the
// kernel and command line good, a refusal must be the module's
// (ErrModule), or guest memory too small for it (MemoryError). An
// accepted plan's regions are in address order, disjoint and in memory,
// and one of them is the module, holding its bytes as the kernel gets
// them: gunzipped when gzip data (kernelimage.Gunzip), else as given.
func FuzzModules(f *testing.F) {
	for _, k := range []struct {
		file  string
		amd64 bool
	}{{"tiny-i386.kmod", false}, {"tiny-amd64.kmod", true}, {"tiny-i386-stripped.kmod", false}} {
		b, err := os.ReadFile(filepath.Join("testdata", k.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(ModuleAuto), k.amd64)
		f.Add(b, uint8(ModuleELF), !k.amd64) // another class's kmod
		f.Add(gz(b, len(b)/2), uint8(ModuleAuto), k.amd64)
	}
	f.Add(versionedKmod(1, "m", 901000000, ""), uint8(ModuleELF), false)
	f.Add(versionedKmod(2, "m", 901000000, ""), uint8(ModuleAuto), true)
	f.Add(versionedKmod(1, "m", 1000000000, ""), uint8(ModuleAuto), false) // another release
	f.Add(rndSeed(512), uint8(ModuleRnd), false)
	f.Add(rndSeed(512)[:535], uint8(ModuleRnd), true)
	f.Add(gz(rndSeed(1)), uint8(ModuleRnd), true)
	f.Add(pattern(5000, 9), uint8(ModuleFS), false)
	f.Add(append(gz([]byte("fs image")), "\x1fpadding"...), uint8(ModuleFS), true)
	f.Add([]byte("splash"), uint8(ModuleImage), false)
	f.Add([]byte("\x7fELF"), uint8(ModuleAuto), false)
	f.Add([]byte("data"), uint8(5), true)
	k32, k64 := stdKernel(1).Build(), stdKernel(2).Build()
	// Reused, as Load needs no clean memory; each input's regions are
	// cleared after it so that the next must write its module itself.
	mem := guestmem.New(make([]byte, 8<<20))
	f.Fuzz(func(t *testing.T, data []byte, typ uint8, amd64 bool) {
		k := k32
		if amd64 {
			k = k64
		}
		mod := Module{Name: "m.kmod", Data: data, Type: ModuleType(typ % 6)}
		p, err := Load(mem, bytes.NewReader(k), int64(len(k)), Options{Append: "console=com root=ld0a", Modules: []Module{mod}})
		if err != nil {
			var me *MemoryError
			if !errors.Is(err, ErrModule) && !errors.As(err, &me) {
				t.Fatalf("refused, not for the module nor memory: %v", err)
			}
			return
		}
		want := data
		if kernelimage.IsGzip(data) {
			if want, err = kernelimage.Gunzip(data, mem.Size()); err != nil {
				t.Fatalf("accepted gzip data Gunzip refuses: %v", err)
			}
		}
		var end uint64
		modules := 0
		for _, r := range p.Regions {
			if r.Addr < end {
				t.Fatalf("region %v overlaps the one before", r)
			}
			end = r.Addr + r.Len
			if end > mem.Size() {
				t.Fatalf("region %v past memory", r)
			}
			if strings.HasPrefix(r.What, "module ") {
				modules++
				if got := mem.Bytes()[r.Addr:end]; !bytes.Equal(got, want) {
					t.Fatalf("region %v holds %d bytes unlike the module's %d", r, len(got), len(want))
				}
			}
		}
		if modules != 1 {
			t.Fatalf("%d module regions, want 1: %v", modules, p.Regions)
		}
		for _, r := range p.Regions {
			clear(mem.Bytes()[r.Addr : r.Addr+r.Len])
		}
	})
}
