package vmm

import (
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// syncBuilder is a log the machine's goroutines may write at once.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeviceWarningNamesDevice: with two disks, a warning of the second
// names it (ld1, its PCI slot and its image) and reads as smolvmm's own
// messages do. Every device logged the same "level=WARN msg=... virtio_type=2"
// line, which did not say which disk.
func TestDeviceWarningNamesDevice(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	dir := t.TempDir()
	var imgs []string
	for _, n := range []string{"first.img", "second.img"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, p)
	}
	var log syncBuilder
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest(), Log: &log,
		Disks: []blk.Spec{{Path: imgs[0]}, {Path: imgs[1]}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The second disk's queue 0 placed past the end of RAM: refused, the
	// device broken until reset.
	bar, _ := m.virtio[1].dev.PCIConfig().BAR(0)
	var b [4]byte
	m.pio.Write(bar+virtio.RegStatus, []byte{virtio.StatusAcknowledge | virtio.StatusDriver})
	m.pio.Write(bar+virtio.RegQueueSelect, b[:2])
	binary.LittleEndian.PutUint32(b[:], 0xFFFFF)
	m.pio.Write(bar+virtio.RegQueuePFN, b[:])
	if !m.virtio[1].dev.Broken() {
		t.Fatal("the second disk took a queue outside memory")
	}
	m.flushLog(untilStopped)
	got := log.String()
	want := "smolvmm: ld1 at PCI 00:02.0 (disk image " + imgs[1] + "): virtio: device needs reset; refusing to serve it (reason="
	if !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, ")\n") {
		t.Errorf("log:\n%s\nwant one line starting %q", got, want)
	}
	if strings.Contains(got, "level=") || strings.Contains(got, imgs[0]) || strings.Contains(got, "virtio_type") {
		t.Errorf("log names the first disk, or is slog's text format:\n%s", got)
	}
}

// TestDeviceLogEscapes: a device's warning line keeps what it quotes
// (the disk image's path in its name, the message, each value) inert on a
// terminal: a control character is written as its Go escape, so that an
// image named a\rb.img or an error carrying ESC [2J can neither clear the
// screen nor overwrite the line. Only a newline was escaped (slog's text
// handler, replaced, had quoted them).
func TestDeviceLogEscapes(t *testing.T) {
	tests := []struct {
		name, msg string
		attrs     []any
		want      string
	}{
		{"ld0 at PCI 00:01.0 (disk image /tmp/a\rb.img)", "virtio-blk: the disk image failed",
			[]any{"err", "x\x1b[2Jy\rz"},
			`smolvmm: ld0 at PCI 00:01.0 (disk image /tmp/a\rb.img): virtio-blk: the disk image failed (err=x\x1b[2Jy\rz)` + "\n"},
		{"ld1", "two\nlines\x07", []any{"a\x1bkey", "v\u202ev", "n", 3},
			`smolvmm: ld1: two\nlines\a (a\x1bkey=v\u202ev, n=3)` + "\n"},
		{"ld2 (disk image plain.img)", "plain", []any{"err", `C:\x`},
			`smolvmm: ld2 (disk image plain.img): plain (err=C:\x)` + "\n"},
	}
	for _, tt := range tests {
		var log syncBuilder
		h := &deviceLog{m: &Machine{cfg: Config{Log: &log}}, name: new(atomic.Pointer[string])}
		h.setName(tt.name)
		slog.New(h).Warn(tt.msg, tt.attrs...)
		if got := log.String(); got != tt.want {
			t.Errorf("%q: logged\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}
