package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// buildUpGuest builds the guests package's "up" guest: a multiboot kernel
// that carries a NetBSD i386 cfdata table, prints its entries' states,
// reads the ext2 superblock from the virtio disk and resets.
func buildUpGuest(t *testing.T) []byte {
	t.Helper()
	path := guests.ForTest(t, "up")
	elf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return elf
}

// upNeedKVM skips when /dev/kvm cannot be opened: up checks it before it
// downloads, and its run step needs it.
func upNeedKVM(t *testing.T) {
	t.Helper()
	if !kvmUsable() {
		t.Skip("KVM unusable here: up checks /dev/kvm before its download, and its run step needs it")
	}
}

// TestUpEndToEnd runs the whole chain against a local mirror: fetch the
// gzipped test kernel and a tiny rescue set, kstrip the kernel, build
// rescue.img with the embedded rescue service, boot it on KVM; the guest
// prints the ext2 magic it read from its virtio disk. A second run does
// no HTTP request, no strip and no build.
func TestUpEndToEnd(t *testing.T) {
	upNeedKVM(t)
	kernel := buildUpGuest(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(kernel),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	f := &fetch.Fetcher{Mirror: srv.Mirror(), Cache: t.TempDir()}
	image := filepath.Join(t.TempDir(), "rescue.img")

	var console *guests.Console
	var exit vmm.Exit
	run := func(ctx context.Context, kernel, image string) error {
		console = &guests.Console{}
		m, err := vmm.New(vmm.Config{Kernel: kernel, Disks: []blk.Spec{{Path: image}}, MemoryMiB: 16, Console: console})
		if err != nil {
			return err
		}
		defer m.Close()
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		exit, err = m.Run(ctx)
		return err
	}
	d := newUpDeps(f, "9.3", "i386", run)

	for i, want := range []struct {
		reqs int
		log  []string
	}{
		{4, []string{"netbsd-GENERIC.gz: downloaded", "rescue.tgz: downloaded", "kstrip  ", "disabled", "mkimg   built"}},
		{0, []string{"netbsd-GENERIC.gz: cached", "kstrip  cached", "rescue.img is up to date"}},
	} {
		srv.ResetLog()
		var log bytes.Buffer
		start := time.Now()
		if _, err := up(context.Background(), &log, d, upOptions{Service: "rescue", Image: image}); err != nil {
			t.Fatalf("run %d: %v\nlog:\n%s", i+1, err, log.String())
		}
		t.Logf("run %d took %s:\n%s", i+1, time.Since(start), log.String())
		if n := len(srv.Requests()); n != want.reqs {
			t.Errorf("run %d: %d HTTP requests, want %d", i+1, n, want.reqs)
		}
		for _, s := range want.log {
			if !strings.Contains(log.String(), s) {
				t.Errorf("run %d: log lacks %q", i+1, s)
			}
		}
		out := console.String()
		// kstrip's default keep list disables the floppy, keyboard and IDE
		// entries (NOTFOUND becomes 4, STAR becomes 3) and keeps the rest.
		for _, s := range []string{
			"upguest: multiboot magic 0x2badb002",
			"cfdata: com0 state 0", "cfdata: virtio* state 2", "cfdata: ld* state 2",
			"cfdata: fdc0 state 4", "cfdata: pckbc0 state 4", "cfdata: wd* state 3", "cfdata: pciide* state 3",
			"upguest: virtio-blk at 00:",
			"upguest: ext2 magic 0xef53",
			"upguest: done",
		} {
			if !strings.Contains(out, s) {
				t.Errorf("run %d: console lacks %q:\n%s", i+1, s, out)
			}
		}
		if exit.Reason != vmm.ExitReset {
			t.Errorf("run %d: guest ended with %s, want reset", i+1, exit.Reason)
		}
	}
}

// TestUpCommandEndToEnd runs the smolvmm binary itself: `smolvmm up rescue`
// against the local mirror, with the console on its stdout, the step log
// on its stderr and the guest's reset as exit status 0.
func TestUpCommandEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra []string
	}{
		{"plain", nil},
		// The VMM runs in namespaces of its own, on what up fetched and
		// built (-v: the jailed VMM says it is PID 1 there).
		{"jail", []string{"--jail", "-v"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.extra != nil {
				needJail(t) // jail_test.go
			}
			upCommandEndToEnd(t, tt.extra)
		})
	}
}

