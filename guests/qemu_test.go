package guests

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// These tests run every guest under QEMU's software emulation: the reference
// that proves the guests themselves are right, so the KVM-side tests of
// smolvmm can trust them.

type qemuOpts struct {
	append string
	extra  []string
	// reply is written to the guest's COM1 once the output contains trigger,
	// and then, if set, is started in its own goroutine (the caller waits
	// for it).
	trigger, reply string
	then           func()
	// kvm adds -enable-kvm (QEMU's default CPU model: -cpu host aborts here).
	kvm bool
	// system is the QEMU binary (default qemu-system-i386).
	system string
	// memMiB is the RAM size (default 64).
	memMiB int
	// boot replaces "-kernel kernel -append append" (e.g. HandoffQEMUArgs).
	boot []string
}

// runQEMU boots kernel under qemu-system-i386 (TCG) and returns the COM1
// output with "\r\n" kept and the QEMU exit status.
func runQEMU(t *testing.T, kernel string, o qemuOpts) (string, int) {
	t.Helper()
	system, mem := o.system, o.memMiB
	if system == "" {
		system = "qemu-system-i386"
	}
	if mem == 0 {
		mem = 64
	}
	qemu, err := exec.LookPath(system)
	if err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-x86)", system)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"-M", "pc", "-m", strconv.Itoa(mem), "-display", "none", "-monitor", "none",
		"-no-reboot", "-serial", "stdio", "-nodefaults",
		"-device", "isa-debug-exit,iobase=0x501,iosize=2"}
	if o.boot != nil {
		args = append(args, o.boot...)
	} else {
		args = append(args, "-kernel", kernel, "-append", o.append)
	}
	if o.kvm {
		args = append(args, "-enable-kvm")
	}
	cmd := exec.CommandContext(ctx, qemu, append(args, o.extra...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		replied := o.trigger == ""
		for {
			n, err := stdout.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			hit := !replied && bytes.Contains(out.Bytes(), []byte(o.trigger))
			mu.Unlock()
			if hit {
				replied = true
				io.WriteString(stdin, o.reply)
				if o.then != nil {
					go o.then()
				}
			}
			if err != nil {
				return
			}
		}
	}()
	<-done
	err = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		t.Fatalf("qemu timed out; output so far:\n%s", out.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	default:
		t.Fatalf("qemu: %v\n%s", err, stderr.String())
	}
	return "", -1
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

func TestQEMUDemo(t *testing.T) {
	for _, name := range []string{"demo", "demo-virt"} {
		t.Run(name, func(t *testing.T) {
			kernel := build(t, name)
			mod := filepath.Join(t.TempDir(), "mod.bin")
			if err := os.WriteFile(mod, []byte("module bytes"), 0o644); err != nil {
				t.Fatal(err)
			}
			// QEMU passes -initrd files as multiboot modules, string = "file args".
			before := time.Now().UTC().Year()
			out, status := runQEMU(t, kernel, qemuOpts{append: "hello=world -z",
				extra: []string{"-initrd", mod + " modarg=1"}})
			if status != 1 {
				t.Errorf("exit status %d, want 1 (debug-exit value 0)", status)
			}
			// The year the guest read lies between the host's before and
			// after the boot (which may cross a New Year).
			if after := time.Now().UTC().Year(); !strings.Contains(out, fmt.Sprintf("rtc: %d-", before)) &&
				!strings.Contains(out, fmt.Sprintf("rtc: %d-", after)) {
				t.Errorf("the guest's RTC year is neither %d nor %d:\n%s", before, after, out)
			}
			wantLines(t, out,
				"smolvmm-demo: hello\r\n",
				"eax: 0x2badb002 ok\r\n",
				fmt.Sprintf("cmdline: \"%s hello=world -z\"\r\n", kernel),
				"loader: \"qemu\"\r\n",
				"mods: count=1\r\n",
				fmt.Sprintf("string=\"%s modarg=1\"\r\n", mod),
				"mmap: base=0x0000000000100000 len=0x",
				"bss: zero ok\r\n",
				"rtc: A=0x26 B=0x02 D=0x80 E=0x00",
				"pci: 00:00.0 8086:1237 rev 02 class 060000",
				DemoDone+"\r\n",
			)
			m := regexp.MustCompile(`kmain=0x([0-9a-f]+) linked=0x([0-9a-f]+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no kmain line in:\n%s", out)
			}
			run, _ := strconv.ParseUint(m[1], 16, 32)
			linked, _ := strconv.ParseUint(m[2], 16, 32)
			if sym := symbol(t, kernel, "kmain"); sym != linked {
				t.Errorf("guest says kmain linked at %#x, ELF symbol says %#x", linked, sym)
			}
			off := uint64(0)
			if name == "demo-virt" {
				off = 0xc0000000
			}
			if linked-run != off || run < 0x100000 || run >= 0x200000 {
				t.Errorf("kmain runs at %#x, linked at %#x: want physical %#x below", run, linked, off)
			}
		})
	}
}

func symbol(t *testing.T, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s: no symbol %s", path, name)
	return 0
}

func TestQEMUIRQ(t *testing.T) {
	tests := []struct{ words, want string }{
		{"uart", "irq 4 ok iir=0xc2\r\n"},
		{"pit", "irq 0 ok\r\n"},
	}
	kernel := build(t, "irq")
	for _, tc := range tests {
		t.Run(tc.words, func(t *testing.T) {
			out, status := runQEMU(t, kernel, qemuOpts{append: tc.words})
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			wantLines(t, out, tc.want)
		})
	}
}

// diskImage writes the vblk guest's test disk in a temporary directory.
func diskImage(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	img, err := WriteVblkDisk(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, img
}

func TestQEMUVblk(t *testing.T) {
	tests := []struct {
		name, words, driveOpts string
		sector                 int // -1: the image must stay unchanged
		seq                    uint32
		want                   []string
	}{
		{"poll", "seq=5", "", 1, 5, []string{
			"vblk: found 00:", "vblk: status 0x7\r\n", "vblk: capacity 2048 sectors (hi 0)\r\n",
			"vblk: wrote sector 1 seq=5\r\n", "vblk: flush ok\r\n", "vblk: readback ok\r\n",
			"vblk: serial \"smolvmm-test\"\r\n", "vblk: ok\r\n"}},
		{"indirect", "indirect sector=3 seq=9 oob", "", 3, 9, []string{
			"guest features 0x10000200\r\n", "vblk: wrote sector 3 seq=9\r\n",
			"vblk: readback ok\r\n", "vblk: read beyond end status 1\r\n", "vblk: ok\r\n"}},
		{"irq", "irq", "", -1, 0, []string{
			"isr=0x1 used=1 status=0\r\n", "vblk: sector 0 53 4d 4f 4c\r\n",
			"vblk: irq ok\r\n"}},
		{"second disk", "disk=1 seq=2", "", 1, 2, []string{
			"vblk: serial \"second\"\r\n", "vblk: ok\r\n"}},
		{"readonly", "seq=1", ",readonly=on", -1, 0, []string{
			"vblk: read-only disk, write status 1\r\n", "vblk: ok\r\n"}},
	}
	kernel := build(t, "vblk")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, img := diskImage(t)
			extra := []string{
				"-drive", "file=" + path + ",if=none,id=d0,format=raw" + tc.driveOpts,
				"-device", "virtio-blk-pci,drive=d0,disable-modern=on,serial=smolvmm-test"}
			if strings.Contains(tc.words, "disk=1") {
				// The image under test is the second device; the first stays unwritten.
				first, firstImg := diskImage(t)
				defer func() {
					if b, _ := os.ReadFile(first); !bytes.Equal(b, firstImg) {
						t.Error("first disk changed")
					}
				}()
				extra = []string{
					"-drive", "file=" + first + ",if=none,id=d1,format=raw",
					"-device", "virtio-blk-pci,drive=d1,disable-modern=on,serial=first",
					"-drive", "file=" + path + ",if=none,id=d0,format=raw",
					"-device", "virtio-blk-pci,drive=d0,disable-modern=on,serial=second"}
			}
			out, status := runQEMU(t, kernel, qemuOpts{append: tc.words, extra: extra})
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			if tc.name != "irq" {
				wantLines(t, out, "vblk: sector 0 53 4d 4f 4c 56 4d 4d 2d 53 45 43 54 4f 52 2d 30\r\n")
			}
			wantLines(t, out, tc.want...)
			if tc.name == "irq" {
				// The interrupt must come on the line the device's config space names.
				m := regexp.MustCompile(`irq (\d+) pin 1\r\n(?s:.*)vblk: irq (\d+) isr`).FindStringSubmatch(out)
				if m == nil || m[1] != m[2] {
					t.Errorf("interrupt line mismatch: %q", m)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.sector >= 0 {
				copy(img[tc.sector*512:], VblkPattern(tc.seq))
			}
			if !bytes.Equal(got, img) {
				for i := range got {
					if got[i] != img[i] {
						t.Fatalf("image differs first at byte %d (sector %d)", i, i/512)
					}
				}
			}
		})
	}
}

func TestQEMUBad(t *testing.T) {
	tests := []struct {
		words          string
		trigger, reply string
		status         int
		want           []string
	}{
		// -no-reboot turns the guest's reset or triple fault into exit status 0.
		{"triplefault", "", "", 0, []string{"bad: triple fault now (ud2)\r\n"}},
		{"triplefault-gp", "", "", 0, []string{"bad: triple fault now (bad selector)\r\n"}},
		{"triplefault-int3", "", "", 0, []string{"bad: triple fault now (int3)\r\n"}},
		{"triplefault-silent", "", "", 0, nil},
		{"triplefault-paging", "", "", 0, nil},
		{"reset", "", "", 0, []string{"bad: reset through port 0x64\r\n"}},
		{"mmio", "", "", 1, []string{"bad: mmio 0xfed40000 read 0x", "bad: mmio survived\r\n"}},
		{"halt", HaltMessage, "x", 0, []string{"\r\n" + HaltMessage, "bad: key 0x78, rebooting\r\n"}},
		{"", "", "", 3, []string{"FAIL: bad: say triplefault, triplefault-gp, triplefault-int3, triplefault-silent, triplefault-paging, mmio, vga, reset or halt\r\n"}},
	}
	kernel := build(t, "bad")
	for _, tc := range tests {
		t.Run(tc.words, func(t *testing.T) {
			out, status := runQEMU(t, kernel, qemuOpts{append: tc.words, trigger: tc.trigger, reply: tc.reply})
			if status != tc.status {
				t.Errorf("exit status %d, want %d", status, tc.status)
			}
			wantLines(t, out, tc.want...)
			if tc.want == nil && len(out) != 0 {
				t.Errorf("output %q, want none", out)
			}
		})
	}
}

func TestQEMUVnet(t *testing.T) {
	kernel := build(t, "vnet")
	for _, words := range []string{"", "irq"} {
		t.Run("mode="+words, func(t *testing.T) {
			out, status := runQEMU(t, kernel, qemuOpts{append: words, extra: []string{
				"-netdev", "user,id=n0",
				"-device", "virtio-net-pci,netdev=n0,disable-modern=on,mac=52:54:00:12:34:56"}})
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			want := []string{"vnet: mac 52:54:00:12:34:56\r\n", "vnet: sending arp request for 10.0.2.2\r\n",
				"vnet: arp reply 10.0.2.2 is at 52:55:0a:00:02:02\r\n", "vnet: ok\r\n"}
			if words == "irq" {
				want = append(want, " isr=0x1\r\n")
			}
			wantLines(t, out, want...)
		})
	}
}

// TestQEMUVtcp runs the vtcp guest's TCP against a real stack, QEMU's
// user network (slirp), with a Go peer on the host: the sender through
// the NAT to a host listener (10.0.2.2 is the host), the listener through
// a host port forward. Both check the stream byte for byte, so that tests
// of two vtcp guests on smolvmm's shared network prove the network, not
// the guest.
func TestQEMUVtcp(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-i386"); err != nil {
		t.Skip("qemu-system-i386 not installed")
	}
	kernel := build(t, "vtcp")
	const size = 20000
	stream := VtcpStream(size)
	nic := []string{"-device", "virtio-net-pci,netdev=n0,disable-modern=on,mac=52:54:00:12:34:56"}
	address := "vtcp: address 10.0.2.15 mask 255.255.255.0 router 10.0.2.2 from dhcp server 10.0.2.2\r\n"

	t.Run("send", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := ReadOneConnection(ln)
		port := ln.Addr().(*net.TCPAddr).Port
		out, status := runQEMU(t, kernel, qemuOpts{
			append: fmt.Sprintf("send peer=10.0.2.2 port=%d bytes=%d", port, size),
			extra:  append([]string{"-netdev", "user,id=n0"}, nic...)})
		if status != 1 {
			t.Errorf("exit status %d, want 1", status)
		}
		wantLines(t, out, address, "vtcp: 10.0.2.2 is at 52:55:0a:00:02:02\r\n",
			fmt.Sprintf("vtcp: connected to 10.0.2.2:%d mss 1460 window ", port),
			fmt.Sprintf("vtcp: sent %d bytes, ", size), "vtcp: closed\r\n")
		ln.Close()
		if b := <-got; !bytes.Equal(b, stream) {
			t.Errorf("the host listener got %d bytes, want the %d of the pattern (equal: %v)", len(b), size, bytes.Equal(b, stream[:min(len(b), size)]))
		}
	})

	t.Run("listen", func(t *testing.T) {
		// Below the ephemeral range: a closed port-0 listener's port
		// could be another process's before QEMU's forward took it.
		hostPort := testsock.Port(t)
		done := make(chan error, 1)
		const listening = "vtcp: listening on 10.0.2.15:5000\r\n"
		out, status := runQEMU(t, kernel, qemuOpts{
			append:  fmt.Sprintf("listen port=5000 bytes=%d", size),
			extra:   append([]string{"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:5000", hostPort)}, nic...),
			trigger: listening,
			then: func() {
				c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", hostPort), 10*time.Second)
				if err != nil {
					done <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				if _, err := c.Write(stream); err != nil {
					done <- err
					return
				}
				c.(*net.TCPConn).CloseWrite()
				// The guest's FIN after ours: it sends no data.
				b, err := io.ReadAll(c)
				if err == nil && len(b) != 0 {
					err = fmt.Errorf("the guest sent %d bytes", len(b))
				}
				done <- err
			}})
		if status != 1 {
			t.Errorf("exit status %d, want 1", status)
		}
		wantLines(t, out, address, "vtcp: connection from 10.0.2.2:", fmt.Sprintf("vtcp: received %d bytes ok\r\n", size),
			", bad checksums 0\r\n", "vtcp: closed\r\n")
		// A guest that never listened (QEMU without its forward)
		// started no client: nothing to wait for, its output says why.
		if !strings.Contains(out, listening) {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("host client: %v", err)
		}
	})
}

// TestQEMUKVM runs the interrupt guests under QEMU with KVM: the
// guests themselves must work on this machine's KVM (unpaged protected mode,
// handlers that never iret), independent of smolvmm.
func TestQEMUKVM(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU with KVM boots through SeaBIOS in seconds per guest; skipped in -short")
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("/dev/kvm unusable: %v", err)
	}
	f.Close()
	blk := []string{"-device", "virtio-blk-pci,drive=d0,disable-modern=on"}
	tests := []struct {
		guest, words string
		disk         bool
		want         string
	}{
		{"irq", "uart", false, "irq 4 ok"},
		{"irq", "pit", false, "irq 0 ok\r\n"},
		// Two THRE interrupts, the first served and EOIed: the line falls
		// and rises again on QEMU's UART as on ours (vmm TestInterrupts).
		{"irq", "twice", false, "irq 4 first iir=0xc2\r\nirq 4 ok iir=0xc2\r\n"},
		{"vblk", "irq", true, "vblk: irq ok\r\n"},
	}
	t.Run("nbboot/handoff", func(t *testing.T) {
		// Unpaged throughout: the handoff guest and nbboot run on any KVM.
		kernel := build(t, "nbboot")
		p := makePlan(t, kernel)
		want, err := NbbootLines(kernel, p.memory(t), p.esp)
		if err != nil {
			t.Fatal(err)
		}
		args, err := HandoffQEMUArgs(build(t, "handoff"), t.TempDir(), p.regions, p.entry, p.esp)
		if err != nil {
			t.Fatal(err)
		}
		out, status := runQEMU(t, kernel, qemuOpts{memMiB: HandoffMemMiB, boot: args, kvm: true})
		if status != 1 {
			t.Errorf("exit status %d, want 1", status)
		}
		handoff := fmt.Sprintf("handoff: %d regions, entering %#x with esp=%#x", len(p.regions), p.entry, p.esp)
		checkOutput(t, out, append([]string{handoff}, want...))
	})
	for _, tc := range tests {
		t.Run(tc.guest+"/"+tc.words, func(t *testing.T) {
			o := qemuOpts{append: tc.words, kvm: true}
			if tc.disk {
				path, _ := diskImage(t)
				o.extra = append([]string{"-drive", "file=" + path + ",if=none,id=d0,format=raw"}, blk...)
			}
			out, status := runQEMU(t, build(t, tc.guest), o)
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			wantLines(t, out, tc.want)
		})
	}
}

// TestQEMUVblkEvil submits each malformed request; whatever the device does
// with it, the guest must be able to reset it and read again, and the image
// must not change. (Judging the device is smolvmm's tests' job; this proves
// the guest side of those tests.)
func TestQEMUVblkEvil(t *testing.T) {
	if testing.Short() {
		t.Skip("each refused request costs the guest a one-second wait (evilwait=1); skipped in -short")
	}
	kernel := build(t, "vblk")
	kinds := []string{"loop", "next", "head", "addr", "wrap", "hdrw", "dataro", "statusro",
		"zero", "indloop", "indnest", "indlen", "indnext", "long", "jump", "pfn"}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			path, img := diskImage(t)
			// QEMU's legacy device never sets NEEDS_RESET on a ring it
			// refuses: a second's wait, not the request's timeout.
			out, status := runQEMU(t, kernel, qemuOpts{append: "evil=" + kind + " evilwait=1", extra: []string{
				"-drive", "file=" + path + ",if=none,id=d0,format=raw",
				"-device", "virtio-blk-pci,drive=d0,disable-modern=on"}})
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			wantLines(t, out, "vblk: evil "+kind+" submitted\r\n", "vblk: evil "+kind+": used=",
				"vblk: recovered ok\r\n")
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, img) {
				t.Errorf("image changed (err %v)", err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		path, _ := diskImage(t)
		out, status := runQEMU(t, kernel, qemuOpts{append: "evil=bogus", extra: []string{
			"-drive", "file=" + path + ",if=none,id=d0,format=raw",
			"-device", "virtio-blk-pci,drive=d0,disable-modern=on"}})
		if status != 3 {
			t.Errorf("exit status %d, want 3", status)
		}
		wantLines(t, out, "FAIL: vblk: unknown evil kind")
	})
}

// TestQEMUPaging runs the paging guest in each mode and compares its whole
// output: it is what the nested-KVM rig must see too (this machine's KVM
// triple-faults on guest paging, so no KVM run here).
func TestQEMUPaging(t *testing.T) {
	kernel := build(t, "paging")
	for _, words := range []string{"", "pse", "pae"} {
		t.Run("mode="+words, func(t *testing.T) {
			lines, err := PagingLines(kernel, words)
			if err != nil {
				t.Fatal(err)
			}
			out, status := runQEMU(t, kernel, qemuOpts{append: words})
			if status != 1 {
				t.Errorf("exit status %d, want 1 (debug-exit value 0)", status)
			}
			checkOutput(t, out, lines)
		})
	}
}
