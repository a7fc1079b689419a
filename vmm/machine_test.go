package vmm_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// These tests boot the project's own guests (package guests, each checked
// under QEMU there) on /dev/kvm. Guests stay in unpaged protected mode: the
// nested KVM of the CI machines runs nothing else (paged guests run in
// internal/nestedkvm's rig: docs/testing.md, "Tests on a real KVM").

func needKVM(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("KVM unusable here (%v): guest tests need /dev/kvm", err)
	}
	f.Close()
}

func guest(t testing.TB, name string) string {
	t.Helper()
	return guests.ForTest(t, name)
}

// boot runs cfg to its end (or timeout) and returns the console output.
// The machine's log goes to cfg.Log when the test gives one.
func boot(t *testing.T, cfg vmm.Config, timeout time.Duration) (string, vmm.Exit, error) {
	t.Helper()
	needKVM(t)
	var out guests.Console
	cfg.Console = &out
	log, ok := cfg.Log.(*guests.Console)
	if !ok {
		log = &guests.Console{}
		cfg.Log = log
	}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	exit, err := m.Run(ctx)
	if exit.Reason == vmm.ExitStopped {
		t.Logf("guest stopped by timeout; output so far:\n%s\nlog:\n%s", out.String(), log.String())
	}
	return out.String(), exit, err
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q; output:\n%s", w, out)
		}
	}
}

func wantDebugExit(t *testing.T, e vmm.Exit, err error, code uint32) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if e.Reason != vmm.ExitDebug || e.Code != code {
		t.Fatalf("exit %+v, want debug-exit %d", e, code)
	}
}

func TestDemoGuest(t *testing.T) {
	tests := []struct {
		name, kernel string
		memMiB       int
		want         []string
	}{
		{"physical link", "demo", 64, []string{
			`cmdline: "demo.elf hello  kvm"`, `loader: "smolvmm"`, "eax: 0x2badb002 ok",
			"mem: lower=640 KiB upper=64512 KiB",
			"mmap: base=0x0000000000000000 len=0x00000000000a0000 type=1",
			"mmap: base=0x00000000000a0000 len=0x0000000000060000 type=2",
			"mmap: base=0x0000000000100000 len=0x0000000003f00000 type=1",
			"elf: symbol kmain=", "bss: zero ok", "D=0x80 E=0x00", "uip-polls=0 vrt=1",
			"pci: 00:00.0 1b36:0008 rev 00 class 060000",
			"pci: 00:01.0 1af4:1001 rev 00 class 010000 subsys 1af4:0002 bar0 0000c001 irq 10 pin 1",
			guests.DemoDone}},
		{"virtual link like NetBSD", "demo-virt", 32, []string{
			`cmdline: "demo-virt.elf hello  kvm"`, "upper=31744 KiB", "bss: zero ok", guests.DemoDone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			kernel := guest(t, tt.kernel)
			before := time.Now()
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "hello  kvm",
				MemoryMiB: tt.memMiB, Disks: []blk.Spec{{Path: disk}}}, 30*time.Second)
			after := time.Now()
			wantDebugExit(t, e, err, 0)
			wantLines(t, out, tt.want...)
			if err := rtcWithin(out, before, after); err != nil {
				t.Error(err)
			}
			if strings.Contains(out, "FAIL") {
				t.Errorf("guest reported a failure:\n%s", out)
			}
		})
	}
}

// demoRTC is the demo guest's clock line: the CMOS date and time it read.
var demoRTC = regexp.MustCompile(`(?m)^rtc: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (bcd|binary)\r?$`)

// rtcWithin checks the demo guest's clock line against the host's UTC
// clock around the boot: the CMOS time the guest read must lie between
// before (to the second below) and after. The date alone, taken when the
// test started, failed a boot that crossed midnight UTC.
func rtcWithin(out string, before, after time.Time) error {
	m := demoRTC.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no \"rtc: DATE TIME bcd|binary\" line in the output:\n%s", out)
	}
	got, err := time.Parse(time.DateTime, m[1])
	if err != nil {
		return fmt.Errorf("rtc line %q: %w", m[0], err)
	}
	lo, hi := before.UTC().Truncate(time.Second), after.UTC()
	if got.Before(lo) || got.After(hi) {
		return fmt.Errorf("guest read the CMOS clock as %s, not between %s and %s (UTC)",
			m[1], lo.Format(time.DateTime), hi.Format(time.DateTime))
	}
	return nil
}

