package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// procChild is TestNotDumpableMemoryError's process: mode "hold" makes
// itself not dumpable, as a VMM given capabilities does, says so and
// waits for its stdin to close; mode "read:PID" reads PID's memory as
// the bench does and prints each error.
func procChild(mode string) int {
	if mode == "hold" {
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			fmt.Println("prctl:", err)
			return 1
		}
		fmt.Println("held")
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(mode, "read:"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	_, err = ReadRollup(pid)
	fmt.Println("rollup:", err)
	_, err = ReadMemory(pid, fakeGuestBytes)
	fmt.Println("smaps:", err)
	return 0
}

// TestNotDumpableMemoryError: the memory of a not-dumpable process of
// the bench's own user (a VMM that had capabilities) is not readable
// without CAP_SYS_PTRACE, and the error says why: it was a bare "open
// /proc/PID/smaps: permission denied".
func TestNotDumpableMemoryError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to start processes of another user")
	}
	// The test binary's directory is root's alone: a copy nobody can run.
	dir, err := os.MkdirTemp("", "bench-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "bench.test")
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	hold := exec.Command(exe, "-test.run=^$")
	hold.Env = append(os.Environ(), "BENCH_PROC=hold")
	hold.SysProcAttr = asNobody
	in, err := hold.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = hold.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("holding process: %q, %v", line, err)
	}
	read := exec.Command(exe, "-test.run=^$")
	read.Env = append(os.Environ(), fmt.Sprintf("BENCH_PROC=read:%d", hold.Process.Pid))
	read.SysProcAttr = asNobody
	got, err := read.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	for i, file := range []string{"smaps_rollup", "smaps"} {
		want := fmt.Sprintf("open /proc/%d/%s: permission denied: process %d runs as uid 65534 but is not dumpable, so the kernel gives its /proc files to root: its memory can be read only with CAP_SYS_PTRACE, as root", hold.Process.Pid, file, hold.Process.Pid)
		if i >= len(lines) || !strings.Contains(lines[i], want) {
			t.Errorf("reading %s: %q, want %q", file, lines[min(i, len(lines)-1)], want)
		}
	}
}
