package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBrokenStderrWhileRaw: a run on a terminal whose standard error's
// reader has gone away ends of SIGPIPE, status 141, when a line written
// there while the terminal is raw fails, and leaves the terminal as it
// found it: the loader's notes of what a NetBSD kernel is not given, and
// Ctrl-A s's answer when there is no snapshot file. Those lines were
// written past the record of a broken output the console ends the
// process on: their EPIPE was lost, and the silent guest ran on.
func TestBrokenStderrWhileRaw(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	netbsd := filepath.Join(t.TempDir(), "netbsd")
	// A silent NetBSD kernel: "-s" without console= gets a note, as
	// does its lack of a symbol table.
	if err := os.WriteFile(netbsd, netbsdELF(3, []byte{0xEB, 0xFE}), 0o644); err != nil { // jmp $
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		keys string // typed once it runs
	}{
		{"loader notes", []string{"-k", netbsd, "-a", "-s"}, ""},
		{"loader notes, --no-seccomp", []string{"-k", netbsd, "-a", "-s", "--no-seccomp"}, ""},
		{"C-a s without --snapshot", []string{"-k", spinKernel(t)}, "\x01s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ptm, pts := openPTYPair(t)
			before := termiosOf(t, pts)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			cmd := exec.Command(smolvmmBin(t), append([]string{"run", "-m", "16", "--net", "none"}, tt.args...)...)
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
			if tt.keys != "" {
				// Typed once the console reads them: the terminal raw.
				for deadline := time.Now().Add(20 * time.Second); termiosOf(t, pts).Lflag&unix.ICANON != 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("terminal not raw in 20 s; stdout:\n%s", stdout.String())
					}
				}
				if _, err := ptm.Write([]byte(tt.keys)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err = <-waited:
				waited <- err
			case <-time.After(20 * time.Second):
				t.Fatalf("still running 20 s after a line met a closed standard error; stdout:\n%s", stdout.String())
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