// TestRTCWithin checks the clock check itself, across midnight and a
// year's end included.
func TestRTCWithin(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, out, before, after string
		ok                       bool
	}{
		{"same second", "rtc: 2026-12-02 17:00:00 bcd\r\n", "2026-12-02 17:00:00.300", "2026-12-02 17:00:00.900", true},
		{"across midnight", "rtc: 2026-12-03 00:00:00 bcd\r\n", "2026-12-02 23:59:59.700", "2026-12-03 00:00:00.200", true},
		{"read before midnight, boot ends after", "rtc: 2026-12-02 23:59:59 bcd\r\n", "2026-12-02 23:59:59.700", "2026-12-03 00:00:00.200", true},
		{"across a year's end", "rtc: 2027-01-01 00:00:01 binary\r\n", "2026-12-31 23:59:59.000", "2027-01-01 00:00:01.500", true},
		{"a day late", "rtc: 2026-12-03 17:00:00 bcd\r\n", "2026-12-02 17:00:00.300", "2026-12-02 17:00:00.900", false},
		{"a second early", "rtc: 2026-12-02 16:59:59 bcd\r\n", "2026-12-02 17:00:00.300", "2026-12-02 17:00:00.900", false},
		{"no clock line", "rtc: A=0x26 B=0x02\r\n", "2026-12-02 17:00:00.300", "2026-12-02 17:00:00.900", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rtcWithin(tt.out, at(tt.before), at(tt.after))
			if (err == nil) != tt.ok {
				t.Fatalf("rtcWithin = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestEmbeddedDemo boots the guest compiled into the binary (smolvmm demo).
func TestEmbeddedDemo(t *testing.T) {
	out, e, err := boot(t, vmm.Config{Kernel: "demo", KernelImage: guests.Demo}, 30*time.Second)
	wantDebugExit(t, e, err, 0)
	wantLines(t, out, `cmdline: "demo console=com root=ld0a"`, guests.DemoDone)
}

// TestInterrupts: the irq guest takes the interrupt its words ask for
// through the in-kernel 8259.
func TestInterrupts(t *testing.T) {
	tests := []struct {
		words string
		want  []string
	}{
		{"", []string{"irq 4 ok iir=0x"}},
		{"pit", []string{"irq 0 ok"}},
		// COM1's IRQ 4 is edge-triggered: a second THRE interrupt after
		// the first was served and EOIed comes only if the line went low
		// in between (NetBSD's com(4) waits for one edge per event).
		{"twice", []string{"irq 4 first iir=0xc2", "irq 4 ok iir=0xc2"}},
	}
	for _, tt := range tests {
		t.Run("words="+tt.words, func(t *testing.T) {
			out, e, err := boot(t, vmm.Config{Kernel: guest(t, "irq"), Append: tt.words, NoAppend: tt.words == ""}, 30*time.Second)
			wantLines(t, out, tt.want...) // first: the output says why a guest failed
			wantDebugExit(t, e, err, 0)
		})
	}
}

// diskImage writes the vblk guest's test disk in a temporary directory.
func diskImage(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	img, err := guests.WriteVblkDisk(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, img
}

// TestVirtioBlockGuest runs the guest's own virtio-blk driver (checked
// against QEMU's device in package guests) against smolvmm's device and
// checks the image afterwards.
func TestVirtioBlockGuest(t *testing.T) {
	tests := []struct {
		name, words string
		ro          bool
		sector      int // -1: the image must stay unchanged
		seq         uint32
		want        []string
	}{
		{"poll", "seq=5", false, 1, 5, []string{
			"vblk: status 0x7\r\n", "vblk: capacity 2048 sectors (hi 0)\r\n",
			"vblk: sector 0 53 4d 4f 4c 56 4d 4d 2d 53 45 43 54 4f 52 2d 30\r\n",
			"vblk: wrote sector 1 seq=5\r\n", "vblk: flush ok\r\n", "vblk: readback ok\r\n",
			"vblk: serial \"smolvmm-test\"\r\n", "vblk: ok\r\n"}},
		{"indirect", "indirect sector=3 seq=9 oob", false, 3, 9, []string{
			"guest features 0x10000200\r\n", "vblk: wrote sector 3 seq=9\r\n",
			"vblk: readback ok\r\n", "vblk: read beyond end status 1\r\n", "vblk: ok\r\n"}},
		{"interrupt", "irq", false, -1, 0, []string{
			"vblk: irq 10 isr=0x1 used=1 status=0\r\n", "vblk: sector 0 53 4d 4f 4c\r\n", "vblk: irq ok\r\n"}},
		{"read-only", "seq=1", true, -1, 0, []string{
			"vblk: read-only disk, write status 1\r\n", "vblk: ok\r\n"}},
	}
	kernel := guest(t, "vblk")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, img := diskImage(t)
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: tt.words, MemoryMiB: 32,
				Disks: []blk.Spec{{Path: path, Options: blk.Options{ReadOnly: tt.ro, Serial: "smolvmm-test"}}}}, 60*time.Second)
			wantDebugExit(t, e, err, 0)
			wantLines(t, out, tt.want...)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.sector >= 0 {
				copy(img[tt.sector*512:], guests.VblkPattern(tt.seq))
			}
			if !bytes.Equal(got, img) {
				t.Fatalf("image content differs from what the guest wrote")
			}
		})
	}
}

// TestMaliciousGuest submits each kind of malformed request (descriptor
// loops, indices and addresses out of range, wrong directions, indirect
// tables that nest, loop or have bad lengths, an available index that
// jumps, PFN rewrites while live): the VMM must survive, leave the image
// alone, and serve the device again after the guest resets it.
func TestMaliciousGuest(t *testing.T) {
	kernel := guest(t, "vblk")
	kinds := strings.Fields("loop next head addr wrap hdrw dataro statusro zero indloop indnest indlen indnext long jump pfn" +
		" ramend lenwrap ramlast ivt ring availw resetmid")
	// What the device did with the requests that are not refused outright.
	did := map[string][]string{
		// An IN whose data buffer is read-only fails alone (IOERR).
		"dataro":  {"used=1 status=0x01 device-status=0x07"},
		"ramend":  {"used=0 status=0xee device-status=0x47"},
		"lenwrap": {"used=0 status=0xee device-status=0x47"},
		"ramlast": {"used=1 status=0x00 device-status=0x07", "data SMOL"},
		"ivt":     {"used=1 status=0x00 device-status=0x07", "data SMOL"},
		"ring":    {"used=1 status=0x00 device-status=0x07"},
		// Sector 0 lands on the available ring, whose index then reads
		// "OL": the device completes the request, then refuses the ring.
		"availw": {"used=1 status=0x00 device-status=0x47"},
		// Reset (and DRIVER_OK with no queue) right after the notify:
		// the used index the guest then wrote (0xeeee) stays.
		"resetmid": {"used=61166 "},
	}
	// The indirect kinds negotiate VIRTIO_F_INDIRECT_DESC, so that the
	// table's own rule refuses them; "noind" is indloop's chain from a
	// driver that did not: refused for that alone.
	kinds = append(kinds, "noind")
	did["noind"] = []string{"used=0 status=0xee device-status=0x47"}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			evil, words := kind, ""
			switch {
			case kind == "noind":
				evil = "indloop"
			case kind == "long" || strings.HasPrefix(kind, "ind"):
				words = " indirect"
			}
			path, img := diskImage(t)
			log := &guests.Console{}
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "evil=" + evil + words, MemoryMiB: 32,
				Disks: []blk.Spec{{Path: path}}, Log: log}, 60*time.Second)
			wantDebugExit(t, e, err, 0)
			wantLines(t, out, "vblk: evil "+evil+" submitted", "vblk: recovered ok")
			for _, w := range did[kind] {
				wantLines(t, out, "vblk: evil "+evil+": "+w)
			}
			const unagreed = "VIRTIO_F_INDIRECT_DESC was not agreed"
			if got := strings.Contains(log.String(), unagreed); got != (kind == "noind") {
				t.Errorf("log says %q: %v, want %v; log:\n%s", unagreed, got, kind == "noind", log.String())
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, img) {
				t.Fatal("a malformed request changed the image")
			}
		})
	}
}

