package vmm_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// bigInput is what the memory tests pad kernels and modules to: about a
// NetBSD GENERIC kernel's size.
const bigInput = 32 << 20

// paddedKernel writes the counter guest followed by bigInput random bytes
// (which no loader reads, as an ELF file's debug sections) to dir, as it
// is or gzipped.
func paddedKernel(t *testing.T, dir string, gzipped bool) string {
	t.Helper()
	elf, err := os.ReadFile(guest(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kernel")
	if gzipped {
		path += ".gz"
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	zw := gzip.NewWriter(f)
	if gzipped {
		w = zw
	}
	if _, err := w.Write(elf); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range bigInput >> 20 {
		rand.Read(chunk)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if gzipped {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// anonOutside is the resident anonymous memory of this process, in KiB,
// outside guest (its RAM): the VMM's own (heap, stacks).
func anonOutside(t *testing.T, guest []byte) (kib int64, mapped []string) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps here: %v", err)
	}
	defer f.Close()
	maps, err := bench.ParseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	var at uint64
	if len(guest) > 0 {
		at = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(guest))))
	}
	for _, m := range maps {
		if at >= m.Start && at < m.End {
			continue
		}
		kib += m.AnonKiB
		mapped = append(mapped, m.Path)
	}
	return kib, mapped
}

// A kernel and a module, ~NetBSD GENERIC's size each, leave nothing of
// theirs in the VMM once the guest runs: the kernel file is mapped and
// unmapped after the load (a gzipped one decompressed, then collected),
// the module (mapped, as the CLI does, and unmapped once New returns)
// copied into guest memory and kept nowhere else. Read whole, the kernel
// stayed in the heap for the whole run, ~2.4 times its size.
func TestLoadLeavesNoInputInVMM(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	modPath := filepath.Join(dir, "module")
	modBytes := make([]byte, bigInput)
	rand.Read(modBytes)
	if err := os.WriteFile(modPath, modBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	modBytes = nil
	for _, gzipped := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "gzipped"}[gzipped]
		t.Run(name, func(t *testing.T) {
			kernel := paddedKernel(t, dir, gzipped)
			mod, err := regfile.Map(modPath, 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			ready := make(chan struct{})
			cfg := vmm.Config{
				Kernel: kernel, MemoryMiB: 128, Append: "spin",
				Modules: []multiboot.Module{{Name: "module", Data: mod}},
				Ready:   regexp.MustCompile(`^counter: spinning`),
				OnEvent: func(e vmm.Event) {
					if e.Phase == vmm.PhaseReady {
						close(ready)
					}
				},
			}
			runtime.GC()
			debug.FreeOSMemory()
			before, _ := anonOutside(t, nil)
			m, err := vmm.New(cfg)
			regfile.Unmap(mod)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := m.Run(ctx); done <- err }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("the guest ended before it spun: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the guest did not spin in 30 s")
			}
			after, mapped := anonOutside(t, m.Memory().Bytes())
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// The guest's RAM holds the module's copy, and counts apart.
			if grew := after - before; grew > 8<<10 {
				t.Errorf("the VMM's anonymous memory outside guest RAM grew %d KiB across New with a %d MiB kernel and module, want < 8 MiB", grew, bigInput>>20)
			}
			for _, p := range mapped {
				if p == kernel || p == modPath {
					t.Errorf("%s is still mapped once the guest runs", p)
				}
			}
			// Loaded last, the module ends what the loader placed.
			end := int(m.Plan().End)
			if got, want := m.Memory().Bytes()[end-bigInput:end], mustRead(t, modPath); !bytes.Equal(got, want) {
				t.Errorf("guest memory [%#x, %#x) does not hold the module", end-bigInput, end)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// New keeps neither KernelImage nor a module's Data once loaded: an
// embedder's bytes are collected when the embedder drops them, while the
// machine lives.
func TestNewKeepsNoInputBytes(t *testing.T) {
	needKVM(t)
	elf, err := os.ReadFile(guest(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	image := new([4 << 20]byte)
	copy(image[:], elf)
	module := new([1 << 20]byte)
	cfg := vmm.Config{Kernel: "counter", KernelImage: image[:], MemoryMiB: 16,
		Modules: []multiboot.Module{{Name: "module", Data: module[:]}}}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	wImage, wModule := weak.Make(image), weak.Make(module)
	image, module, cfg = nil, nil, vmm.Config{}
	runtime.GC()
	runtime.GC()
	if wImage.Value() != nil {
		t.Error("the Machine keeps KernelImage")
	}
	if wModule.Value() != nil {
		t.Error("the Machine keeps a module's Data")
	}
	runtime.KeepAlive(m)
}

// A mapped module cut shorter before it is loaded is New's error, naming
// the module, not the fault that would kill the process.
func TestNewModuleCutWhileMapped(t *testing.T) {
	needKVM(t)
	path := filepath.Join(t.TempDir(), "module")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	mod, err := regfile.Map(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer regfile.Unmap(mod)
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	m, err := vmm.New(vmm.Config{Kernel: guest(t, "counter"), MemoryMiB: 16,
		Modules: []multiboot.Module{{Name: "module", Data: mod}}})
	if err == nil {
		m.Close()
		t.Fatal("New loaded a module cut shorter")
	}
	var ve *vmm.Error
	if !errors.As(err, &ve) || ve.Field != "Modules" || !errors.Is(err, regfile.ErrCut) {
		t.Fatalf("New: %v, want an *Error for Modules wrapping regfile.ErrCut", err)
	}
	if want := "read module: module 0 (module): no byte at offset "; !strings.Contains(err.Error(), want) {
		t.Errorf("New: %v, want it to say %q", err, want)
	}
}
