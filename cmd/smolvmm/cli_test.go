package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string // removed by TestMain
)

// smolvmmBin builds the command once for the tests that run it as a user
// would, to check exit statuses, stderr and the terminal.
func smolvmmBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := binTempDir("smolvmm-testbin-cli")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "smolvmm")
		// As make build does: static, so that the seccomp filter
		// traps every forbidden call (see sandbox.OpenRefusedQuietly).
		// smolvmm_testhook compiles in the hook the containment tests use
		// (testHookEnv); make build leaves it out.
		build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs smolvmm_testhook", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binPath)
	}
	return binPath
}

func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// elf64Multiboot is an ELF64 header followed by a valid multiboot header.
func elf64Multiboot() []byte {
	b := make([]byte, 128)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[16:], 2)    // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], 0x3E) // x86-64
	binary.LittleEndian.PutUint32(b[64:], 0x1BADB002)
	binary.LittleEndian.PutUint32(b[68:], 0x3)
	magic := uint32(0x1BADB002)
	binary.LittleEndian.PutUint32(b[72:], -(magic + 3))
	return b
}

func TestCLIErrors(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("text", bytes.Repeat([]byte("hello "), 100))
	elf64 := write("elf64", elf64Multiboot())
	sh3 := write("netbsd-sh3", netbsdELF(42, nil))
	// A FIFO with no writer: run used to wait in open for one.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		status   int
		stderr   string
		needsKVM bool
	}{
		{"unknown flag", []string{"run", "--bogus"}, 2, "smolvmm run: unknown flag --bogus (see smolvmm run --help)", false},
		{"no kernel flag", []string{"run"}, 2, "no kernel: give one with -k FILE", false},
		{"kernel missing", []string{"run", "-k", filepath.Join(dir, "nope")}, 1, "check the path given with -k", false},
		{"no KVM", []string{"run", "-k", text, "--kvm-device", filepath.Join(dir, "kvm")}, 1, "no KVM device at this path", false},
		{"FIFO kernel", []string{"run", "-k", fifo, "--net", "none"}, 1, "fifo is a FIFO: not a regular file", false},
		{"device kernel", []string{"run", "-k", "/dev/zero", "--net", "none"}, 1, "/dev/zero is a character device: not a regular file", false},
		{"FIFO module", []string{"run", "-k", text, "--module", fifo, "--net", "none"}, 1, "--module " + fifo + " is a FIFO: not a regular file", false},
		{"FIFO snapshot", []string{"run", "--restore", fifo, "--net", "none"}, 1, "restore: " + fifo + " is a FIFO", false},
		{"memory below minimum", []string{"run", "-k", text, "-m", "1"}, 2, "use -m between 3 and 3072", false},
		{"zero memory", []string{"run", "-k", text, "-m", "0"}, 2, "too little RAM (use -m between 3 and 3072 MiB)", false},
		{"bad disk spec", []string{"run", "-k", text, "-d", "img,bogus"}, 2, "bogus", false},
		{"bad share option", []string{"run", "-k", text, "--share", dir + ",rw"}, 2, `unknown option "rw"`, false},
		{"bad ready", []string{"run", "-k", text, "--ready", "("}, 2, `--ready "(":`, false},
		{"bad ready port", []string{"run", "-k", text, "--ready-port", "70000"}, 2, "between 1 and 65535", false},
		{"bad network", []string{"run", "-k", text, "--net", "bridge"}, 2, "unknown network", false},
		{"bad forward", []string{"run", "-k", text, "-p", "99999:80"}, 2, "malformed port forward", false},
		{"bad MAC", []string{"run", "-k", text, "--mac", "zz"}, 2, "bad MAC address", false},
		{"same host port twice", []string{"run", "-k", text, "-p", "18080:80", "-p", "18080:81"}, 2, "smolvmm run: -p 18080:81: host port tcp 18080 given twice", false},
		{"demo bad memory", []string{"demo", "-m", "1"}, 2, "too little RAM", false},
		// 2 MiB was inside the stated range, then too small for any kernel.
		{"demo 2 MiB", []string{"demo", "-m", "2"}, 2, "-m 2: too little RAM (use -m between 3 and 3072 MiB)", false},
		{"too much memory", []string{"run", "-k", text, "-m", "99999"}, 2, "-m 99999: too much RAM (use -m between 3 and 3072 MiB", false},
		// At the edges: the largest RAM and port pass the range checks
		// (to the KVM device's, and the forward's), one more does not.
		{"memory just too much", []string{"run", "-k", text, "-m", strconv.Itoa(vmm.MaxMemoryMiB + 1)}, 2, "-m " + strconv.Itoa(vmm.MaxMemoryMiB+1) + ": too much RAM", false},
		{"most memory", []string{"run", "-k", text, "-m", strconv.Itoa(vmm.MaxMemoryMiB), "--kvm-device", filepath.Join(dir, "kvm")}, 1, "no KVM device at this path", false},
		{"ready port just too high", []string{"run", "-k", text, "--ready-port", "65536"}, 2, "--ready-port 65536: give a TCP port between 1 and 65535", false},
		{"highest ready port", []string{"run", "-k", text, "--ready-port", "65535"}, 2, "--ready-port 65535: no -p forwards TCP port 65535", false},
		{"same disk twice", []string{"run", "-k", text, "-d", text, "-d", text + ",ro"}, 2, "this image is already a disk of this VM", false},
		{"unknown command", []string{"rnu"}, 2, `smolvmm: unknown command "rnu" (smolvmm --help lists the commands)`, false},
		{"unknown global flag", []string{"--frobnicate"}, 2, "smolvmm: unknown flag --frobnicate (see smolvmm --help)", false},
		{"not multiboot", []string{"run", "-k", text}, 1, "pass -k a multiboot v1 kernel", true},
		{"ELF64", []string{"run", "-k", elf64}, 1, "ELF", true},
		{"stray argument", []string{"run", "-k", text, "extra"}, 2, `unexpected argument "extra"`, false},
		{"bad boot protocol", []string{"run", "-k", text, "--boot", "pvh"}, 2, `--boot pvh: unknown boot protocol (want auto, multiboot or netbsd)`, false},
		{"bench bad boot protocol", []string{"bench", "--boot", "grub"}, 2, `--boot grub: unknown boot protocol`, false},
		{"NetBSD kernel for sh3", []string{"run", "-k", sh3}, 1, "SuperH (sh3)", true},
		{"forced native handoff", []string{"run", "-k", text, "--boot", "netbsd"}, 1, "not a NetBSD kernel", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsKVM && !kvmUsable() {
				t.Skip("needs /dev/kvm")
			}
			cmd := exec.Command(bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			}
			msg := strings.TrimSpace(stderr.String())
			if status != tt.status || !strings.Contains(msg, tt.stderr) {
				t.Fatalf("status %d stderr %q; want status %d and %q", status, msg, tt.status, tt.stderr)
			}
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("error is not one line:\n%s", msg)
			}
		})
	}
}