// TestBARShuffle: the guest moves disk 0's BAR0 onto disk 1's (where it
// cannot decode) and disk 1's to disk 0's old address, then drives disk 1
// there. Its notifications must reach disk 1, not an ioeventfd disk 0 left
// behind, and disk 0's image must stay as it was.
func TestBARShuffle(t *testing.T) {
	kernel := guest(t, "vblk")
	path0, img0 := diskImage(t)
	path1, img1 := diskImage(t)
	var log guests.Console
	out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "disk=1 shuffle seq=4 timeout=5", MemoryMiB: 32,
		Disks: []blk.Spec{{Path: path0}, {Path: path1}}, Log: &log}, 60*time.Second)
	wantDebugExit(t, e, err, 0)
	wantLines(t, out, "vblk: shuffled disk 0 to 0xc040, disk 1 to 0xc000", "vblk: wrote sector 1 seq=4", "vblk: ok")
	if strings.Contains(log.String(), "ioeventfd") {
		t.Errorf("log: %s", log.String())
	}
	copy(img1[512:], guests.VblkPattern(4))
	for i, want := range [][]byte{img0, img1} {
		got, err := os.ReadFile([]string{path0, path1}[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("disk %d: image differs from what the guest wrote", i)
		}
	}
}

// TestHostileGuest runs the hammer guest: random port accesses of every
// width and rep string I/O on every port the machine serves, BARs moved over
// each other and over legacy ports, virtio registers driven out of spec, and
// reads of thousands of unbacked MMIO pages. The VMM must survive with every
// device still answering, the guest's exit code intact, the disk untouched
// and the once-per-address MMIO log bounded.
func TestHostileGuest(t *testing.T) {
	kernel := guest(t, "hammer")
	tests := []struct {
		name, words string
		wantMMIOLog int
	}{
		{"ports", "n=3000", 0},
		{"other seed", "n=3000 seed=7", 0},
		{"mmio sweep", "n=0 mmio=5000", bus.MaxTracked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, img := diskImage(t)
			var log guests.Console
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: tt.words, MemoryMiB: 32, Log: &log,
				Disks: []blk.Spec{{Path: path}}, Devices: []virtio.Device{&closeRecorder{}}}, 60*time.Second)
			wantDebugExit(t, e, err, 0x2A)
			if e.Status() != 0x55 {
				t.Errorf("status %#x, want 0x55", e.Status())
			}
			wantLines(t, out, "hammer: pci abused", "hammer: virtio abused", "hammer: devices answer")
			if n := strings.Count(log.String(), "unhandled MMIO read"); n < tt.wantMMIOLog || n > bus.MaxTracked {
				t.Errorf("%d unhandled MMIO reads logged, want %d to %d", n, tt.wantMMIOLog, bus.MaxTracked)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, img) {
				t.Error("the hostile guest changed the disk image")
			}
		})
	}
}

func TestDiskLockedByOtherVM(t *testing.T) {
	needKVM(t)
	path, _ := diskImage(t)
	cfg := vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Disks: []blk.Spec{{Path: path}}}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := vmm.New(cfg); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("second VM on the same image: err = %v, want an error naming the image", err)
	}
}

