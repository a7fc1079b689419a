package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/internal/bootelf"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestUpOwnKernelHint: when the kernel up fetched and stripped does not
// load, the advice speaks of the release, not of a kernel to pass.
func TestUpOwnKernelHint(t *testing.T) {
	upNeedKVM(t)
	kernel := buildUpGuest(t)
	// Without its multiboot header magic the guest is an ELF that is
	// neither multiboot nor NetBSD; kstrip still finds its cfdata.
	magic := []byte{0x02, 0xb0, 0xad, 0x1b}
	if !bytes.Contains(kernel, magic) {
		t.Fatal("the up guest has no multiboot magic")
	}
	kernel = bytes.ReplaceAll(kernel, magic, []byte{0, 0, 0, 0})
	bin := smolvmmBin(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(kernel),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--mirror", srv.Mirror(), "--cache", filepath.Join(work, "cache"), "-m", "16", "rescue")
	cmd.Dir = work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("up: %v, want exit status 1\n%s", err, stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, "neither a multiboot kernel nor a NetBSD ELF kernel") ||
		!strings.Contains(msg, "(this is NetBSD 9.3/i386's own kernel, fetched and stripped by up (") ||
		strings.Contains(msg, "pass a multiboot") || strings.Contains(msg, "-k") {
		t.Errorf("up's error about its own kernel:\n%s", msg)
	}
}

// TestUpMirrorKernelNotELF: a mirror's kernel that matches its SHA512 but
// is no kernel is said to be the release's fault, with the flags that
// choose it: up takes no kernel, yet it said "give an uncompressed or
// gzipped NetBSD kernel".
func TestUpMirrorKernelNotELF(t *testing.T) {
	upNeedKVM(t)
	bin := smolvmmBin(t)
	for _, tc := range []struct {
		name   string
		kernel []byte
		want   string
	}{
		{"not ELF", gzipBytes([]byte("<html>mirror error page</html>")), `not an ELF file: the file starts with "<htm", not "\x7fELF" (the release's kernel matched its SHA512, yet is no NetBSD kernel up can strip: check --mirror, --version and --arch)`},
		{"bad gzip", gzipBytes([]byte("<html>mirror error page</html>"))[:20], "(the release's kernel matched its SHA512, yet is no NetBSD kernel up can strip: check --mirror, --version and --arch)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: tc.kernel,
				Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
			defer srv.Close()
			work := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "up", "--mirror", srv.Mirror(), "--cache", filepath.Join(work, "cache"), "rescue")
			cmd.Dir = work
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("up: %v, want exit status 1\n%s", err, stderr.String())
			}
			msg := stderr.String()
			// The path once on the error's line (the gzip error said it twice).
			path := filepath.Join(work, "cache", "9.3", "i386", "kernel", "netbsd-GENERIC.gz")
			_, line, _ := strings.Cut(msg, "smolvmm up: kstrip: ")
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "give an uncompressed") || strings.Count(line, path) != 1 {
				t.Errorf("up's error about the mirror's kernel:\n%s\nwant %q", msg, tc.want)
			}
		})
	}
}

// TestInUseNamesTheHolder: the error about an image a VM holds names the
// process holding its lock.
func TestInUseNamesTheHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vm, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := unix.Flock(int(vm.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	err = checkNotInUse(p)
	want := "image " + p + " is in use by a running VM: stop that VM before replacing the image (its lock is held by process " +
		strconv.Itoa(os.Getpid()) + " ("
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("checkNotInUse = %v\nwant the prefix %q", err, want)
	}
}

