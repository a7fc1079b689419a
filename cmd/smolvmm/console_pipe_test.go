package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
	return codeKernel(t, []byte{
		0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xB0, 'a', 0xEE, // mov al, 'a'; out dx, al
		0xEB, 0xFB, // jmp back to the mov al
	})
}

// codeKernel writes an a.out-kludge multiboot kernel that runs code.
func codeKernel(t *testing.T, code []byte) string {
	t.Helper()
	k := make([]byte, max(48, 32+len(code)))
	magic, flags := uint32(0x1BADB002), uint32(0x00010003)
	for i, v := range []uint32{magic, flags, -(magic + flags), 0x100000, 0x100000, 0, 0x101000, 0x100020} {
		binary.LittleEndian.PutUint32(k[4*i:], v)
	}
	copy(k[32:], code)
	kernel := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}

// brokenOutputs are standard outputs whose reader goes away after one
// byte: a pipe closed (smolvmm run ... | head -1), a Unix socket whose
// peer shut down reading, where poll shows neither POLLERR nor POLLHUP
// but a write fails with EPIPE. start gives the command's end, a
// function that reads a byte, and one that has the reader go away.
var brokenOutputs = []struct {
	name  string
	start func(t *testing.T) (w *os.File, readByte, leave func() error)
}{
	{"pipe", func(t *testing.T) (*os.File, func() error, func() error) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return w, func() error {
			_, err := r.Read(make([]byte, 1))
			return err
		}, r.Close
	}},
	{"socket shut for reading", func(t *testing.T) (*os.File, func() error, func() error) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		peer := os.NewFile(uintptr(fds[0]), "peer")
		t.Cleanup(func() { peer.Close() })
		return os.NewFile(uintptr(fds[1]), "stdout"), func() error {
			_, err := peer.Read(make([]byte, 1))
			return err
		}, func() error { return unix.Shutdown(fds[0], unix.SHUT_RD) }
	}},
}

// startReaped starts cmd, whose end exitWithin then gives; the test's
// cleanup kills and reaps it whatever the test's path out.
func startReaped(t *testing.T, cmd *exec.Cmd) (waited chan error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited = make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})
	return waited
}

// exitWithin is the end of startReaped's command, which must come within
// 20 s of what the test did (after); log is what the test shows if not.
func exitWithin(t *testing.T, waited chan error, after string, log fmt.Stringer) error {
	t.Helper()
	select {
	case err := <-waited:
		waited <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after %s; output:\n%s", after, log)
		return nil
	}
}

// waitRaw waits up to 20 s for the console to make the terminal pts raw:
// it is up, and reads what is typed.
func waitRaw(t *testing.T, pts *os.File, log fmt.Stringer) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); termiosOf(t, pts).Lflag&unix.ICANON != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal not raw in 20 s; output:\n%s", log)
		}
	}
}

// wantSIGPIPE fails the test unless err is the end of a process killed by
// SIGPIPE (status 141).
func wantSIGPIPE(t *testing.T, err error, log fmt.Stringer) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit: %v, want SIGPIPE; output:\n%s", err, log)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != unix.SIGPIPE {
		t.Errorf("exit: %v, want killed by SIGPIPE (status 141); output:\n%s", err, log)
	}
}