func TestGuestEndings(t *testing.T) {
	kernel := guest(t, "bad")
	// NetBSD's cpu_reset triple-faults when its reset ports did nothing,
	// after printing: KVM_EXIT_SHUTDOWN after console output is a reboot
	// request, ended as a port-0x64 reset is, always said in one log
	// line, with the registers under Verbose.
	t.Run("triple fault", func(t *testing.T) {
		var log guests.Console
		out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "triplefault", Verbose: true, Log: &log}, 30*time.Second)
		if err != nil || e.Reason != vmm.ExitReset || e.Status() != 0 {
			t.Fatalf("exit %+v err %v, want reset with status 0", e, err)
		}
		wantLines(t, out, "bad: triple fault")
		if l := log.String(); !strings.Contains(l, "triple-faulted") || !strings.Contains(l, "EIP=") {
			t.Errorf("verbose log does not name the triple fault with the registers:\n%s", l)
		}
	})
	t.Run("triple fault, quiet", func(t *testing.T) {
		var log guests.Console
		_, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "triplefault-gp", Log: &log}, 30*time.Second)
		if err != nil || e.Reason != vmm.ExitReset {
			t.Fatalf("exit %+v err %v, want reset", e, err)
		}
		l := log.String()
		if strings.Contains(l, "EIP=") {
			t.Errorf("registers logged without Verbose:\n%s", l)
		}
		if n := strings.Count(l, "triple-faulted"); n != 1 || strings.Count(l, "\n") != 1 || !strings.Contains(l, "taken as a reset") {
			t.Errorf("log %q, want one line saying the triple fault was taken as a reset", l)
		}
	})
	// Before any console output a triple fault is a guest that died
	// booting (this host's KVM cannot run paged 32-bit code: NetBSD's
	// locore dies so): a crash naming it and the registers, never a
	// clean end. It ended as a reset, status 0, before.
	// The guest that turns paging on dies on its move to CR0 on this
	// machine's KVM, which cannot run paged 32-bit code (as NetBSD's
	// locore does here), or at its ud2 with paging on on one that can.
	for _, tc := range []struct {
		words  string
		paging bool // turning paging on, or on
	}{
		{"triplefault-silent", false},
		{"triplefault-paging", true},
	} {
		t.Run(tc.words, func(t *testing.T) {
			var log guests.Console
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: tc.words, Log: &log}, 30*time.Second)
			var tf *vmm.TripleFaultError
			if !errors.As(err, &tf) || !errors.Is(err, vmm.ErrGuestCrash) || e.Reason != 0 {
				t.Fatalf("exit %+v err %v, want a TripleFaultError (a crash)", e, err)
			}
			if len(out) != 0 {
				t.Errorf("guest output %q, want none", out)
			}
			msg := err.Error()
			for _, w := range []string{"triple fault", "before any console output", "EIP=0x", "CR0=0x", "CR3=0x", "CR4=0x", "EFER=0x"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			turning := tf.SettingPaging && !tf.Paging()
			on := tf.Paging() && tf.CR0 == 0x80010033 && !tf.SettingPaging
			none := !tf.Paging() && !tf.SettingPaging
			if tc.paging && !turning && !on || !tc.paging && !none || tf.LongMode() ||
				tf.EIP < 0x100000 || tf.EIP >= 0x200000 || !strings.Contains(tf.Regs, "EIP=") {
				t.Errorf("%+v: want paging on or being turned on %t, not long mode, EIP in the guest's image, the full registers",
					tf, tc.paging)
			}
			t.Logf("%v (setting paging %t)", err, tf.SettingPaging)
		})
	}
	t.Run("fault through an empty IDT", func(t *testing.T) {
		out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "triplefault-int3"}, 30*time.Second)
		// Hardware KVM reports the triple fault as KVM_EXIT_SHUTDOWN, a
		// reset; the nested, emulating KVM of the CI machines fails to
		// emulate the faulting delivery instead, a crash with the
		// registers. Never a hang.
		var crash *vmm.CrashError
		switch {
		case err == nil && e.Reason == vmm.ExitReset:
			t.Log("reported as a triple fault (reset)")
		case errors.As(err, &crash) && strings.Contains(crash.Reason, "internal error") && strings.Contains(crash.Regs, "EIP="):
			t.Logf("reported as: %s", crash.Reason)
		default:
			t.Fatalf("exit %+v err %v, want a reset or an internal-error CrashError", e, err)
		}
		wantLines(t, out, "bad: triple fault")
	})
	t.Run("unmapped MMIO", func(t *testing.T) {
		var log guests.Console
		out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "mmio", Log: &log}, 30*time.Second)
		wantDebugExit(t, e, err, 0)
		wantLines(t, out, "bad: mmio 0xfed40000 read 0xffffffff, wrote", "bad: mmio survived")
		if n := strings.Count(log.String(), "unhandled MMIO read at 0xfed40000"); n != 1 {
			t.Errorf("the unmapped read was logged %d times, want once:\n%s", n, log.String())
		}
	})
	// NetBSD's pcdisplay and vga probes write a word to the VGA windows and
	// read it back: RAM there made the kernel attach a display that does
	// not exist. Nothing is there, as on a machine without VGA, while the
	// real-mode IVT below and the firmware stub above stay RAM.
	// The probe is expected at every NetBSD boot: its accesses (a word
	// at 0xb0000 and 0xb8000) are logged only when verbose, named as the
	// probe; the guest's others (0xa0000, 0xbfffe) are said once, verbose
	// or not, as a guest writing to a display there is not.
	for _, verbose := range []bool{false, true} {
		t.Run(fmt.Sprintf("no display, verbose %t", verbose), func(t *testing.T) {
			var log guests.Console
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "vga", Verbose: verbose, Log: &log}, 30*time.Second)
			wantDebugExit(t, e, err, 0)
			wantLines(t, out,
				"bad: vga 0xa0000 wrote 0xa55a read 0xffff",
				"bad: vga 0xb0000 wrote 0xa55a read 0xffff",
				"bad: vga 0xb8000 wrote 0xa55a read 0xffff",
				"bad: vga 0xbfffe wrote 0xa55a read 0xffff",
				"bad: vga ivt[0x15]=0xf000ff53 stub=0xcf")
			n := strings.Count(log.String(), "unhandled MMIO")
			vga := strings.Count(log.String(), "(2 bytes): the VGA window, with no display behind it (a display probe)")
			note := strings.Count(log.String(), "the guest writes VGA memory at 0xa0000 (2 bytes): the machine has no display")
			switch {
			case note != 1:
				t.Errorf("the write at 0xa0000 was said %d times, want once:\n%s", note, log.String())
			case !verbose && n != 0:
				t.Errorf("the display probe logged %d unhandled MMIO accesses without Verbose:\n%s", n, log.String())
			case verbose && (n != 8 || vga != 4):
				t.Errorf("the display probe logged %d unhandled MMIO accesses, %d named as the probe; want 8 (a write and a read at 4 addresses), 4 at 0xb0000 and 0xb8000:\n%s", n, vga, log.String())
			}
		})
	}
	t.Run("reset", func(t *testing.T) {
		out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "reset"}, 30*time.Second)
		if err != nil || e.Reason != vmm.ExitReset || e.Status() != 0 {
			t.Fatalf("exit %+v err %v, want reset with status 0", e, err)
		}
		wantLines(t, out, "bad: reset through port 0x64")
	})
	t.Run("NetBSD halt", func(t *testing.T) {
		out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: "halt"}, 30*time.Second)
		if err != nil || e.Reason != vmm.ExitHalted || e.Status() != 0 {
			t.Fatalf("exit %+v err %v, want halted with status 0", e, err)
		}
		wantLines(t, out, guests.HaltMessage[:40])
	})
}