// TestEscapeHelp: Ctrl-A h prints the escape keys' help on the console's
// stderr, as QEMU does, and sends nothing to the guest. Ctrl-A s is listed
// only where it writes a snapshot: demo, which has no --snapshot, offered
// "C-a s ... to the --snapshot file". Its line says that under
// --snapshot-exit the VM then stops (it said nothing of it, and the VM ran
// on).
func TestEscapeHelp(t *testing.T) {
	for _, snapshots := range []bool{false, true} {
		for _, key := range []string{"h", "H", "?"} {
			var help bytes.Buffer
			quit := false
			r := &escapeReader{r: strings.NewReader("a\x01" + key + "b"), help: &help, quit: func() bool { quit = true; return true }}
			if snapshots {
				r.snapshot = func() {}
			}
			got, err := io.ReadAll(r)
			if err != nil || string(got) != "ab" || quit {
				t.Errorf("Ctrl-A %s: guest got %q (err %v, quit %v), want \"ab\"", key, got, err, quit)
			}
			if !strings.Contains(help.String(), "C-a x    quit smolvmm") || !strings.Contains(help.String(), "C-a h    print this help") {
				t.Errorf("Ctrl-A %s printed %q, want the help", key, help.String())
			}
			if got := strings.Contains(help.String(), "C-a s "); got != snapshots {
				t.Errorf("with snapshots %v, Ctrl-A %s printed %q: C-a s listed %v", snapshots, key, help.String(), got)
			}
			// Under --snapshot-exit a Ctrl-A s stops the VM (snapshotKey).
			if got := strings.Contains(help.String(), "with --snapshot-exit, the VM then stops: exit status 0"); got != snapshots {
				t.Errorf("with snapshots %v, Ctrl-A %s printed %q: what --snapshot-exit does said %v", snapshots, key, help.String(), got)
			}
		}
	}
}

// TestConsoleSnapshotKey: run and up have --snapshot, demo not; a
// terminal console serves Ctrl-A s (and lists it) only when asked to,
// as runVM asks for a command with --snapshot.
func TestConsoleSnapshotKey(t *testing.T) {
	for _, snapshots := range []bool{false, true} {
		pts := openPTY(t) // console_raw_test.go
		c, err := openConsole(pts, pts, snapshots)
		if err != nil {
			t.Fatal(err)
		}
		c.restore()
		if e, ok := c.in.(*escapeReader); !ok || (e.snapshot != nil) != snapshots {
			t.Errorf("openConsole(snapshots %v): input %T serves Ctrl-A s: %v", snapshots, c.in, ok && e.snapshot != nil)
		}
	}
	for _, tt := range []struct {
		cmd  string
		want bool
	}{{"run", true}, {"up", true}, {"demo", false}} {
		var cmd *cli.Command
		for _, c := range commands() {
			if c.Name == tt.cmd {
				cmd = c
			}
		}
		has := false
		for _, f := range cmd.Flags {
			has = has || f.Names()[0] == "snapshot"
		}
		if has != tt.want {
			t.Errorf("smolvmm %s has --snapshot: %v, want %v", tt.cmd, has, tt.want)
		}
	}
}

// TestKstripUnknownAdvice: kstrip's library says "ignore unknown names";
// the command's message names the flag that does it, but not when every
// keep name is unknown: --ignore-unknown would only reach the refusal of
// a strip that keeps nothing, which is said at once instead.
func TestKstripUnknownAdvice(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	// A kernel without virtio, as the g4u kernel of 2010.
	bare := testKernel(t, kstriptest.Options{Bits: 32, Entries: []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}}})
	hint := "(fix the names, or pass --ignore-unknown to go on without them)"
	for _, tt := range []struct {
		kern     string
		keep     string
		want     string
		withHint bool
	}{
		{kern, "mainbus,vioff", `keep name "vioff"`, true},
		{kern, "vioff", "no keep or enable name matches an entry of this kernel (vioff)", false},
		{bare, "vioif", "no keep or enable name matches an entry of this kernel (vioif)", false},
		{bare, "vioif,ld_virtio", "no keep or enable name matches an entry of this kernel (vioif, ld_virtio)", false},
	} {
		app := testApp([]*cli.Command{kstripCommand()}, io.Discard, io.Discard)
		err := app.Run([]string{"smolvmm", "kstrip", "--keep", tt.keep, "-o", filepath.Join(t.TempDir(), "out"), tt.kern})
		msg := advise(err)
		if exitCode(err) != 1 || !strings.Contains(msg, tt.want) || strings.Contains(msg, "--ignore-unknown") != tt.withHint ||
			(tt.withHint && !strings.Contains(msg, hint)) {
			t.Errorf("--keep %s: exit %d, advised %q; want %q, hint %q given: %v", tt.keep, exitCode(err), msg, tt.want, hint, tt.withHint)
		}
	}
}