// TestBrokenPipeRestoresTerminal: a run on a terminal whose output's
// reader goes away (smolvmm run ... | head -1, or a socket shut for
// reading) ends of SIGPIPE, status 141, as the README says, and leaves the
// terminal as it found it: Go's runtime ended the process on the write to
// the closed pipe without running the deferred restore, and the user's
// shell was left without echo; a socket's, which poll did not show
// broken, had the run go on with its output lost.
func TestBrokenPipeRestoresTerminal(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := chattyKernel(t)
	for _, out := range brokenOutputs {
		for _, flags := range [][]string{nil, {"--no-seccomp"}} {
			t.Run(out.name+": "+strings.Join(append([]string{"run"}, flags...), " "), func(t *testing.T) {
				_, pts := openPTYPair(t)
				before := termiosOf(t, pts)
				w, readByte, leave := out.start(t)
				cmd := exec.Command(smolvmmBin(t), append([]string{"run", "-k", kernel, "-m", "16", "--net", "none"}, flags...)...)
				var stderr lockedBuffer // contain_test.go
				cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, w, &stderr
				waited := startReaped(t, cmd)
				w.Close()
				// The guest's output comes once the terminal is raw,
				// which it stays while the reader is there (once it
				// has gone, the restore may come before this look).
				if err := readByte(); err != nil {
					t.Fatalf("no output: %v; stderr:\n%s", err, stderr.String())
				}
				if raw := termiosOf(t, pts); raw.Lflag&unix.ICANON != 0 {
					t.Fatal("the guest wrote before the terminal was raw")
				}
				// The reader goes away, as head -1 does.
				if err := leave(); err != nil {
					t.Fatal(err)
				}
				wantSIGPIPE(t, exitWithin(t, waited, "its reader went away", &stderr), &stderr)
				if strings.Contains(stderr.String(), "writing standard output") {
					t.Errorf("a broken pipe said as lost output:\n%s", stderr.String())
				}
				if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
					t.Errorf("terminal left as %+v, want as it was: %+v", after, before)
				}
			})
		}
	}
}

// TestSIGPIPEOfAnotherWriteIgnored: a SIGPIPE that no write to standard
// output or error raised (a socket of the network's) leaves the VM
// running on a raw terminal, as Go leaves it, even when standard output's
// reader has gone away: a guest that writes nothing does not lose its
// output. The console took a standard output that poll showed broken for
// the SIGPIPE's cause and ended the VM with 141. Ignoring has no output
// of its own: a SIGCONT sent after the SIGPIPE, which the console's watch
// serves after it (signals are delivered lowest first, 13 before 18, to
// one watch), sets raw mode again on the terminal the test put back to
// cooked, as a shell does after a stop; the watch ended by the SIGPIPE
// (the terminal restored) leaves it cooked. The VM is its terminal's
// session leader, in the foreground, where raw mode is set again.
func TestSIGPIPEOfAnotherWriteIgnored(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := codeKernel(t, []byte{0xEB, 0xFE}) // jmp $: silent
	for _, closeReader := range []bool{false, true} {
		t.Run(map[bool]string{false: "stdout read", true: "stdout's reader gone"}[closeReader], func(t *testing.T) {
			ptm, pts := openPTYPair(t)
			cooked := termiosOf(t, pts)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "16", "--net", "none")
			var stderr lockedBuffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, w, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			waited := startReaped(t, cmd)
			w.Close()
			if closeReader {
				r.Close()
			}
			waitRaw(t, pts, &stderr)
			if err := unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, &cooked); err != nil {
				t.Fatal(err)
			}
			for _, sig := range []unix.Signal{unix.SIGPIPE, unix.SIGCONT} {
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(20 * time.Second); termiosOf(t, pts).Lflag&unix.ICANON != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("terminal not raw again 20 s after a SIGPIPE and a SIGCONT: the SIGPIPE ended the console's watch; stderr:\n%s", stderr.String())
				}
			}
			select {
			case err := <-waited:
				waited <- err // for the cleanup
				t.Fatalf("exit after a SIGPIPE and a SIGCONT: %v; want the VM running; stderr:\n%s", err, stderr.String())
			default:
			}
			if _, err := ptm.Write([]byte{escapeByte, 'x'}); err != nil {
				t.Fatal(err)
			}
			err = exitWithin(t, waited, "Ctrl-A x", &stderr)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("exit: %v, want status 130 of Ctrl-A x: the SIGPIPE ignored; stderr:\n%s", err, stderr.String())
			}
		})
	}
}
