package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestSignalDuringSetup signals run while it builds a --share image (a
// sparse GiB takes minutes to copy into FAT32): the signals that stop a
// running guest must stop the setup too, with status 130 and no image or
// temporary file left behind. Before, SIGTERM killed it mid-build (status
// 143, both files left) and a signal while the kernel loaded was ignored.
func TestSignalDuringSetup(t *testing.T) {
	bin := smolvmmBin(t)
	kernel := spinKernel(t)
	share := hugeDir(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(bin, "run", "-k", kernel, "--net", "none", "--share", share)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			signalBuild(t, cmd, tmp, sig)
		})
	}
}

// TestSignalDuringDataImage: mkimg --data stops on SIGINT, SIGTERM or
// SIGHUP as well, with no image or temporary file left (it was killed
// mid-build; SIGHUP, the terminal closed, still killed it, status 129,
// leaving the temporary file).
func TestSignalDuringDataImage(t *testing.T) {
	bin := smolvmmBin(t)
	data := hugeDir(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(bin, "mkimg", "--data", data, "-i", filepath.Join(out, "data.img"))
			signalBuild(t, cmd, out, sig)
		})
	}
}

// TestSignalDuringKstrip: kstrip -o stops on SIGINT, SIGTERM or SIGHUP
// while it writes the kernel, status 130, with no output or temporary
// file left (it was killed mid-write, its temporary file left behind).
func TestSignalDuringKstrip(t *testing.T) {
	bin := smolvmmBin(t)
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	// Incompressible bytes after the ELF image: seconds of gzip, time
	// enough to signal the write.
	f, err := os.OpenFile(kern, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 96<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(bin, "kstrip", "-o", filepath.Join(out, "k.gz"), kern)
			signalBuild(t, cmd, out, sig)
		})
	}
}

// hugeDir is a directory holding a sparse GiB: minutes to copy into a
// FAT32 image, time enough to signal the build.
func hugeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return dir
}

// signalBuild starts cmd, sends sig once the image's temporary file exists
// in dir, and wants status 130 and dir left empty.
func signalBuild(t *testing.T, cmd *exec.Cmd, dir string, sig syscall.Signal) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The build has started once its temporary file exists.
	deadline := time.After(60 * time.Second)
	for !buildStarted(t, dir) {
		select {
		case err := <-done:
			t.Fatalf("ended (%v) before the build started: %s", err, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("no temporary image in %s after 60 s; stderr: %s", dir, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cmd.Process.Signal(sig)
	err := <-done
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want status 130; stderr: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr %q does not say it was interrupted", stderr.String())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in %s: %v", dir, left)
	}
}

// buildStarted reports whether dir, or a directory in it (run --share
// builds each image in a directory of its own), holds a temporary image.
func buildStarted(t *testing.T, dir string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walked
			}
			return err
		}
		if strings.Contains(e.Name(), ".tmp-") {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestInterrupted: a signal turns a failure into status 130, but never a
// success into one (a signal after up's preparation had finished made
// "interrupted: <nil>" with 130).
func TestInterrupted(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	fail := errors.New("download: connection reset")
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code int
	}{
		{"success, no signal", live, nil, 0},
		{"success, then a signal", ended, nil, 0},
		{"failure, no signal", live, fail, 1},
		{"failure after a signal", ended, fail, 130},
		{"already 130", ended, cli.Exit("stopped", 130), 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := interrupted(tt.ctx, tt.err)
			got := 0
			if err != nil {
				got = exitCode(err)
			}
			if got != tt.code {
				t.Fatalf("interrupted(%v) = %v, exit %d; want exit %d", tt.err, err, got, tt.code)
			}
			if tt.code == 130 && tt.err != nil && !strings.Contains(err.Error(), tt.err.Error()) {
				t.Errorf("interrupted(%v) = %q, lost the cause", tt.err, err)
			}
		})
	}
}

// TestMkimgSignalDuringPostinst: a root image's mkimg stops on SIGINT,
// SIGTERM or SIGHUP while a postinst script runs, status 130, with the
// script and what it started killed, and neither the staging copy nor a
// temporary image file left (only mkimg --data looked at signals: the
// script ran on, the staging tree stayed in TMPDIR).
func TestMkimgSignalDuringPostinst(t *testing.T) {
	bin := smolvmmBin(t)
	sets := inSetDir(t)
	svcs := filepath.Join(sets, "svcs")
	// Host pids, read by the shell from /proc/self/stat.
	for p, c := range map[string]string{
		"svc/etc/rc":        "sh\n",
		"svc/postinst/x.sh": "sh -c 'read p _ </proc/self/stat; echo pid $p; echo >> pids; exec sleep 300 >/dev/null 2>&1' &\nsh -c 'read p _ </proc/self/stat; echo pid $p; echo >> pids; exec sleep 301' &\nread p _ </proc/self/stat; echo pid $p\ntouch pids; while [ $(wc -l < pids) -lt 2 ]; do sleep 0.05; done\ntouch started\nwait\n",
	} {
		os.MkdirAll(filepath.Join(svcs, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(svcs, p), []byte(c), 0o644)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			// The scripts' user (another, when root builds) must reach
			// the staging copy: not a t.TempDir (0700).
			tmp, err := os.MkdirTemp("", "tmpdir-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(tmp)
			os.Chmod(tmp, 0o755)
			out := t.TempDir()
			cmd := exec.Command(bin, "mkimg", "-s", "svc", "--service-dir", svcs, "-x", filepath.Join(sets, "rescue.tgz"), "-i", filepath.Join(out, "root.img"))
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			for started := false; !started; {
				m, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-postinst-*", "gate", "root", "started"))
				started = len(m) > 0
				select {
				case err := <-done:
					t.Fatalf("ended (%v) before the script started: %s", err, stderr.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			cmd.Process.Signal(sig)
			var err2 error
			select {
			case err2 = <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 30s after %v: %s", sig, stderr.String())
			}
			if ee, ok := err2.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
				t.Errorf("exit %v, want status 130; stderr: %s", err2, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted by "+unix.SignalName(sig)) {
				t.Errorf("stderr %q does not say it was interrupted by %s", stderr.String(), unix.SignalName(sig))
			}
			for _, d := range []string{tmp, out} {
				if left, _ := os.ReadDir(d); len(left) != 0 {
					t.Errorf("left in %s: %v", d, left)
				}
			}
			for _, m := range regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(stderr.String(), -1) {
				pid, _ := strconv.Atoi(m[1])
				deadline := time.Now().Add(20 * time.Second)
				for processRuns(pid) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if processRuns(pid) {
					t.Errorf("process %d the script started still runs", pid)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
}

// processRuns reports whether process pid runs (a zombie does not).
func processRuns(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
