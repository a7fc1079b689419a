package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
)

// nofileAdvice is the advice for EMFILE under RLIMIT_NOFILE limit.
func nofileAdvice(limit int) string {
	return "(the process's limit of open files (RLIMIT_NOFILE, " + strconv.Itoa(limit) + ") is reached: raise it with ulimit -n, or LimitNOFILE= in a systemd unit)"
}

// TestOutOfDescriptorsAdvice: a command that runs out of descriptors
// (EMFILE) at RLIMIT_NOFILE 12 to 20, or with a few inherited, says the
// limit and how to raise it, and blames nothing else: mkimg's check of
// its output said "give -i a path in a directory you can write", run,
// demo and net said nothing, and bench said "smolvmm's boots failed"
// where it started no VM. Each command must meet EMFILE at one limit at
// least, or the test proves nothing of it.
func TestOutOfDescriptorsAdvice(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	data := oneFileDir(t, dir) // nofile_test.go
	type cmd struct {
		name  string
		args  []string
		extra int    // descriptors inherited at limit 12, instead of limits 12 to 20
		must  string // what one EMFILE run at least said
		not   string // what none may say
	}
	cmds := []cmd{
		{name: "mkimg", args: []string{"mkimg", "-f", "--data", data, "-i", "y.img"}, extra: 5,
			must: "smolvmm mkimg: image y.img: cannot be written: ", not: "give -i"},
		{name: "net", args: []string{"net", "--socket", filepath.Join(dir, "n.sock")}},
	}
	if kvmUsable() {
		counter := guests.ForTest(t, "counter")
		vblk := guests.ForTest(t, "vblk")
		cmds = append(cmds,
			cmd{name: "run", args: []string{"run", "-k", counter, "--net", "none"}},
			cmd{name: "run --snapshot", args: []string{"run", "-k", counter, "--net", "none", "--snapshot", "r.snap", "--snapshot-exit"}},
			cmd{name: "run --share", args: []string{"run", "-k", vblk, "--share", data, "--net", "none"}},
			cmd{name: "demo", args: []string{"demo"}},
			cmd{name: "bench", args: []string{"bench", "-n", "1", "--warmup", "0", "--net", "none"},
				must: "smolvmm bench: the bench ran out of file descriptors before it could start smolvmm's VM; the results above say where (", not: "smolvmm's boots failed"})
	}
	for _, c := range cmds {
		t.Run(c.name, func(t *testing.T) {
			met := 0
			said := false
			try := func(limit, extra int) {
				status, stdout, stderr := runNofileTimed(t, bin, limit, extra, c.args)
				// Refused at start (TestInheritedFullTable), or no EMFILE
				// (bench's results, on stdout, say it).
				if !strings.Contains(stdout+stderr, "too many open files") || strings.Contains(stderr, "descriptors at start") {
					return
				}
				met++
				last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
				if status != 1 || !strings.HasSuffix(last, nofileAdvice(limit)+"\n") || c.not != "" && strings.Contains(stderr, c.not) {
					t.Errorf("limit %d, %d inherited: status %d, stderr:\n%s\nwant status 1 and the last line ending %s", limit, extra, status, stderr, nofileAdvice(limit))
				}
				if c.must != "" && strings.HasPrefix(last, c.must) {
					said = true
				}
			}
			if c.extra > 0 {
				for extra := range c.extra + 1 {
					try(lowestNofile+4, extra)
				}
			} else {
				for limit := lowestNofile; limit <= 20; limit++ {
					try(limit, 0)
				}
			}
			if met == 0 {
				t.Fatal("no limit tried ran it out of descriptors")
			}
			if c.must != "" && !said {
				t.Errorf("no run said %q", c.must)
			}
		})
	}
}

// lowestNofile is the lowest RLIMIT_NOFILE TestOutOfDescriptorsAdvice
// tries: the standard three, the runtime's poller's two and more.
const lowestNofile = 8