func upCommandEndToEnd(t *testing.T, extra []string) {
	upNeedKVM(t)
	kernel := buildUpGuest(t)
	bin := smolvmmBin(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(kernel),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	work := t.TempDir()
	cache := filepath.Join(work, "cache")

	for run := 1; run <= 2; run++ {
		srv.ResetLog()
		if run == 2 {
			// As `make build` does before every `make rescue`: a newer
			// binary alone does not replace the image the guest wrote to.
			later := time.Now().Add(time.Minute)
			if err := os.Chtimes(bin, later, later); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		args := append([]string{"up", "--mirror", srv.Mirror(), "--cache", cache, "-m", "16"}, extra...)
		cmd := exec.CommandContext(ctx, bin, append(args, "rescue")...)
		cmd.Dir = work // rescue.img goes to the current directory
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v\nstdout:\n%s\nstderr:\n%s", run, err, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), "upguest: ext2 magic 0xef53") {
			t.Errorf("run %d: console lacks the ext2 magic:\n%s", run, stdout.String())
		}
		steps := []string{"up: service", "up: fetch", "up: kstrip", "up: mkimg", "up: run"}
		if slices.Contains(extra, "--jail") {
			steps = append(steps, "smolvmm: jailed: the VMM is PID 1 of a PID namespace of its own")
		}
		for _, s := range steps {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("run %d: step log lacks %q:\n%s", run, s, stderr.String())
			}
		}
		if _, err := os.Stat(filepath.Join(work, "rescue.img")); err != nil {
			t.Errorf("run %d: no rescue.img in the current directory: %v", run, err)
		}
		if run == 2 && !strings.Contains(stderr.String(), "rescue.img is up to date") {
			t.Errorf("second run rebuilt the image after the binary changed:\n%s", stderr.String())
		}
		if n := len(srv.Requests()); run == 2 && n != 0 {
			t.Errorf("second run made %d HTTP requests", n)
		}
	}
}