// spinner is a multiboot kernel using the a.out kludge: a header with load
// addresses and a `jmp .` at its entry. It never exits on its own.
func spinner() []byte {
	b := make([]byte, 48)
	var magic, flags uint32 = 0x1BADB002, 0x00010003
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], flags)
	le.PutUint32(b[8:], -(magic + flags))
	le.PutUint32(b[12:], 0x100000) // header_addr
	le.PutUint32(b[16:], 0x100000) // load_addr
	le.PutUint32(b[20:], 0)        // load_end_addr: whole file
	le.PutUint32(b[24:], 0x101000) // bss_end_addr
	le.PutUint32(b[28:], 0x100020) // entry_addr
	b[32], b[33] = 0xEB, 0xFE      // jmp .
	return b
}

func TestStopByContext(t *testing.T) {
	start := time.Now()
	_, e, err := boot(t, vmm.Config{Kernel: "spin", KernelImage: spinner()}, 300*time.Millisecond)
	if err != nil || e.Reason != vmm.ExitStopped || e.Status() != 130 {
		t.Fatalf("exit %+v err %v, want stopped", e, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopping took %v", d)
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notakernel")
	os.WriteFile(notKernel, bytes.Repeat([]byte("not a kernel "), 1000), 0o644)
	// Inputs that used to block (a FIFO waits for a writer) or fill
	// memory (/dev/zero, a sparse GiB read whole) before any check.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	if f, err := os.Create(sparse); err != nil {
		t.Fatal(err)
	} else if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	// One disk more than the PCI bus has slots for (the host bridge has
	// one): refused before any is opened, where the bus refused the last
	// once the others were open.
	var disks []blk.Spec
	for i := range vmm.MaxVirtioDevices + 1 {
		p := filepath.Join(dir, fmt.Sprintf("d%d.img", i))
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, blk.Spec{Path: p})
	}
	tests := []struct {
		name    string
		cfg     vmm.Config
		is      error
		wantMsg string
		kvm     bool
	}{
		{"no kernel", vmm.Config{}, vmm.ErrConfig, "set Config.Kernel", false},
		{"a disk past the PCI slots", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Disks: disks}, vmm.ErrConfig,
			"devices: 32 disks and 0 other devices: the PCI bus holds 31 (32 slots, one the host bridge's): invalid configuration", false},
		{"disks and a device past the PCI slots", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Disks: disks[:31], Devices: []virtio.Device{&closeRecorder{}}}, vmm.ErrConfig,
			"devices: 31 disks and 1 other devices: the PCI bus holds 31", false},
		{"missing kernel", vmm.Config{Kernel: filepath.Join(dir, "nope")}, os.ErrNotExist, "check the path", false},
		{"FIFO kernel", vmm.Config{Kernel: fifo}, regfile.ErrNotRegular, "is a FIFO: not a regular file", false},
		{"device kernel", vmm.Config{Kernel: "/dev/zero"}, regfile.ErrNotRegular, "is a character device", false},
		{"sparse GiB kernel", vmm.Config{Kernel: sparse}, regfile.ErrTooLarge, "is 1024 MiB, more than the 512 MiB allowed", false},
		{"memory too small", vmm.Config{Kernel: notKernel, MemoryMiB: 1}, vmm.ErrConfig, "use between 3 and 3072 MiB", false},
		// No kernel fits: 1 MiB of low memory, the kernel, 1 MiB above it.
		{"memory 2 MiB", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 2}, vmm.ErrConfig, "2 MiB: invalid configuration (use between 3 and 3072 MiB)", false},
		{"memory too big", vmm.Config{Kernel: notKernel, MemoryMiB: 4096}, vmm.ErrConfig, "use between 3 and 3072 MiB", false},
		{"no KVM device", vmm.Config{Kernel: notKernel, KVMPath: filepath.Join(dir, "kvm")}, vmm.ErrNoKVM, "no KVM", false},
		{"not multiboot", vmm.Config{Kernel: notKernel}, multiboot.ErrNotMultiboot, "multiboot v1 kernel", true},
		// 17 MiB hold the 16 MiB image; 1 MiB more stays free for NetBSD's
		// bootstrap page tables.
		{"kernel larger than memory", vmm.Config{Kernel: "big", KernelImage: bigKernel(), MemoryMiB: 8},
			multiboot.ErrTooLarge, "needs 18 MiB of guest memory, have 8 MiB (set MemoryMiB to 18 or more)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm {
				needKVM(t)
			}
			fds, before := openFDs(t), goroutines()
			m, err := vmm.New(tt.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v; want errors.Is %v and %q in it", err, tt.is, tt.wantMsg)
			}
			// Nothing left: the VM's file descriptors, no goroutine.
			if leaked := leakedFDs(t, fds); len(leaked) > 0 {
				t.Errorf("file descriptors left open after the refusal: %v", leaked)
			}
			noGoroutinesLeft(t, before)
		})
	}
}

// bigKernel is an a.out-kludge kernel whose BSS ends at 16 MiB + 4 KiB.
func bigKernel() []byte {
	b := spinner()
	binary.LittleEndian.PutUint32(b[24:], 0x1001000)
	return b
}

// timerGuest writes the boot-timer port, then leaves with debug-exit 0.
func timerGuest() []byte {
	b := spinner()
	copy(b[32:], []byte{
		0x66, 0xBA, 0x05, 0x05, // mov dx, 0x505
		0xEE,                   // out dx, al
		0x66, 0xBA, 0x01, 0x05, // mov dx, 0x501
		0xB0, 0x00, // mov al, 0
		0xEE,       // out dx, al
		0xEB, 0xFE, // jmp .
	})
	return b
}