// runNofileTimed is runNofile, but kills bin after 10 s, as a command
// that found room for all it needs may run on (net), and returns its
// stdout too.
func runNofileTimed(t *testing.T, bin string, limit, extra int, args []string) (status int, stdout, stderr string) {
	t.Helper()
	c := exec.Command("/bin/sh", append([]string{"-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(limit), bin}, args...)...)
	c.Dir = t.TempDir()
	for range extra {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c.ExtraFiles = append(c.ExtraFiles, f)
	}
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	c.WaitDelay = time.Second
	timer := time.AfterFunc(10*time.Second, func() { c.Process.Kill() })
	defer timer.Stop()
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return c.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestWritableAdviceLimits: a limit met while proving an output
// writable is said as that limit, not as the directory's fault.
func TestWritableAdviceLimits(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{syscall.EMFILE, "the process's limit of open files (RLIMIT_NOFILE, "},
		{syscall.ENFILE, "the system's table of open files is full: raise fs.file-max with sysctl"},
		{syscall.EFBIG, "the file system that holds it takes no larger file: write it on another file system"},
		{syscall.ENOSPC, "free some space there, or give -i a path on another file system"},
		{syscall.EACCES, "give -i a path in a directory you can write, or cd to one"},
	}
	for _, tt := range tests {
		err := &atomicfile.DirError{Dir: ".", Err: &os.PathError{Op: "dup", Path: ".x.tmp", Err: tt.err}}
		got := writableAdvice("image x.img", ".", err)
		var fsize syscall.Rlimit
		if tt.err == syscall.EFBIG && (syscall.Getrlimit(syscall.RLIMIT_FSIZE, &fsize) != nil || fsize.Cur != ^uint64(0)) {
			// The test's own limit, if any, is the one said.
			tt.want = "a file-size limit of "
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("%v: %q, want %q...", tt.err, got, tt.want)
		}
		// Said once: the table adds no second advice to it.
		said := "image x.img: cannot be written: (" + got + ")"
		if msg := advise(&fileError{said, err}); msg != said {
			t.Errorf("%v: advised again: %s", tt.err, msg)
		}
	}
}

// TestFileSizeLimitAdvice: a file cut short by RLIMIT_FSIZE (EFBIG, "file
// too large") is said with the limit and how to raise it, by every
// command that writes a file larger than 1 MiB: it was said as nothing.
func TestFileSizeLimitAdvice(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit (util-linux) to set RLIMIT_FSIZE with")
	}
	bin := smolvmmBin(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(big, "f"), bytes.Repeat([]byte("x"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: bytes.Repeat([]byte("k"), 2<<20),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	tests := []struct {
		name string
		args []string
		kvm  bool
	}{
		{"mkimg", []string{"mkimg", "-f", "--data", big, "-i", filepath.Join(dir, "z.img")}, false},
		{"fetch", []string{"fetch", "--mirror", srv.Mirror(), "--cache", filepath.Join(dir, "cache")}, false},
		{"run --share", []string{"run", "-k", "VBLK", "--share", big, "--net", "none"}, true},
		{"run --snapshot", []string{"run", "-k", "COUNTER", "--net", "none", "--snapshot", filepath.Join(dir, "s.snap"), "--snapshot-exit"}, true},
	}
	const want = "file too large (a file-size limit of 1 MiB (RLIMIT_FSIZE) is set: raise it with ulimit -f, or LimitFSIZE= in a systemd unit)\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm && !kvmUsable() {
				t.Skip("no usable /dev/kvm")
			}
			for i, a := range tt.args {
				switch a {
				case "VBLK":
					tt.args[i] = guests.ForTest(t, "vblk")
				case "COUNTER":
					tt.args[i] = guests.ForTest(t, "counter")
				}
			}
			status, stderr := runLimited(t, []string{prlimit, fmt.Sprintf("--fsize=%d", 1<<20)}, bin, tt.args...)
			if status != 1 || !strings.HasSuffix(stderr, want) {
				t.Fatalf("status %d, stderr:\n%s\nwant 1, ending %q", status, stderr, want)
			}
		})
	}
}

// TestShareFullTMPDIR: --share on a full TMPDIR says that TMPDIR's file
// system is full and to set TMPDIR elsewhere: it said "write the image
// elsewhere", which no flag does.
func TestShareFullTMPDIR(t *testing.T) {
	if !kvmUsable() {
		t.Skip("no usable /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	bin := smolvmmBin(t)
	tmp := t.TempDir()
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount a 1 MiB tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(tmp, syscall.MNT_DETACH) })
	// Filled to its last block.
	f, err := os.Create(filepath.Join(tmp, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 2<<20))
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v", err)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(bin, "run", "-k", guests.ForTest(t, "vblk"), "--share", data, "--net", "none")
	c.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	err = c.Run()
	prefix := "smolvmm run: --share " + data + ": the file system of " + tmp + ", where its image is built (TMPDIR), is full: "
	const suffix = ": no space left on device (free some space there, or set TMPDIR to a directory on a file system with room)\n"
	if exitCode := c.ProcessState.ExitCode(); exitCode != 1 || !strings.HasPrefix(stderr.String(), prefix) || !strings.HasSuffix(stderr.String(), suffix) || strings.Contains(stderr.String(), "write the image elsewhere") {
		t.Fatalf("%v, stderr:\n%s\nwant status 1, %q...%q", err, stderr.String(), prefix, suffix)
	}
}

// TestGuestMemoryLimitAdvice: guest memory the host refuses under
// RLIMIT_AS or RLIMIT_DATA is said with the limit and how to raise it; a
// restore, whose memory -m does not change, is not told to use a smaller
// -m, but to snapshot a smaller VM. A restore said nothing, a boot only
// "use a smaller -m".
func TestGuestMemoryLimitAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("no usable /dev/kvm")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit (util-linux) to set RLIMIT_AS and RLIMIT_DATA with")
	}
	bin := smolvmmBin(t)
	counter := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "s.snap")
	if out, err := exec.Command(bin, "run", "-k", counter, "-m", "128", "--net", "none", "--snapshot", snap, "--snapshot-exit").CombinedOutput(); err != nil {
		t.Fatalf("taking the snapshot: %v\n%s", err, out)
	}
	tests := []struct {
		name  string
		limit string
		args  []string
		want  string
	}{
		{"boot, RLIMIT_AS", "--as=838860800", []string{"run", "-k", counter, "-m", "1024", "--net", "none"},
			"smolvmm run: mmap guest memory: cannot allocate memory (use a smaller -m, or raise RLIMIT_AS, now 800 MiB (ulimit -v, or LimitAS= in a systemd unit))\n"},
		{"boot, RLIMIT_DATA", "--data=314572800", []string{"run", "-k", counter, "-m", "512", "--net", "none"},
			"smolvmm run: mmap guest memory: cannot allocate memory (use a smaller -m, or raise RLIMIT_DATA, now 300 MiB (ulimit -d, or LimitDATA= in a systemd unit))\n"},
		{"restore, RLIMIT_DATA", "--data=104857600", []string{"run", "--restore", snap, "--net", "none"},
			"smolvmm run: restore: snapshot " + snap + ": mmap memory section: cannot allocate memory (the host refused the memory of the snapshot's guest, whose size -m cannot change: raise RLIMIT_DATA, now 100 MiB (ulimit -d, or LimitDATA= in a systemd unit), or snapshot a VM with a smaller -m)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stderr := runLimited(t, []string{prlimit, tt.limit}, bin, tt.args...)
			if status != 1 || stderr != tt.want {
				t.Fatalf("status %d, stderr:\n%s\nwant 1,\n%s", status, stderr, tt.want)
			}
		})
	}
}
