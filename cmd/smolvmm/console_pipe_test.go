package main

import (
	"bytes"
	"encoding/binary"
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

// chattyKernel writes an a.out-kludge multiboot kernel that writes 'a' to
// COM1 for ever: output that outlives any reader.
func chattyKernel(t *testing.T) string {
	t.Helper()
	k := make([]byte, 48)
	magic, flags := uint32(0x1BADB002), uint32(0x00010003)
	for i, v := range []uint32{magic, flags, -(magic + flags), 0x100000, 0x100000, 0, 0x101000, 0x100020} {
		binary.LittleEndian.PutUint32(k[4*i:], v)
	}
	copy(k[32:], []byte{
		0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xB0, 'a', 0xEE, // mov al, 'a'; out dx, al
		0xEB, 0xFB, // jmp back to the mov al
	})
	kernel := filepath.Join(t.TempDir(), "chatty")
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}

// TestBrokenPipeRestoresTerminal: a run on a terminal whose output goes
// to a pipe that its reader closes (smolvmm run ... | head -1) ends of
// SIGPIPE, status 141, as the README says, and leaves the terminal as it
// found it: Go's runtime ended the process on the write to the closed
// pipe without running the deferred restore, and the user's shell was
// left without echo.
func TestBrokenPipeRestoresTerminal(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := chattyKernel(t)
	for _, flags := range [][]string{nil, {"--no-seccomp"}} {
		t.Run(strings.Join(append([]string{"run"}, flags...), " "), func(t *testing.T) {
			_, pts := openPTYPair(t)
			before := termiosOf(t, pts)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(smolvmmBin(t), append([]string{"run", "-k", kernel, "-m", "16", "--net", "none"}, flags...)...)
			var stderr lockedBuffer // contain_test.go
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, w, &stderr
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
			// The guest's output comes once the terminal is raw: the
			// reader then goes away, as head -1 does.
			if _, err := r.Read(make([]byte, 1)); err != nil {
				t.Fatalf("no output: %v; stderr:\n%s", err, stderr.String())
			}
			if raw := termiosOf(t, pts); raw.Lflag&unix.ICANON != 0 {
				t.Fatal("the guest wrote before the terminal was raw")
			}
			r.Close()
			select {
			case err = <-waited:
				waited <- err
			case <-time.After(20 * time.Second):
				t.Fatalf("still running 20 s after its reader went away; stderr:\n%s", stderr.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("exit: %v, want SIGPIPE; stderr:\n%s", err, stderr.String())
			}
			if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != unix.SIGPIPE {
				t.Errorf("exit: %v, want killed by SIGPIPE (status 141); stderr:\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "writing standard output") {
				t.Errorf("a broken pipe said as lost output:\n%s", stderr.String())
			}
			if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
				t.Errorf("terminal left as %+v, want as it was: %+v", after, before)
			}
		})
	}
}

// TestBrokenOutput: the console ends the process of SIGPIPE only for a
// standard output or error whose reader went away, as Go does; SIGPIPE
// from another descriptor (a socket of the network's) is ignored.
func TestBrokenOutput(t *testing.T) {
	pipe := func(closeReader bool) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		if closeReader {
			r.Close()
		}
		return w
	}
	broken, open, pts := pipe(true), pipe(false), openPTY(t)
	tests := []struct {
		name  string
		files []*os.File
		want  *os.File
	}{
		{"open pipe, terminal", []*os.File{open, pts}, nil},
		{"pipe without reader", []*os.File{pts, broken}, broken},
		{"first broken", []*os.File{broken, open}, broken},
	}
	for _, tt := range tests {
		if got := brokenOutput(tt.files...); got != tt.want {
			t.Errorf("%s: brokenOutput = %v, want %v", tt.name, got, tt.want)
		}
	}
}