// TestISAPortWidths: the boot-timer port takes a write of any width, and
// the debug-exit port any write that starts in it, even one running past
// its end, as QEMU's isa-debug-exit does (guests written for QEMU use it).
// A 32-bit write to 0x505 was dropped as unclaimed before, and the guest
// was never ready; so was an outl at 0x502. A guest whose write is ignored
// goes on to leave with code 0x55.
func TestISAPortWidths(t *testing.T) {
	const (
		outb = 0xEE                   // out dx, al
		outw = 0xEF66                 // out dx, ax (little-endian: 66 EF)
		outl = 0xEF                   // out dx, eax
		eax7 = "\xB8\x07\x00\x00\x00" // mov eax, 7
	)
	out := func(port uint16, op int) []byte {
		b := []byte(eax7)
		b = append(b, 0x66, 0xBA, byte(port), byte(port>>8)) // mov dx, port
		if op > 0xFF {
			return append(b, byte(op), byte(op>>8))
		}
		return append(b, byte(op))
	}
	tests := []struct {
		name  string
		code  []byte
		ready bool
		exit  uint32
	}{
		{"boot timer outb", out(vmm.PortBootTimer, outb), true, 0x55},
		{"boot timer outw", out(vmm.PortBootTimer, outw), true, 0x55},
		{"boot timer outl", out(vmm.PortBootTimer, outl), true, 0x55},
		{"debug-exit outb", out(vmm.PortDebugExit, outb), false, 7},
		{"debug-exit outl", out(vmm.PortDebugExit, outl), false, 7},
		{"debug-exit outw at its second port", out(vmm.PortDebugExit+1, outw), false, 7},
		{"debug-exit outl at its second port", out(vmm.PortDebugExit+1, outl), false, 7},
		{"debug-exit outl at its last port", out(vmm.PortDebugExit+3, outl), false, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := false
			code := append(tt.code,
				0x66, 0xBA, 0x01, 0x05, // mov dx, 0x501
				0xB0, 0x55, // mov al, 0x55
				0xEE, // out dx, al
			)
			_, e, err := boot(t, vmm.Config{Kernel: "ports", KernelImage: codeGuest(code...), OnEvent: func(e vmm.Event) {
				if e.Phase == vmm.PhaseReady {
					ready = true
				}
			}}, 10*time.Second)
			wantDebugExit(t, e, err, tt.exit)
			if ready != tt.ready {
				t.Errorf("ready %v, want %v", ready, tt.ready)
			}
		})
	}
}

// TestReadyAddr: a guest that never prints, behind a host port that
// answers once the guest runs; ReadyAddr reports PhaseReady after the first
// run, and the test stops the guest there. A host name (localhost) is
// looked up once, by New, and never while Run runs: there the lookup ran
// under BeforeRun's sandbox, which stopped the process, and on goroutines
// that outlived Run. An empty host (":PORT") is the local system, with no
// lookup.
func TestReadyAddr(t *testing.T) {
	needKVM(t)
	_, port, _ := net.SplitHostPort(portreadytest.Greeter(t, "SSH-2.0-guest\r\n"))
	for _, host := range []string{"127.0.0.1", "localhost", ""} {
		name := host
		if host == "" {
			name = "empty host" // ":PORT", the local system, not looked up
		}
		t.Run(name, func(t *testing.T) { testReadyAddr(t, net.JoinHostPort(host, port)) })
	}
}

func testReadyAddr(t *testing.T, addr string) {
	lookups := countLookups(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var phases []vmm.Phase
	var times []time.Time
	m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), ReadyAddr: addr,
		OnEvent: func(e vmm.Event) {
			phases, times = append(phases, e.Phase), append(times, e.Time)
			if e.Phase == vmm.PhaseReady {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exit, err := m.Run(ctx)
	if err != nil || exit.Reason != vmm.ExitStopped {
		t.Fatalf("Run = %v, %v; want stopped at ready", exit, err)
	}
	want := []vmm.Phase{vmm.PhaseVMCreated, vmm.PhaseDevicesCreated, vmm.PhaseKernelLoaded, vmm.PhaseFirstRun, vmm.PhaseReady, vmm.PhaseExit}
	if fmt.Sprint(phases) != fmt.Sprint(want) {
		t.Fatalf("phases %v, want %v", phases, want)
	}
	for i := 1; i < len(times); i++ {
		if times[i].Before(times[i-1]) {
			t.Errorf("%s at %v is before %s at %v", phases[i], times[i], phases[i-1], times[i-1])
		}
	}
	wantLookups := int32(0)
	if host, _, _ := net.SplitHostPort(addr); host == "localhost" {
		wantLookups = 1 // New's
	}
	if n := lookups.Load(); n != wantLookups {
		t.Errorf("%s looked up %d times, want %d", addr, n, wantLookups)
	}
}

// chattyGuest writes 'x' to COM1 forever, without looking at LSR.
func chattyGuest() []byte {
	b := spinner()
	copy(b[32:], []byte{
		0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xB0, 'x', // mov al, 'x'
		0xEE,       // out dx, al
		0xEB, 0xFD, // jmp back to the out
	})
	return b
}

// blockedConsole takes a few bytes, then blocks like a pipe nobody reads.
type blockedConsole struct {
	mu      sync.Mutex
	n       int
	release chan struct{}
}

func (c *blockedConsole) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += len(p)
	c.mu.Unlock()
	<-c.release
	return len(p), nil
}

// TestStopWithStalledConsole: a console that stopped reading holds the
// guest's output; stopping the VM must still end Run and Close promptly.
// A guest that floods it fills the buffer and then waits in the UART. (It
// once slept a second before stopping, while filling the 64 KiB took ~5 s
// here: the vCPU was never waiting.) A guest that printed and ended leaves
// Run waiting for its output to be written out; Run's context ending must
// end that wait too. (Run dropped the context's stop as soon as the guest
// ended, and then waited for the console with no limit.)
func TestStopWithStalledConsole(t *testing.T) {
	tests := []struct {
		name   string
		kernel []byte
		// frame is where Run is held when the context ends: the vCPU
		// waiting for room in the buffer, or Run waiting for the
		// console to take what the ended guest printed.
		frame string
		// want: how Run says the guest ended; one that ended on its
		// own keeps its end.
		want vmm.ExitReason
	}{
		{"guest waits for room", chattyGuest(), "vmm.(*consoleWriter).Write(", vmm.ExitStopped},
		{"guest ended, output unwritten", guests.Demo, "vmm.(*consoleWriter).Finish(", vmm.ExitDebug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			con := &blockedConsole{release: make(chan struct{})}
			defer close(con.release)
			// Each byte is a KVM exit: 64 KiB take seconds here.
			defer vmm.SetConsoleBuffer(4 << 10)()
			m, err := vmm.New(vmm.Config{Kernel: "guest", KernelImage: tt.kernel, Console: con})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				e, err := m.Run(ctx)
				m.Close()
				if err == nil && e.Reason != tt.want {
					err = fmt.Errorf("Run = %+v, want %v", e, tt.want)
				}
				done <- err
			}()
			if !waitForStack(10*time.Second, "[sync.Cond.Wait", tt.frame) {
				cancel()
				t.Fatalf("Run never waited in %s", tt.frame)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run or Close did not return after the context ended: stuck on the console")
			}
		})
	}
}