// TestFetchSaysWhomItWaitsFor: smolvmm fetch, blocked by another process
// fetching the same release, names it, then finishes once it is gone.
func TestFetchSaysWhomItWaitsFor(t *testing.T) {
	bin := smolvmmBin(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel"),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	cache := t.TempDir()
	dir := filepath.Join(cache, "9.3", "i386")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "fetch", "--mirror", srv.Mirror(), "--cache", cache)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	want := "smolvmm fetch: waiting for process " + strconv.Itoa(os.Getpid()) + " ("
	if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, "which holds this release's cache lock\n") {
		t.Errorf("first line %q (%v), want %q...", line, err, want)
	}
	lock.Close()
	io.Copy(io.Discard, stderr) // to its exit, before Wait
	if err := cmd.Wait(); err != nil {
		t.Errorf("fetch after the wait: %v", err)
	}
}

// TestHelpNamesOwnFlags: a command's help (its description and its flags'
// lines) names only flags that command has, unless it names them as
// another command's ("run --jail", "smolvmm run --net"). up's -v spoke of
// --restore and demo's --jail of --net, which neither has.
func TestHelpNamesOwnFlags(t *testing.T) {
	// Long names only: a help's one-letter words are NetBSD's boot flags
	// as often as this program's (-a "-s console=com").
	flagRE := regexp.MustCompile(`(^|[^a-z0-9-])(--[a-z][a-z-]*[a-z])\b`)
	otherCmd := regexp.MustCompile(`\b(run|mkimg|kstrip|fetch|bench|up|net|demo) $`)
	for _, c := range commands() {
		names := flagNames(c.Flags)
		names["help"], names["h"] = true, true
		texts := []string{c.Description}
		for _, f := range c.Flags {
			if df, ok := f.(cli.DocGenerationFlag); ok {
				texts = append(texts, df.GetUsage())
			}
		}
		for _, text := range texts {
			for _, m := range flagRE.FindAllStringSubmatchIndex(text, -1) {
				flag := text[m[4]:m[5]]
				if names[strings.TrimLeft(flag, "-")] {
					continue
				}
				before := text[:m[4]]
				if other := otherCmd.FindStringSubmatch(before); other != nil && other[1] != c.Name {
					continue // another command's flag, named with it
				}
				t.Errorf("smolvmm %s --help names %s, which it lacks: %q", c.Name, flag, text[max(0, m[4]-60):min(len(text), m[5]+20)])
			}
		}
	}
}

// TestNotELFMessagesAgree: run -k and kstrip say the same of a file that
// is no ELF kernel, in one style: its first bytes quoted, then ELF's
// magic. run said `file starts with 68 65 6c 6c, not 7f 45 4c 46`, kstrip
// `the file starts with "hell", not "\x7fELF"`.
func TestNotELFMessagesAgree(t *testing.T) {
	const want = `the file starts with "hell", not "\x7fELF"`
	junk := []byte("hello, no kernel here")
	_, err := bootelf.ReadHeader(bytes.NewReader(junk), uint64(len(junk)))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("bootelf (run -k): %v\nwant it to say %s", err, want)
	}
	_, err = kstrip.Parse(junk)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("kstrip: %v\nwant it to say %s", err, want)
	}
}

