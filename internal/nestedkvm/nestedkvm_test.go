package nestedkvm

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readCPIO is an independent reader of newc archives for the tests: it
// returns name -> "mode:data" for every member before the trailer.
func readCPIO(t *testing.T, b []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	off := 0
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header at %d field %d: %v", off, i, err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		rdev := strconv.Itoa(field(9)) + "," + strconv.Itoa(field(10))
		name := string(b[off+110 : off+110+namesize-1])
		off = (off + 110 + namesize + 3) &^ 3
		data := string(b[off : off+size])
		off = (off + size + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return got
		}
		if mode&0o170000 == cpioChr {
			data = rdev
		}
		got[name] = strconv.FormatInt(int64(mode), 8) + ":" + data
	}
}

func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.Dir("bin")
	c.File("bin/x", 0o755, []byte("12345"))
	c.File("empty", 0o600, nil)
	c.Symlink("bin/sh", "busybox")
	c.CharDev("console", 0o600, 5, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bin":     "40755:",
		"bin/x":   "100755:12345",
		"empty":   "100600:",
		"bin/sh":  "120777:busybox",
		"console": "20600:5,1",
	}
	got := readCPIO(t, buf.Bytes())
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("members %v, want %v", got, want)
	}
	// GNU cpio, where installed, lists the same members.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-it", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -it: %v", err)
		}
		if g := strings.Fields(string(out)); strings.Join(g, " ") != "bin bin/x empty bin/sh console" {
			t.Errorf("cpio -it lists %q", g)
		}
	}
}