// slowConsole takes 20 ms per Write (slow, not stalled), counts the
// bytes of the Writes that start once returned is set, and notes the
// goroutine that writes (the machine's console writer); first is closed
// at the first Write.
type slowConsole struct {
	returned atomic.Bool
	after    atomic.Int64
	writer   atomic.Value // the id of the goroutine of the first Write, as a stack dump names it
	first    chan struct{}
}

func (c *slowConsole) Write(p []byte) (int, error) {
	if c.returned.Load() {
		c.after.Add(int64(len(p)))
	}
	if c.writer.Load() == nil {
		buf := make([]byte, 64)
		id, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:runtime.Stack(buf, false)]), "goroutine "), " ")
		c.writer.Store(id)
		close(c.first)
	}
	time.Sleep(20 * time.Millisecond)
	return len(p), nil
}

// TestNoConsoleWriteAfterRun: a guest flooding a slow console is stopped,
// by its context or by Close; once Run has returned the console gets no
// more Writes. (Run's flush returned at once for a stopped machine, and
// the console went on being written from the queue: 318 bytes after Run
// returned, in one run.)
func TestNoConsoleWriteAfterRun(t *testing.T) {
	tests := []struct {
		name  string
		close bool // stopped by Close, else by the context
	}{
		{"context ends", false},
		{"Close", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			con := &slowConsole{first: make(chan struct{})}
			m, err := vmm.New(vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Console: con})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := cancel
			if tt.close {
				stop = func() { go m.Close() }
			}
			// Stopped 200 ms into the flood, the console's first Write
			// (more queued behind it) its start: counted from Run's
			// start, a loaded machine's guest had not printed yet
			// ("the guest wrote nothing").
			go func() {
				select {
				case <-con.first:
					time.Sleep(200 * time.Millisecond)
				case <-time.After(20 * time.Second):
				}
				stop()
			}()
			e, err := m.Run(ctx)
			con.returned.Store(true)
			if err != nil || e.Reason != vmm.ExitStopped {
				t.Fatalf("Run = %+v, %v; want stopped", e, err)
			}
			// Once the goroutine that writes the console has returned
			// (Close ends it) no Write can start: what was counted by
			// then is all there is.
			m.Close()
			id, _ := con.writer.Load().(string)
			if id == "" {
				t.Fatal("the guest wrote nothing to the console")
			}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				if _, live := goroutines()[id]; !live {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the console's writer goroutine did not return after Close")
				}
			}
			if n := con.after.Load(); n > 0 {
				t.Errorf("%d bytes written to Config.Console after Run returned", n)
			}
		})
	}
}

// waitForStack waits, at most d, for a goroutine in state (the bracketed
// status of a stack dump, such as "[sync.Cond.Wait") with frame in its
// stack, and reports whether one was seen.
func waitForStack(d time.Duration, state, frame string) bool {
	deadline := time.Now().Add(d)
	for {
		for _, g := range goroutines() {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, " "+state) && strings.Contains(g, frame) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEvents(t *testing.T) {
	tests := []struct {
		name          string
		cfg           vmm.Config
		prints, ready bool
	}{
		{"boot-timer port", vmm.Config{Kernel: "timer", KernelImage: timerGuest()}, false, true},
		{"ready pattern", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Ready: regexp.MustCompile(`^smolvmm-demo: d.ne`)}, true, true},
		{"no ready", vmm.Config{Kernel: "demo", KernelImage: guests.Demo}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var phases []vmm.Phase
			var last time.Time
			tt.cfg.OnEvent = func(e vmm.Event) {
				if e.Time.Before(last) {
					t.Errorf("%s at %v is before the previous phase", e.Phase, e.Time)
				}
				last = e.Time
				phases = append(phases, e.Phase)
			}
			_, e, err := boot(t, tt.cfg, 30*time.Second)
			wantDebugExit(t, e, err, 0)
			want := []vmm.Phase{vmm.PhaseVMCreated, vmm.PhaseDevicesCreated, vmm.PhaseKernelLoaded, vmm.PhaseFirstRun}
			if tt.prints {
				want = append(want, vmm.PhaseFirstOutput)
			}
			if tt.ready {
				want = append(want, vmm.PhaseReady)
			}
			want = append(want, vmm.PhaseExit)
			if fmt.Sprint(phases) != fmt.Sprint(want) {
				t.Fatalf("phases %v, want %v", phases, want)
			}
		})
	}
}

// closeRecorder is a minimal virtio device that records being closed.
type closeRecorder struct{ closed int }

