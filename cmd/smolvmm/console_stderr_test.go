package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBrokenStderrWhileRaw: a run on a terminal whose standard error's
// reader has gone away ends of SIGPIPE, status 141, when a notice written
// there while the terminal is raw fails (the loader's notes of what a
// NetBSD kernel is not given), and leaves the terminal as it found it.
// The notes were written past the record of a broken output the console
// ends the process on: their EPIPE was lost, and the silent guest ran on.
func TestBrokenStderrWhileRaw(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := filepath.Join(t.TempDir(), "netbsd")
	// A silent NetBSD kernel: "-s" without console= gets a note, as
	// does its lack of a symbol table.
	if err := os.WriteFile(kernel, netbsdELF(3, []byte{0xEB, 0xFE}), 0o644); err != nil { // jmp $
		t.Fatal(err)
	}
	for _, flags := range [][]string{nil, {"--no-seccomp"}} {
		t.Run(strings.Join(append([]string{"run"}, flags...), " "), func(t *testing.T) {
			_, pts := openPTYPair(t)
			before := termiosOf(t, pts)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			cmd := exec.Command(smolvmmBin(t), append([]string{"run", "-k", kernel, "-m", "16", "--net", "none", "-a", "-s"}, flags...)...)
			var stdout lockedBuffer // contain_test.go
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, &stdout, w
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-waited
			})
			select {
			case err = <-waited:
				waited <- err
			case <-time.After(20 * time.Second):
				t.Fatalf("still running 20 s after its notes met a closed standard error; stdout:\n%s", stdout.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("exit: %v, want SIGPIPE", err)
			}
			if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != unix.SIGPIPE {
				t.Errorf("exit: %v, want killed by SIGPIPE (status 141)", err)
			}
			if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
				t.Errorf("terminal left as %+v, want as it was: %+v", after, before)
			}
		})
	}
}

// TestStderrNotefRecordsBrokenPipe: a shared network's notice (lost,
// rejoined) that fails with EPIPE, its standard error's reader gone, is
// recorded for the console to end the process with 141, as the -v log's
// writes are (rawLogWriter): the notices wrote past the record.
func TestStderrNotefRecordsBrokenPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	saved, savedRecord := os.Stderr, brokenOut
	os.Stderr, brokenOut = w, &pipeRecord{broken: make(chan struct{})}
	t.Cleanup(func() { os.Stderr, brokenOut = saved, savedRecord })
	stderrNotef()("network %s lost", "shared")
	select {
	case <-brokenOut.broken:
	default:
		t.Fatal("the notice's EPIPE was not recorded")
	}
	if got := brokenOut.File(); got != w {
		t.Errorf("recorded %v, want standard error", got)
	}
}