func TestCPIOErrors(t *testing.T) {
	tests := []struct {
		name  string
		write func(c *cpioWriter)
		want  string
	}{
		{"absolute name", func(c *cpioWriter) { c.File("/init", 0o755, nil) }, `bad member name "/init"`},
		{"empty name", func(c *cpioWriter) { c.Dir("") }, `bad member name ""`},
		{"NUL in name", func(c *cpioWriter) { c.Dir("a\x00b") }, `bad member name`},
		{"twice", func(c *cpioWriter) { c.Dir("a"); c.File("a", 0o644, nil) }, `member "a" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCPIO(&bytes.Buffer{})
			tt.write(c)
			if err := c.Close(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Close: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestJobArchive(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := jobArchive([]File{
		{Path: "/root/a/b/file", Source: src},
		{Path: "/root/a/data", Data: []byte("bytes"), Mode: 0o600},
	}, "echo hi")
	if err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, b)
	for name, want := range map[string]string{
		"root":          "40755:",
		"root/a":        "40755:",
		"root/a/b":      "40755:",
		"root/a/b/file": "100755:from the host",
		"root/a/data":   "100600:bytes",
		"job.sh":        "100755:" + stepFunctions + "echo hi\n",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}

	for _, tt := range []struct {
		name string
		file File
		want string
	}{
		{"relative", File{Path: "root/x"}, `file "root/x": the guest path must be absolute`},
		{"root", File{Path: "/"}, `file "/": the guest path must be absolute`},
		{"missing source", File{Path: "/x", Source: filepath.Join(t.TempDir(), "nope")}, "file /x: open "},
		{"the script's path", File{Path: "/job.sh"}, `"job.sh" given twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := jobArchive([]File{tt.file}, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("jobArchive: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestStepFunctions runs the guest's step function with the host's sh and
// parses what it printed, as the rig does with the guest's.
func TestStepFunctions(t *testing.T) {
	if _, err := os.Stat("/proc/uptime"); err != nil {
		t.Skip("no /proc/uptime")
	}
	script := stepFunctions +
		Step("plain", "echo", "hello") +
		Step("no newline, it's quoted", "printf", "%s", "a'b $HOME") +
		Step("crlf and stderr", "sh", "-c", `printf 'x\r\ny\r\n'; echo oops >&2; exit 4`) +
		Step("missing", "/nonexistent/cmd") +
		"exit 9\n"
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 9 {
		t.Fatalf("sh: %v, want exit status 9\n%s", err, out)
	}
	steps, err := parseSteps(string(out))
	if err != nil {
		t.Fatalf("parseSteps: %v\n%s", err, out)
	}
	want := []StepResult{
		{Name: "plain", Stdout: "hello\n"},
		{Name: "no newline, it's quoted", Stdout: "a'b $HOME"},
		{Name: "crlf and stderr", Stdout: "x\r\ny\r\n", Stderr: "oops\n", Status: 4},
		{Name: "missing", Status: 127},
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i, w := range want {
		s := steps[i]
		if s.Elapsed < 0 || s.Elapsed > time.Minute {
			t.Errorf("step %q: elapsed %v", s.Name, s.Elapsed)
		}
		s.Elapsed = 0
		if w.Name == "missing" {
			s.Stderr = "" // the shell's wording
		}
		if s != w {
			t.Errorf("step %d: %+v, want %+v", i, s, w)
		}
	}
}

func TestParseStepsErrors(t *testing.T) {
	tests := []struct{ name, out, want string }{
		{"unfinished", "@@nestedkvm:begin name=a\npartial out", `step "a" did not finish`},
		{"no newline after begin", "@@nestedkvm:begin name=a", "without a newline"},
		{"malformed end", "@@nestedkvm:begin name=a\nx\n@@nestedkvm:end status=x name=a\n", "malformed end marker"},
		{"other name", "@@nestedkvm:begin name=a\nx\n@@nestedkvm:end status=0 start=1 end=2 name=b\n", "malformed end marker"},
		{"no stderr end", "@@nestedkvm:begin name=a\nx\n@@nestedkvm:end status=0 start=1 end=2 name=a\nerr", "no end of its stderr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseSteps(tt.out); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseSteps: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestResultParse(t *testing.T) {
	const ok = "\x1bc\n@@nestedkvm:init uptime=2.00\n@@nestedkvm:kvm uptime=2.34\nout\n@@nestedkvm:exit status=3 uptime=5.50\n[ 5.6] reboot: Power down\r\n"
	tests := []struct {
		name, out string
		want      string // error text, "" for success
	}{
		{"ok", ok, ""},
		{"guest error", "\n@@nestedkvm:init uptime=2.00\n@@nestedkvm:error no /dev/kvm after loading the kvm modules\n", "guest: no /dev/kvm"},
		{"no init", "Kernel panic - not syncing: VFS: Unable to mount root fs\r\n", "never started /init"},
		{"no exit", "\n@@nestedkvm:init uptime=2.00\nsomething\n", "stopped before the script ended"},
		{"bad exit", "\n@@nestedkvm:init uptime=2.00\n@@nestedkvm:exit\n", "malformed exit marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Result{Output: tt.out}
			err := r.parse()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != 3 || r.Init != 2*time.Second || r.KVMReady != 2340*time.Millisecond || r.End != 5500*time.Millisecond {
					t.Errorf("parsed %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestKeepKernelFile(t *testing.T) {
	tests := []struct{ in, want string }{
		{"boot/vmlinuz-6.1.0-48-amd64", "boot/vmlinuz-6.1.0-48-amd64"},
		{"boot/System.map-6.1.0-48-amd64", ""},
		{"lib/modules/6.1.0-48-amd64/kernel/arch/x86/kvm/kvm.ko", "lib/modules/6.1.0-48-amd64/kernel/arch/x86/kvm/kvm.ko"},
		{"lib/modules/6.12/kernel/arch/x86/kvm/kvm-amd.ko.xz", "lib/modules/6.12/kernel/arch/x86/kvm/kvm-amd.ko"},
		{"lib/modules/6.12/kernel/virt/lib/irqbypass.ko.gz", "lib/modules/6.12/kernel/virt/lib/irqbypass.ko"},
		{"lib/modules/6.12/kernel/arch/x86/kvm/kvm-intel.ko", ""},
		{"lib/modules/6.12/kernel/drivers/crypto/ccp/ccp-crypto.ko", ""},
		{"lib/modules/6.12/kernel/arch/x86/kvm/kvm.ko.zst", ""},
		{"usr/lib/modules/x", ""},
	}
	for _, tt := range tests {
		if got := keepKernelFile(tt.in); got != tt.want {
			t.Errorf("keepKernelFile(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// bzImage builds the parts of a bzImage extractVmlinux reads.
func bzImage(version uint16, payload []byte) []byte {
	b := make([]byte, 5*512) // setup_sects 0 means 4
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], version)
	binary.LittleEndian.PutUint32(b[0x248:], 16)
	binary.LittleEndian.PutUint32(b[0x24c:], uint32(len(payload)))
	b = append(b, make([]byte, 16)...)
	return append(b, payload...)
}

func TestExtractVmlinux(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("\x7fELF the kernel"))
	zw.Close()
	gz.Write([]byte{15, 0, 0, 0}) // the size the kernel's build appends

	got, err := extractVmlinux(bzImage(0x20f, gz.Bytes()))
	if err != nil || string(got) != "\x7fELF the kernel" {
		t.Errorf("gzip payload: %q, %v", got, err)
	}

	long := bzImage(0x20f, []byte("payload"))
	binary.LittleEndian.PutUint32(long[0x24c:], 1<<31)
	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"short", []byte("MZ"), "no HdrS"},
		{"old protocol", bzImage(0x206, gz.Bytes()), "boot protocol 0x206 has no payload fields"},
		{"payload past the end", long, "outside the"},
		{"unknown compression", bzImage(0x20f, []byte("\x28\xb5\x2f\xfdzstd")), "neither xz nor gzip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := extractVmlinux(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("extractVmlinux: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := hasPVHEntry([]byte("not an ELF")); err == nil {
		t.Error("hasPVHEntry took a non-ELF file")
	}
}

// fakeQEMU writes a script that stands in for QEMU: its nth run (counted
// in a file) does what runs[n] says.
func fakeQEMU(t *testing.T, runs ...string) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nn=$(cat " + dir + "/count 2>/dev/null || echo 0)\necho $((n+1)) >" + dir + "/count\ncase $n in\n"
	for i, r := range runs {
		script += strconv.Itoa(i) + ") " + r + " ;;\n"
	}
	script += "esac\n"
	path := filepath.Join(dir, "qemu")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunAttempts(t *testing.T) {
	const good = `printf '\n@@nestedkvm:init uptime=1.00\n@@nestedkvm:kvm uptime=1.10\n@@nestedkvm:exit status=0 uptime=1.20\n'`
	const stall = `echo booting; exec sleep 60`
	tests := []struct {
		name     string
		runs     []string
		attempts int
		want     string // error text, "" for success
	}{
		{"first run", []string{good}, 1, ""},
		{"stall then success", []string{stall, good}, 2, ""},
		{"stalls twice", []string{stall, stall}, 2, "stalled: no end after"},
		{"a crash is not retried", []string{"echo 'Kernel panic'", good}, 1, "never started /init"},
		{"QEMU fails", []string{"echo bad option >&2; exit 1", good}, 1, "bad option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged []string
			var out bytes.Buffer
			r, err := runAttempts(fakeQEMU(t, tt.runs...), "k", "i", 2*time.Second, &out,
				func(f string, a ...any) { logged = append(logged, f) })
			if r.Attempts != tt.attempts {
				t.Errorf("%d attempts, want %d", r.Attempts, tt.attempts)
			}
			if tt.attempts == 2 && len(logged) != 1 {
				t.Errorf("logged %q, want one note of the retry", logged)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r.KVMReady != 1100*time.Millisecond {
					t.Errorf("KVMReady %v", r.KVMReady)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("runAttempts: %v, want an error containing %q", err, tt.want)
			}
			if tt.runs[0] == stall && !strings.Contains(r.Output, "booting") {
				t.Errorf("a stalled run's output %q lacks what it printed", r.Output)
			}
		})
	}
}

// TestFetchOffline: without apt the rig uses what the cache holds, and
// with an empty cache it reports ErrUnavailable (the tests then skip).
func TestFetchOffline(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no apt-cache, apt-get, dpkg-deb or xz
	if _, err := FetchIngredients(t.TempDir()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "apt-cache not found") {
		t.Errorf("empty cache: %v, want ErrUnavailable naming apt-cache", err)
	}

	cache := t.TempDir()
	put := func(name, data string) {
		p := filepath.Join(cache, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := "linux-image-6.1.0-9-amd64_6.1.1-1/"
	put(k+"complete", "")
	put(k+"root/boot/vmlinuz-6.1.0-9-amd64", "not a bzImage")
	for _, m := range Modules {
		put(k+"root/lib/modules/6.1.0-9-amd64/kernel/"+m, m)
	}
	put("busybox-static_1%3a1.35-1/complete", "")
	put("busybox-static_1%3a1.35-1/root/bin/busybox", "bb")
	ing, err := FetchIngredients(cache)
	if err != nil {
		t.Fatal(err)
	}
	if ing.Kernel != filepath.Join(cache, k+"root/boot/vmlinuz-6.1.0-9-amd64") || len(ing.Modules) != len(Modules) ||
		ing.Busybox != filepath.Join(cache, "busybox-static_1%3a1.35-1/root/bin/busybox") {
		t.Errorf("ingredients %+v", ing)
	}
	if !strings.Contains(ing.Packages, "linux-image-6.1.0-9-amd64 6.1.1-1, busybox-static 1:1.35-1 (booting the bzImage: ") {
		t.Errorf("packages %q: want the versions and why the bzImage is booted", ing.Packages)
	}

	// A cached kernel package that lacks a module is an error, not a skip.
	if err := os.Remove(filepath.Join(cache, k+"root/lib/modules/6.1.0-9-amd64/kernel/"+Modules[3])); err != nil {
		t.Fatal(err)
	}
	if _, err := FetchIngredients(cache); err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "kvm-amd.ko") {
		t.Errorf("missing module: %v, want an error naming kvm-amd.ko", err)
	}
}

func TestKernelDepends(t *testing.T) {
	tests := []struct{ depends, name, version, err string }{
		{"linux-image-6.1.0-48-amd64 (= 6.1.172-1)", "linux-image-6.1.0-48-amd64", "6.1.172-1", ""},
		{"initramfs-tools, linux-image-6.12.9-amd64", "linux-image-6.12.9-amd64", "", ""},
		{"linux-image-6.1.0-48-amd64 (>= 6.1)", "linux-image-6.1.0-48-amd64", "", ""},
		{"", "", "", "depends on no linux-image-* package"},
	}
	for _, tt := range tests {
		name, version, err := kernelDepends(map[string]string{"Depends": tt.depends})
		if name != tt.name || version != tt.version || (err == nil) != (tt.err == "") ||
			(err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("kernelDepends(%q) = %q, %q, %v; want %q, %q, error %q", tt.depends, name, version, err, tt.name, tt.version, tt.err)
		}
	}
}

// fakeApt puts on PATH an apt-cache that prints stanzas and an apt-get that
// fails as it does without network (exit status 100).
func fakeApt(t *testing.T, stanzas string) {
	t.Helper()
	bin := t.TempDir()
	for name, script := range map[string]string{
		"apt-cache": "#!/bin/sh\ncat <<'EOF'\n" + stanzas + "\nEOF\n",
		"apt-get":   "#!/bin/sh\necho 'E: Failed to fetch (no network)' >&2\nexit 100\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// putCachedKernel makes a complete cached kernel package dir (name_version).
func putCachedKernel(t *testing.T, cache, dir, release string) {
	t.Helper()
	files := map[string]string{"complete": "", "root/boot/vmlinuz-" + release: "not a bzImage"}
	for _, m := range Modules {
		files["root/lib/modules/"+release+"/kernel/"+m] = m
	}
	for name, data := range files {
		p := filepath.Join(cache, dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFetchNewKernelABIOffline: when Debian ships a kernel with a new ABI
// (a new package name) and apt-get cannot download it, the rig boots the
// newest cached kernel package, whatever its name, and says so.
func TestFetchNewKernelABIOffline(t *testing.T) {
	fakeApt(t, "Package: linux-image-amd64\nVersion: 6.1.999-1\nDepends: linux-image-6.1.0-99-amd64 (= 6.1.999-1)\n\n"+
		"Package: busybox-static\nVersion: 1:1.35-1\n")
	cache := t.TempDir()
	putCachedKernel(t, cache, "linux-image-6.1.0-9-amd64_6.1.1-1", "6.1.0-9-amd64")
	putCachedKernel(t, cache, "linux-image-6.1.0-48-amd64_6.1.170-1", "6.1.0-48-amd64")
	putCachedKernel(t, cache, "linux-image-6.1.0-57-amd64_6.1.200-1", "6.1.0-57-amd64")
	if err := os.MkdirAll(filepath.Join(cache, "busybox-static_1%3a1.35-1", "root", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"complete", "root/bin/busybox"} {
		if err := os.WriteFile(filepath.Join(cache, "busybox-static_1%3a1.35-1", filepath.FromSlash(f)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ing, err := FetchIngredients(cache)
	if err != nil {
		t.Fatalf("FetchIngredients: %v, want the cached 6.1.0-57 kernel", err)
	}
	if want := filepath.Join(cache, "linux-image-6.1.0-57-amd64_6.1.200-1/root/boot/vmlinuz-6.1.0-57-amd64"); ing.Kernel != want {
		t.Errorf("kernel %s, want %s", ing.Kernel, want)
	}
	if !strings.Contains(ing.Packages, "linux-image-6.1.0-57-amd64 6.1.200-1") {
		t.Errorf("packages %q: want the cached kernel", ing.Packages)
	}
	for _, w := range []string{"linux-image-6.1.0-99-amd64 6.1.999-1", "exit status 100", "linux-image-6.1.0-57-amd64 6.1.200-1"} {
		if !strings.Contains(ing.Fallback, w) {
			t.Errorf("fallback note %q lacks %q", ing.Fallback, w)
		}
	}
}

// TestPruneCached: after a download, older cached versions of the same
// family go, the newest two stay (compared as versions: 10 after 9), and
// other packages and unfinished directories are left alone.
func TestPruneCached(t *testing.T) {
	tests := []struct {
		name       string
		have, want []string
	}{
		{"one", []string{"linux-image-6.1.0-9-amd64_6.1.1-1"}, []string{"linux-image-6.1.0-9-amd64_6.1.1-1"}},
		{"three kernels", []string{"linux-image-6.1.0-9-amd64_6.1.1-1", "linux-image-6.1.0-10-amd64_6.1.2-1", "linux-image-6.1.0-48-amd64_6.1.170-1"},
			[]string{"linux-image-6.1.0-10-amd64_6.1.2-1", "linux-image-6.1.0-48-amd64_6.1.170-1"}},
		{"same package", []string{"linux-image-6.1.0-9-amd64_6.1.1-1", "linux-image-6.1.0-9-amd64_6.1.1-2", "linux-image-6.1.0-9-amd64_6.1.1-10"},
			[]string{"linux-image-6.1.0-9-amd64_6.1.1-10", "linux-image-6.1.0-9-amd64_6.1.1-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			for _, d := range append(tc.have, "busybox-static_1%3a1.35-1", "linux-image-6.1.0-1-amd64_6.1.0-1") {
				if err := os.MkdirAll(filepath.Join(cache, d), 0o755); err != nil {
					t.Fatal(err)
				}
				if d != "linux-image-6.1.0-1-amd64_6.1.0-1" { // unfinished: no "complete"
					if err := os.WriteFile(filepath.Join(cache, d, "complete"), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			pruneCached(cache, "linux-image-", 2)
			var got []string
			ents, _ := os.ReadDir(cache)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "linux-image-") && e.Name() != "linux-image-6.1.0-1-amd64_6.1.0-1" {
					got = append(got, e.Name())
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("left %v, want %v", got, tc.want)
			}
			for _, d := range []string{"busybox-static_1%3a1.35-1", "linux-image-6.1.0-1-amd64_6.1.0-1"} {
				if _, err := os.Stat(filepath.Join(cache, d)); err != nil {
					t.Errorf("%s: %v, want it left", d, err)
				}
			}
		})
	}
}

// TestFetchSkipsWhenOff: Fetch skips in -short mode and under
// SMOLVMM_NESTEDKVM=off, as Run does, before looking for a package (here
// none can be had, which under require would fail the test instead).
func TestFetchSkipsWhenOff(t *testing.T) {
	short := flag.Lookup("test.short").Value
	was := short.String()
	t.Cleanup(func() { _ = short.Set(was) })
	for _, tc := range []struct {
		name, env string
		short     bool
	}{
		{"short, require", "require", true},
		{"off", "off", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir()) // no apt: Fetch would fail under require
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
			t.Setenv(EnvVar, tc.env)
			if err := short.Set(strconv.FormatBool(tc.short)); err != nil {
				t.Fatal(err)
			}
			// Fetch runs under a recorder, so that the skip it must
			// make is this test's finding, not a skipped test of CI's.
			rec := &skipRecorder{TB: t}
			fetched := false
			done := make(chan struct{})
			go func() {
				defer close(done)
				Fetch(rec)
				fetched = true
			}()
			<-done
			if !rec.skipped || fetched || t.Failed() {
				t.Errorf("Fetch went on (fetched %v, skipped %v), want it to skip", fetched, rec.skipped)
			}
		})
	}
}

// skipRecorder is t, with a skip recorded and ending only the goroutine
// that asked for it, not the test.
type skipRecorder struct {
	testing.TB
	skipped bool
}

func (r *skipRecorder) Skip(args ...any)                 { r.SkipNow() }
func (r *skipRecorder) Skipf(format string, args ...any) { r.SkipNow() }
func (r *skipRecorder) SkipNow() {
	r.skipped = true
	runtime.Goexit()
}