func (d *closeRecorder) Type() uint16                     { return 0x1F }
func (d *closeRecorder) Features() uint32                 { return 0 }
func (d *closeRecorder) QueueSizes() []uint16             { return []uint16{8} }
func (d *closeRecorder) ConfigSize() int                  { return 0 }
func (d *closeRecorder) ReadConfig(int, []byte)           {}
func (d *closeRecorder) WriteConfig(int, []byte)          {}
func (d *closeRecorder) Activate(uint32)                  {}
func (d *closeRecorder) Process(int, *virtio.Queue) error { return nil }
func (d *closeRecorder) Reset()                           {}
func (d *closeRecorder) Close() error                     { d.closed++; return nil }

// TestDevicesOwned checks that the machine closes the devices it was given
// exactly once, whether New fails before or after plugging them in.
func TestDevicesOwned(t *testing.T) {
	tests := []struct {
		name string
		cfg  vmm.Config
		kvm  bool
	}{
		{"New fails before KVM", vmm.Config{MemoryMiB: 1}, false},
		{"New fails at the kernel", vmm.Config{Kernel: "x", KernelImage: []byte("no kernel")}, true},
		{"Close after a run", vmm.Config{Kernel: "demo", KernelImage: guests.Demo}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm {
				needKVM(t)
			}
			dev := &closeRecorder{}
			tt.cfg.Devices = []virtio.Device{dev}
			m, err := vmm.New(tt.cfg)
			if err == nil {
				if _, err := m.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				m.Close()
				m.Close()
			}
			if dev.closed != 1 {
				t.Fatalf("device closed %d times, want once", dev.closed)
			}
		})
	}
}

// TestGzippedKernel boots the demo guest gzipped, as NetBSD ships kernels,
// and refuses a corrupt gzip file with a clear error.
func TestGzippedKernel(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(guests.Demo)
	zw.Close()
	out, e, err := boot(t, vmm.Config{Kernel: "demo.gz", KernelImage: z.Bytes()}, 30*time.Second)
	wantDebugExit(t, e, err, 0)
	wantLines(t, out, guests.DemoDone)

	bad := append([]byte(nil), z.Bytes()[:z.Len()/2]...)
	if _, err := vmm.New(vmm.Config{Kernel: "bad.gz", KernelImage: bad}); err == nil || !strings.Contains(err.Error(), "decompress kernel") {
		t.Fatalf("truncated gzip kernel: err = %v", err)
	}
}

// TestVerbosePortLogOnce: with Verbose, an unclaimed port is logged once
// per direction however often the guest polls it; the bus counts them all.
func TestVerbosePortLogOnce(t *testing.T) {
	needKVM(t)
	// Longer than spinner's 16 bytes of code: the file is loaded whole.
	b := append(spinner()[:32], []byte{
		0xE4, 0x80, // in al, 0x80
		0xE4, 0x80, // in al, 0x80
		0xE4, 0x80, // in al, 0x80
		0xE6, 0x80, // out 0x80, al
		0xE6, 0x80, // out 0x80, al
		0x66, 0xBA, 0x01, 0x05, // mov dx, 0x501
		0xB0, 0x00, // mov al, 0
		0xEE,       // out dx, al
		0xEB, 0xFE, // jmp .
	}...)
	var log guests.Console
	m, err := vmm.New(vmm.Config{Kernel: "poller", KernelImage: b, Verbose: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e, err := m.Run(context.Background())
	wantDebugExit(t, e, err, 0)
	if r, w := strings.Count(log.String(), "unhandled port read 0x80"), strings.Count(log.String(), "unhandled port write 0x80"); r != 1 || w != 1 {
		t.Errorf("port 0x80 logged %d reads and %d writes, want 1 each:\n%s", r, w, log.String())
	}
	if pio, _ := m.Unhandled(); pio.Reads[0x80] != 3 || pio.Writes[0x80] != 2 {
		t.Errorf("counted %d reads and %d writes of 0x80, want 3 and 2", pio.Reads[0x80], pio.Writes[0x80])
	}
}

// TestSpeakerPortInKernel checks that port 0x61 (PIT channel 2 gate and
// speaker) is answered by KVM's PIT, not left to read as all ones.
func TestSpeakerPortInKernel(t *testing.T) {
	needKVM(t)
	b := spinner()
	copy(b[32:], []byte{
		0xE4, 0x61, // in al, 0x61
		0xE4, 0x80, // in al, 0x80 (unclaimed: a control for the count)
		0x66, 0xBA, 0x01, 0x05, // mov dx, 0x501
		0xB0, 0x00, // mov al, 0
		0xEE,       // out dx, al
		0xEB, 0xFE, // jmp .
	})
	m, err := vmm.New(vmm.Config{Kernel: "speaker", KernelImage: b})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e, err := m.Run(context.Background())
	wantDebugExit(t, e, err, 0)
	pio, _ := m.Unhandled()
	if pio.Reads[0x61] != 0 || pio.Reads[0x80] != 1 {
		t.Fatalf("unhandled reads: 0x61 %d times (want 0), 0x80 %d times (want 1)", pio.Reads[0x61], pio.Reads[0x80])
	}
}

// TestExitReasonString: every reason has a name, the zero one (the Exit
// Run returns with its error, after Close for one) too: it printed as
// ExitReason(0).
func TestExitReasonString(t *testing.T) {
	for _, tt := range []struct {
		r    vmm.ExitReason
		want string
	}{
		{0, "none"},
		{vmm.ExitReset, "reset"},
		{vmm.ExitDebug, "debug-exit"},
		{vmm.ExitHalted, "halted"},
		{vmm.ExitShutdown, "shutdown"},
		{vmm.ExitStopped, "stopped"},
		{vmm.ExitSnapshot, "snapshot"},
		{99, "ExitReason(99)"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("ExitReason(%d).String() = %q, want %q", int(tt.r), got, tt.want)
		}
	}
	if got := fmt.Sprint(vmm.Exit{}); !strings.Contains(got, "none") {
		t.Errorf("Exit{} prints as %q, want its reason named none", got)
	}
}
