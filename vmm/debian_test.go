package vmm_test

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/debiankernels"
	"github.com/smolvmm/smolvmm/vmm"
)

// Third-party multiboot v1 kernels from Debian's packages: see
// internal/debiankernels.
var debianFile = debiankernels.File

// watcher is a console that cancels the run once it has seen stop.
type watcher struct {
	guests.Console
	stop   string
	cancel context.CancelFunc
}

func (w *watcher) Write(p []byte) (int, error) {
	n, err := w.Console.Write(p)
	if strings.Contains(w.String(), w.stop) {
		w.cancel()
	}
	return n, err
}

// TestTboot boots Intel's tboot (a multiboot v1 ELF loaded at 8 MiB) and
// checks that it printed the command line and the memory map we built.
func TestTboot(t *testing.T) {
	needKVM(t)
	gz := debianFile(t, "tboot", "boot/tboot.gz")
	f, err := os.Open(gz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	image, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	con := &watcher{stop: "TBOOT: no module info", cancel: cancel}
	m, err := vmm.New(vmm.Config{Kernel: "/boot/tboot", KernelImage: image, MemoryMiB: 128,
		Append: "loglvl=all serial=115200,8n1,0x3f8", Console: con})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, con.String())
	}
	wantLines(t, con.String(),
		"TBOOT: command line: tboot loglvl=all serial=115200,8n1,0x3f8",
		"TBOOT: \t0000000000000000 - 00000000000a0000  (1)",
		"TBOOT: \t00000000000a0000 - 0000000000100000  (2)",
		"TBOOT: \t0000000000100000 - 0000000008000000  (1)",
		"TBOOT: no module info")
}

// textScreen is VGA text memory: the machine has no display, so a test that
// wants to read what a kernel wrote to 0xB8000 plugs one in.
type textScreen struct {
	mu  sync.Mutex
	mem [80 * 25 * 2]byte
}

func (s *textScreen) Read(off uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	copy(data, s.mem[off:])
}

func (s *textScreen) Write(off uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	copy(s.mem[off:], data)
}

// text returns the characters of the 80x25 text screen.
func (s *textScreen) text() string {
	s.mu.Lock()
	screen := s.mem
	s.mu.Unlock()
	var b strings.Builder
	for row := 0; row < 25; row++ {
		line := make([]byte, 80)
		for col := range line {
			c := screen[2*(row*80+col)]
			if c < ' ' || c > '~' {
				c = ' '
			}
			line[col] = c
		}
		b.WriteString(strings.TrimRight(string(line), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestMultibootExampleKernel boots the example kernel of Debian's multiboot
// package (GRUB's), which writes the information it received to VGA text
// memory and then halts; the test reads the screen from guest memory.
func TestMultibootExampleKernel(t *testing.T) {
	needKVM(t)
	kernel := debianFile(t, "multiboot", "usr/lib/multiboot/examples/kernel")
	m, err := vmm.New(vmm.Config{Kernel: kernel, MemoryMiB: 64, Append: "hello from smolvmm"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var vga textScreen
	if err := m.MMIOBus().Register("vga text", 0xB8000, uint64(len(vga.mem)), &vga); err != nil {
		t.Fatal(err)
	}
	// The kernel ends in a HLT loop, which an in-kernel irqchip never
	// reports: poll the screen until the last line appears.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		prev := ""
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			screen := vga.text()
			if strings.Count(screen, "type = 0x") >= 3 && screen == prev {
				cancel()
				return
			}
			prev = screen
		}
	}()
	if _, err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	screen := vga.text()
	t.Logf("screen:\n%s", screen)
	wantLines(t, screen,
		"mem_lower = 640KB, mem_upper = 64512KB",
		"cmdline = kernel hello from smolvmm",
		"mmap_addr = 0x",
		" size = 0x14, base_addr = 0x000000000, length = 0x0000a0000, type = 0x1",
		" size = 0x14, base_addr = 0x0000a0000, length = 0x000060000, type = 0x2",
		" size = 0x14, base_addr = 0x000100000, length = 0x003f00000, type = 0x1")
	if strings.Contains(screen, "boot_device") {
		t.Errorf("boot_device must not be passed")
	}
}
