//go:build linux && amd64

// Only amd64: TestSetName's child runs from TestMain (sandbox_test.go),
// and its blockThreads is privileges_linux_test.go's, both amd64 only.

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestForwardedSignals: Jail.Run catches and passes on SIGHUP only when
// it was not ignored at exec; the stop signals always.
func TestForwardedSignals(t *testing.T) {
	for _, tt := range []struct {
		hupIgnored bool
		want       []os.Signal
	}{
		{false, []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP}},
		{true, []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT}},
	} {
		if got := forwardedSignals(tt.hupIgnored); !slices.Equal(got, tt.want) {
			t.Errorf("forwardedSignals(SIGHUP ignored: %v) = %v; want %v", tt.hupIgnored, got, tt.want)
		}
	}
}

// nameChild is TestSetName's process: threads blocked in system calls,
// as a VMM's, then SetName(name); it prints each thread's comm.
func nameChild(name string) int {
	blockThreads(4)
	if err := SetName(name); err != nil {
		fmt.Println("refused:", err)
		return 0
	}
	paths, _ := filepath.Glob("/proc/self/task/*/comm")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		fmt.Print(string(b))
	}
	return 0
}

// TestSetName: SetName names every thread of a process started as
// /proc/self/exe, which the kernel named "exe" (pgrep -x smolvmm and
// pidof missed the jailed VMM and its broker, and the kernel's seccomp
// log said exe); a name past the kernel's 15 bytes is refused, not cut.
func TestSetName(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"smolvmm", "smolvmm"},
		{"smolvmm-broker", "smolvmm-broker"},
		{"smolvmm-brokers1", "refused: process name \"smolvmm-brokers1\": longer than the kernel's 15 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/proc/self/exe", "-test.run=^$")
			cmd.Env = append(os.Environ(), "SANDBOX_TEST_NAME="+tt.name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if strings.HasPrefix(tt.want, "refused") {
				if len(lines) != 1 || lines[0] != tt.want {
					t.Errorf("SetName(%q): %q; want %q", tt.name, out, tt.want)
				}
				return
			}
			if len(lines) < 5 {
				t.Fatalf("%d threads, want at least 5:\n%s", len(lines), out)
			}
			want := tt.want
			if linkedWithLibc {
				want = "" // the calling thread alone: checked below
			}
			for _, l := range lines {
				if want != "" && l != want {
					t.Errorf("a thread is named %q, want %q", l, want)
				}
			}
			if !slices.Contains(lines, tt.want) {
				t.Errorf("no thread is named %q: %q", tt.want, lines)
			}
		})
	}
}

// TestJailExitOnSIGPIPE: the jailed PID 1 ends of SIGPIPE (141) only when
// standard output or error has lost its reader, and ignores one raised by
// a write to another descriptor (a socket of the network's, reset by its
// host), where it ended the VM on every SIGPIPE.
func TestJailExitOnSIGPIPE(t *testing.T) {
	pipe := func(closeReader bool) int {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		if closeReader {
			r.Close()
		}
		return int(w.Fd())
	}
	socket := func(closePeer bool) int {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
		if closePeer {
			syscall.Close(fds[0])
		}
		return fds[1]
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, tt := range []struct {
		name   string
		fds    []int
		signal os.Signal
		want   int // exit status, -1: none
	}{
		{"SIGPIPE, outputs read", []int{pipe(false), socket(false)}, syscall.SIGPIPE, -1},
		{"SIGPIPE, output to /dev/null", []int{int(devNull.Fd()), pipe(false)}, syscall.SIGPIPE, -1},
		{"SIGPIPE, stdout a pipe without reader", []int{pipe(true), pipe(false)}, syscall.SIGPIPE, 141},
		{"SIGPIPE, stderr a socket without peer", []int{pipe(false), socket(true)}, syscall.SIGPIPE, 141},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			sigs <- tt.signal
			close(sigs)
			got := -1
			exitOn(sigs, func() bool { return outputBroken(tt.fds...) }, func(code int) { got = code })
			if got != tt.want {
				t.Errorf("exit status %d, want %d (-1: none)", got, tt.want)
			}
		})
	}
}