// TestModulePathNamedOnce: a --module file that cannot be read is named
// once. demo --module /dev/null said "--module /dev/null: /dev/null is a
// character device: not a regular file".
func TestModulePathNamedOnce(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexist")
	// A kernel that is there: a missing one is said first.
	kernel := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--module", "/dev/null"}, "smolvmm demo: --module /dev/null is a character device: not a regular file (check the path given with --module)"},
		{[]string{"demo", "--module", missing}, "smolvmm demo: --module " + missing + ": no such file or directory (check the path given with --module)"},
		{[]string{"run", "-k", kernel, "--net", "none", "--module", "/dev/null"}, "smolvmm run: --module /dev/null is a character device: not a regular file (check the path given with --module)"},
		// With ,args or a type after it the path is named as well.
		{[]string{"demo", "--module", "/dev/null,kmod"}, "smolvmm demo: --module /dev/null,kmod: /dev/null is a character device: not a regular file (check the path given with --module)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, status := runCLI(t, tt.args...)
			if msg := strings.TrimSpace(stderr); status != 1 || msg != tt.want {
				t.Errorf("status %d, stderr %q; want 1 and %q", status, msg, tt.want)
			}
		})
	}
}

// TestNewUserMessages: what a new user's audit (issue 16, item 4) found
// said badly, each said once, with what to change: a missing output
// directory in one wording for every command, a missing input file with
// the flag to check, sizes in MiB with the remedy, no doubled words.
func TestNewUserMessages(t *testing.T) {
	dir := t.TempDir()
	nodir := filepath.Join(dir, "nodir")
	missing := filepath.Join(dir, "nonexist")
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	sparse := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	big := sparse("big.k", 600<<20)
	bigmod := sparse("bigmod", 200<<20)
	truncated := filepath.Join(dir, "ktr")
	whole := mustRead(t, kern)
	if err := os.WriteFile(truncated, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	empty := sparse("empty", 0)
	// A service whose etc/rc is a FIFO.
	svcs := filepath.Join(dir, "svcs")
	if err := os.MkdirAll(filepath.Join(svcs, "b", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(svcs, "b", "etc", "rc"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An image a VM (here, this process) holds.
	locked := sparse("locked.img", 1<<20)
	lf, err := os.Open(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	bigData := filepath.Join(dir, "bigdata")
	if err := os.Mkdir(bigData, 0o755); err != nil {
		t.Fatal(err)
	}
	sparse(filepath.Join("bigdata", "f"), 40<<20)
	noDir := func(flag, path string) string {
		return flag + " " + path + ": no directory " + filepath.Dir(path) + " to write it in (create it first, or pick another " + flag + ")"
	}
	noFile := func(flag, path string) string {
		return flag + " " + path + ": no such file or directory (check the path given with " + flag + ")"
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string // in stderr
		once   []string // in stderr exactly once
		not    []string // not in stderr
	}{
		// A missing output directory, in mkimg's wording for every output.
		{"mkimg -i", []string{"mkimg", "-i", filepath.Join(nodir, "x.img")}, 1,
			[]string{noDir("-i", filepath.Join(nodir, "x.img"))}, nil, nil},
		{"kstrip -o", []string{"kstrip", "-o", filepath.Join(nodir, "x"), kern}, 1,
			[]string{noDir("-o", filepath.Join(nodir, "x"))}, []string{nodir + "/"}, []string{".tmp-"}},
		{"run --snapshot", []string{"run", "-k", kern, "--net", "none", "--snapshot", filepath.Join(nodir, "s")}, 1,
			[]string{noDir("--snapshot", filepath.Join(nodir, "s"))}, nil, []string{"its directory"}},
		{"bench --json", []string{"bench", "-k", kern, "--json", filepath.Join(nodir, "x.json")}, 1,
			[]string{noDir("--json", filepath.Join(nodir, "x.json"))}, nil, nil},
		{"net --socket", []string{"net", "--socket", filepath.Join(nodir, "s")}, 1,
			[]string{"--socket " + filepath.Join(nodir, "s") + ": no directory " + nodir + " to listen in (create it first, or pick another --socket)"}, nil, nil},
		// A missing input file names its flag and what to check.
		{"kstrip KERNEL", []string{"kstrip", "-o", filepath.Join(dir, "k1"), missing}, 1,
			[]string{"kernel " + missing + ": no such file or directory (check the path given as KERNEL)"}, nil, nil},
		{"kstrip -K", []string{"kstrip", "-K", missing, "-o", filepath.Join(dir, "k1"), kern}, 1,
			[]string{noFile("-K", missing)}, nil, nil},
		{"mkimg -x", []string{"mkimg", "-x", missing, "-i", filepath.Join(dir, "a.img")}, 1,
			[]string{noFile("-x", missing)}, nil, []string{"stat"}},
		{"mkimg --data", []string{"mkimg", "--data", missing, "-i", filepath.Join(dir, "a.img")}, 1,
			[]string{noFile("--data", missing)}, nil, []string{"stat"}},
		{"mkimg --service-dir", []string{"mkimg", "--service-dir", missing, "-i", filepath.Join(dir, "a.img")}, 1,
			[]string{noFile("--service-dir", missing)}, nil, []string{"stat"}},
		{"run -d", []string{"run", "-k", kern, "--net", "none", "-d", missing}, 1,
			[]string{noFile("-d", missing)}, nil, nil},
		{"up -d", []string{"up", "--cache", cache, "-d", missing, "rescue"}, 1,
			[]string{noFile("-d", missing)}, nil, nil},
		{"run --ready", []string{"run", "-k", kern, "--ready", "("}, 2,
			[]string{`--ready "(": not a regular expression: missing closing )`}, []string{`"("`}, []string{"error parsing regexp"}},
		{"bench --ready", []string{"bench", "-k", kern, "--ready", "("}, 2,
			[]string{`--ready "(": not a regular expression: missing closing )`}, []string{`"("`}, []string{"error parsing regexp"}},
		// Said once.
		{"run -d locked", []string{"run", "-k", kern, "--net", "none", "-d", locked}, 1,
			[]string{"disk image " + locked + " is in use by another VM: process " + strconv.Itoa(os.Getpid()) + " (",
				") holds its lock (stop that VM, or give ,ro after the image's -d in both, or use a copy of the image)"},
			[]string{"holds its lock"}, []string{"temporarily unavailable", "which only read-only opens share"}},
		{"demo --boot", []string{"demo", "--boot", "foo"}, 2,
			[]string{"--boot foo: unknown boot protocol (want auto, multiboot or netbsd)"}, []string{"foo"}, nil},
		{"run --boot", []string{"run", "-k", kern, "--boot", "foo"}, 2,
			[]string{"--boot foo: unknown boot protocol (want auto, multiboot or netbsd)"}, []string{"foo"}, nil},
		{"up no service", []string{"up", "--cache", cache, "nosuch"}, 1,
			[]string{`smolvmm up: no service "nosuch"`}, []string{`"nosuch"`}, []string{"service: "}},
		{"demo --user", []string{"demo", "--user", "nosuchuser"}, 2,
			[]string{"--user nosuchuser: no such user (give a user"}, []string{"nosuchuser"}, nil},
		{"up --service-dir", []string{"up", "--cache", cache, "--service-dir", missing, "rescue"}, 1,
			[]string{noFile("--service-dir", missing)}, []string{missing}, []string{"service:"}},
		{"run --share", []string{"run", "-k", kern, "--net", "none", "--share", missing}, 1,
			[]string{noFile("--share", missing)}, []string{missing}, []string{"data directory"}},
		// Sizes in MiB, with the remedy.
		{"kernel too large", []string{"run", "-k", big, "--net", "none"}, 1,
			[]string{big + " is 600 MiB, more than the 512 MiB", "no kernel may be larger"}, nil, []string{"629145600"}},
		{"module too large", []string{"run", "-k", kern, "-m", "64", "--net", "none", "--module", bigmod}, 1,
			[]string{bigmod + " is 200 MiB, more than the 64 MiB", "raise -m"}, nil, []string{"209715200"}},
		// A truncated ELF is said to be one.
		{"kstrip truncated", []string{"kstrip", "--list", truncated}, 1,
			[]string{"truncated", fmt.Sprintf("%d bytes", len(whole)/2)}, nil, []string{"not an ELF file"}},
		// An empty kernel in run's words; kstrip said `the file starts
		// with "", not "\x7fELF"`.
		{"kstrip empty", []string{"kstrip", empty}, 1,
			[]string{"smolvmm kstrip: " + empty + ": the file is empty (give an uncompressed or gzipped NetBSD kernel)"}, nil, []string{"starts with"}},
		{"run -k empty", []string{"run", "-k", empty, "--net", "none"}, 1,
			[]string{"smolvmm run: read kernel: " + empty + ": the file is empty (check the path given with -k)"}, nil, nil},
		// The full path, and what etc/rc must be.
		{"mkimg service etc/rc a FIFO", []string{"mkimg", "--service-dir", svcs, "-s", "b", "-i", filepath.Join(dir, "b.img")}, 1,
			[]string{"smolvmm mkimg: service " + filepath.Join(svcs, "b") + " is not valid: " + filepath.Join(svcs, "b", "etc", "rc") + " is a FIFO, not a regular file: etc/rc must be a regular file"}, nil, nil},
		// A data image's minimum, decidable from the flags.
		{"mkimg --data -m 1", []string{"mkimg", "--data", data, "-m", "1", "-i", filepath.Join(dir, "d.img")}, 2,
			[]string{"-m 1: a FAT32 data image is at least 34 MiB (give -m 34 or more, or -m auto)"}, nil, nil},
		// And its maximum: it was status 1 from the builder, though -m
		// said it takes up to 1048576.
		{"mkimg --data -m 300000", []string{"mkimg", "--data", data, "-m", "300000", "-i", filepath.Join(dir, "d.img")}, 2,
			[]string{"smolvmm mkimg: -m 300000: a FAT32 data image is at most 262144 MiB (give -m 262144 or less, or -m auto)"}, nil, nil},
		{"mkimg --data --fs fat32 -m 262145", []string{"mkimg", "--data", data, "--fs", "fat32", "-m", "262145", "-i", filepath.Join(dir, "d.img")}, 2,
			[]string{"-m 262145: a FAT32 data image is at most 262144 MiB"}, nil, nil},
		{"mkimg --data -m 34", []string{"mkimg", "--data", bigData, "-m", "34", "-i", filepath.Join(dir, "d.img")}, 1,
			[]string{"data image of 34 MiB is too small: " + bigData + " needs at least ", " MiB (give -m ", " or more, or -m auto)"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "demo --user" && os.Geteuid() != 0 {
				t.Skip("--user needs root")
			}
			if tt.name == "run -d locked" && !kvmUsable() {
				t.Skip("needs /dev/kvm")
			}
			_, stderr, status := runCLI(t, tt.args...)
			bad := status != tt.status
			for _, w := range tt.want {
				bad = bad || !strings.Contains(stderr, w)
			}
			for _, w := range tt.once {
				bad = bad || strings.Count(stderr, w) != 1
			}
			for _, w := range tt.not {
				bad = bad || strings.Contains(stderr, w)
			}
			if bad {
				t.Errorf("smolvmm %s: status %d, stderr:\n%s\nwant status %d, %q, once %q, not %q",
					strings.Join(tt.args, " "), status, stderr, tt.status, tt.want, tt.once, tt.not)
			}
		})
	}
}