func TestCLIDemo(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	out, err := exec.Command(smolvmmBin(t), "demo", "-a", "from the cli test").Output()
	if err != nil {
		t.Fatalf("smolvmm demo: %v\n%s", err, out)
	}
	for _, want := range []string{`cmdline: "demo from the cli test"`, "smolvmm-demo: done"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestTerminalRestored runs smolvmm on a pseudo-terminal (util-linux
// script) and checks the terminal is back in cooked mode after a normal
// exit and after an error.
func TestTerminalRestored(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) from util-linux for a pseudo-terminal")
	}
	bin := smolvmmBin(t)
	for _, args := range []string{"demo", "run -k /dev/null"} {
		t.Run(args, func(t *testing.T) {
			out, _ := exec.Command("script", "-qec", bin+" "+args+" >/dev/null 2>&1; stty -a", "/dev/null").Output()
			flags := strings.Fields(string(out))
			for _, want := range []string{"icanon", "echo", "isig", "opost", "icrnl"} {
				found := false
				for _, f := range flags {
					if f == want {
						found = true
					}
				}
				if !found {
					t.Errorf("terminal left without %s:\n%s", want, out)
				}
			}
		})
	}
}

func TestEscapeReader(t *testing.T) {
	tests := []struct {
		in, out string
		quit    bool
	}{
		{"plain", "plain", false},
		{"a\x01\x01b", "a\x01b", false},
		{"ab\x01xcd", "ab", true},
		{"a\x01zb", "ab", false},
	}
	for _, tt := range tests {
		quit := false
		r := &escapeReader{r: strings.NewReader(tt.in), quit: func() bool { quit = true; return true }}
		var got []byte
		buf := make([]byte, 16)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if string(got) != tt.out || quit != tt.quit {
			t.Errorf("%q: got %q quit=%v, want %q quit=%v", tt.in, got, quit, tt.out, tt.quit)
		}
	}
}

// TestCLIShare attaches a host directory as a disk; the demo guest's PCI
// scan shows it, and the temporary image is gone after the run. Its name
// is longer than a serial takes (one over 14 bytes was refused).
func TestCLIShare(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := filepath.Join(t.TempDir(), "auditcontain-share-directory")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.Command(smolvmmBin(t), "demo", "--share", dir+",ro")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("smolvmm demo --share: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "1af4:1001 rev 00 class 010000 subsys 1af4:0002") {
		t.Errorf("shared disk not on the PCI bus:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*")); len(left) != 0 {
		t.Errorf("temporary images left behind: %v", left)
	}
	out, err = exec.Command(smolvmmBin(t), "demo", "--share", dir+",rw").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown option "rw"`) {
		t.Errorf("bad --share option: err %v, output %s", err, out)
	}
}

// TestShareSerial: a share's serial fits a serial's 20 bytes of
// printable ASCII whatever the directory's name, the same for the same
// name.
func TestShareSerial(t *testing.T) {
	for _, tt := range []struct{ dir, want string }{
		{"/tmp/data", "share-data"},
		{"/tmp/data/", "share-data"},
		{"/tmp/fourteen-bytes", "share-fourteen-bytes"},
		{"/tmp/auditcontain-share", "share-auditcontain-s"},
		{"/srv/donn\u00e9es", "share-donn__es"},
		{"/srv/tab\tname", "share-tab_name"},
	} {
		if got := shareSerial(tt.dir); got != tt.want {
			t.Errorf("shareSerial(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

// TestCLIHalt: NetBSD's halt message ends the VM with status 0 at its last
// period, and run ends that line so the shell prompt starts on its own.
func TestCLIHalt(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "bad")
	out, err := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "32", "--net", "none", "-a", "halt").Output()
	if err != nil {
		t.Fatalf("run: %v (want status 0)\n%s", err, out)
	}
	if !strings.HasSuffix(string(out), "Please press any key to reboot.\r\n") {
		t.Errorf("output ends %q, want the halt message's last line ended", out[max(0, len(out)-40):])
	}
}

func TestCLINetwork(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vnet")
	bin := smolvmmBin(t)
	out, err := exec.Command(bin, "run", "-k", kernel, "-m", "32", "--mac", "52:54:00:aa:bb:cc").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("run: %v (want debug-exit status 1)\n%s", err, out)
	}
	for _, want := range []string{"vnet: mac 52:54:00:aa:bb:cc", "vnet: arp reply 10.0.2.2 is at 5a:94:ef:e4:0c:dd", "vnet: ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _ = exec.Command(bin, "run", "-k", kernel, "-m", "32", "--net", "none").CombinedOutput()
	if !strings.Contains(string(out), "FAIL: vnet: no device") {
		t.Errorf("--net none must leave the guest without a NIC:\n%s", out)
	}
	tests := []struct{ args, want string }{
		{"--net none -p 8080:80", "port forwards need the user network"},
		{"--mac zz:00", "--mac"},
		{"-p 80", "-p"},
		{"--net bogus", `unknown network`},
	}
	for _, tt := range tests {
		args := append([]string{"run", "-k", kernel}, strings.Fields(tt.args)...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("%s: err %v, output %q; want one line with %q", tt.args, err, out, tt.want)
		}
	}
}

// TestSignalStops sends SIGTERM and SIGINT to a VM whose guest has started
// (its first console byte is out) and spins forever: smolvmm must stop it,
// saying so, and exit 130. (A signal during set-up is TestSignalDuringSetup's.)
func TestSignalStops(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := readySpinKernel(t)
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(smolvmmBin(t), "run", "-k", kernel, "--net", "none")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The guest runs once its console says so: the signal then
			// finds the VM running, whatever the host's load.
			var first [1]byte
			if _, err := io.ReadFull(stdout, first[:]); err != nil || first[0] != 'S' {
				cmd.Wait()
				t.Fatalf("the guest's console began %q (%v), want S; stderr: %s", first[:], err, stderr.String())
			}
			cmd.Process.Signal(sig)
			io.Copy(io.Discard, stdout) // until smolvmm exits
			err = cmd.Wait()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 130 {
				t.Fatalf("exit %v, want status 130; stderr: %s", err, stderr.String())
			}
			// In the README's style, the command named (it said
			// "smolvmm: guest stopped").
			if !strings.Contains(stderr.String(), "\nsmolvmm run: guest stopped\n") {
				t.Errorf("stderr %q lacks the reason, as smolvmm run: guest stopped", stderr.String())
			}
		})
	}
}

// TestCrashAfterFlush kills smolvmm with SIGKILL right after the guest's
// FLUSH completed: what the guest wrote before it must be in the image.
func TestCrashAfterFlush(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vblk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "32", "--net", "none",
		"-d", img, "-a", "seq=7 sector=5 hang")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(60 * time.Second)
	for !bytes.Contains(out, []byte("vblk: flush ok")) {
		if time.Now().After(deadline) {
			t.Fatalf("no flush after 60 s; output:\n%s", out)
		}
		n, err := stdout.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("guest output ended before the flush: %v\n%s", err, out)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[5*512:6*512], guests.VblkPattern(7)) {
		t.Fatalf("sector 5 after SIGKILL is %q..., want the flushed pattern", got[5*512:5*512+32])
	}
}

// TestCLITimings: --timings prints every phase in order, and --ready
// reports ready on the console line it matches. (The demo guest has no
// network card, so it takes no --ready-port.)
func TestCLITimings(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	cmd := exec.Command(smolvmmBin(t), "demo", "--timings", "--ready", "^cmdline: ")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	var got []string
	last := -1.0
	for _, line := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ms, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		got = append(got, f[0])
		if f[0] != "ready" && ms < last {
			t.Errorf("%s at %.3f ms, before the previous phase (%.3f ms)", f[0], ms, last)
		}
		if f[0] != "ready" {
			last = ms
		}
	}
	for _, want := range []string{"main", "vm-created", "devices-created", "kernel-loaded", "first-run", "first-output", "ready", "exit"} {
		if !slices.Contains(got, want) {
			t.Errorf("--timings lacks %s: %v\n%s", want, got, stderr.String())
		}
	}
	if out, err := exec.Command(smolvmmBin(t), "demo", "--ready", "(").CombinedOutput(); err == nil || !strings.Contains(string(out), `--ready "("`) {
		t.Errorf("--ready (: err %v, output %q", err, out)
	}
}

// spinKernel writes an a.out-kludge multiboot kernel whose entry is
// `jmp .`: a guest that runs until it is stopped.
func spinKernel(t *testing.T) string {
	t.Helper()
	k := make([]byte, 48)
	magic, flags := uint32(0x1BADB002), uint32(0x00010003)
	for i, v := range []uint32{magic, flags, -(magic + flags), 0x100000, 0x100000, 0, 0x101000, 0x100020} {
		binary.LittleEndian.PutUint32(k[4*i:], v)
	}
	k[32], k[33] = 0xEB, 0xFE
	kernel := filepath.Join(t.TempDir(), "spin")
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}