// TestUpChecksRunInputsFirst: up refuses run's inputs before any download,
// strip or build. The mirror is a closed port: reaching the download
// would say so instead of naming the input.
func TestUpChecksRunInputsFirst(t *testing.T) {
	bin := smolvmmBin(t)
	work := testsock.Dir(t)
	nonempty := filepath.Join(work, "nonempty")
	if err := os.MkdirAll(filepath.Join(nonempty, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "rescue.img"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("rescue.img", filepath.Join(work, "link.img")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(work, "ff"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
		root   bool
	}{
		{"host port in use", []string{"-p", fmt.Sprintf("%d:80", busyPort)}, 1, fmt.Sprintf("port forward tcp:127.0.0.1:%d:80: the host port is already in use", busyPort), false},
		{"host address not the host's", []string{"-p", "192.0.2.1:8080:80"}, 1, "port forward tcp:192.0.2.1:8080:80: the host address is not one of this host's addresses", false},
		{"tap not a tap", []string{"--net", "tap:lo"}, 1, "tap lo: TUNSETIFF: interface lo exists but is not a tap device", true},
		{"missing share", []string{"--share", "nodir"}, 1, "--share nodir: no such file or directory (check the path given with --share)", false},
		{"share not a directory", []string{"--share", "rescue.img"}, 1, "--share rescue.img is a regular file, not a directory: give a directory to share", false},
		{"missing module", []string{"--module", "nonexist,kmod"}, 1, "--module nonexist,kmod: open nonexist: no such file", false},
		{"module a directory", []string{"--module", "nonempty"}, 1, "nonempty is a directory", false},
		{"chroot not empty", []string{"--chroot", "nonempty"}, 1, "not empty (it holds x)", true},
		{"own image as -d", []string{"-d", "rescue.img"}, 2, "-d rescue.img: this is the image up builds", false},
		{"own image through a link", []string{"-d", "link.img,ro"}, 2, "-d link.img: this is the image up builds", false},
		{"own image by -i and -d", []string{"-i", "other.img", "-d", "./other.img"}, 2, "-d ./other.img: this is the image up builds", false},
		// As run opens them (virtio/blk), not only found by a stat.
		{"disk a FIFO", []string{"-d", "ff"}, 1, "ld1: disk image ff: not a regular file (it is a FIFO)", false},
		{"disk a directory", []string{"-d", "nonempty"}, 1, "ld1: disk image nonempty: not a regular file (it is a directory) (give a raw image file)", false},
		{"read-only disk a directory", []string{"-d", "nonempty,ro"}, 1, "ld1: disk image nonempty: not a regular file (it is a directory)", false},
		{"snapshot a device", []string{"--snapshot", "/dev/full"}, 1, "--snapshot /dev/full is a character device, not a regular file", false},
		{"snapshot in a missing directory", []string{"--snapshot", "nodir/s"}, 1, "--snapshot nodir/s: no directory nodir to write it in", false},
		{"shared network not running", []string{"--net", "user:" + filepath.Join(work, "nonet.sock")}, 1, "shared network is not running", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root: --chroot, a tap")
			}
			if _, err := os.Stat("/dev/net/tun"); err != nil && slices.Contains(tt.args, "tap:lo") {
				t.Skipf("no tap here: %v", err)
			}
			args := append([]string{"up", "--mirror", "http://127.0.0.1:1/pub", "--cache", filepath.Join(work, "cache")}, tt.args...)
			cmd := exec.Command(bin, append(args, "rescue")...)
			cmd.Dir = work
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tt.status {
				t.Fatalf("exit %v, want status %d; stderr: %s", err, tt.status, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "up: fetch") {
				t.Errorf("fetched before refusing: %s", stderr.String())
			}
		})
	}
}

// TestUpSnapshot: up takes run's --snapshot and --snapshot-exit (it had
// neither, though the README said run's flags work with up): the service
// VM is snapshotted once ready, and run --restore continues it on up's
// image. A --snapshot naming that image is refused before any download.
func TestUpSnapshot(t *testing.T) {
	bin := smolvmmBin(t)
	work := t.TempDir()
	_, stderr, status := runCLIIn(t, work, "up", "--mirror", "http://127.0.0.1:1/pub", "--cache", filepath.Join(work, "cache"),
		"--snapshot", "rescue.img", "rescue")
	if want := "--snapshot rescue.img is the image up boots (rescue.img)"; status != 2 || !strings.Contains(stderr, want) {
		t.Errorf("up --snapshot on its own image: status %d, stderr %q; want 2 and %q", status, stderr, want)
	}
	upNeedKVM(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(buildUpGuest(t)),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	snap := filepath.Join(work, "rescue.snap")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--mirror", srv.Mirror(), "--cache", filepath.Join(work, "cache"), "-m", "16",
		"--net", "none", "--ready", "ext2 magic", "--snapshot", snap, "--snapshot-exit", "-v", "rescue")
	cmd.Dir = work
	var stdout, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("up --snapshot: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "smolvmm: snapshot "+snap+": ") || !strings.Contains(errOut.String(), "guest snapshot") {
		t.Fatalf("up --snapshot's stderr lacks the snapshot or the exit reason:\n%s", errOut.String())
	}
	out, stderr, status := runCLIIn(t, work, "run", "--restore", snap, "-v")
	if status != 0 || strings.Contains(out, "ext2 magic") {
		t.Errorf("run --restore of up's snapshot: status %d (want 0: the guest resets after its ready line), stdout %q\nstderr:\n%s", status, out, stderr)
	}
}

// TestUpJailErrorPrefix: up --jail's VM is run's, in a process of its
// own, yet its errors are said as up's, as without --jail: a snapshot at
// ready that fails (the test hook's full file system) with --snapshot-exit
// ends up with "smolvmm up: --snapshot ...", not "smolvmm run: ...".
func TestUpJailErrorPrefix(t *testing.T) {
	needJail(t) // jail_test.go
	bin := smolvmmBin(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(buildUpGuest(t)),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	work := t.TempDir()
	snap := filepath.Join(work, "rescue.snap")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--mirror", srv.Mirror(), "--cache", filepath.Join(work, "cache"), "-m", "16",
		"--net", "none", "--ready", "ext2 magic", "--snapshot", snap, "--snapshot-exit", "--jail", "rescue")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), testHookEnv+"=snapshot-full")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("up --jail with a full file system: %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "smolvmm up: --snapshot "+snap+": ") || strings.Contains(stderr.String(), "smolvmm run: --snapshot") {
		t.Errorf("the jailed VMM's error is not said as up's:\n%s", stderr.String())
	}
}
