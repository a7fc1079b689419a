package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunningVMUnmapsItsSetUpCode: once its guest runs, the VMM keeps
// mapped only the part of its executable it runs again, not the ~10 MiB
// that package initialisation and set-up mapped.
func TestRunningVMUnmapsItsSetUpCode(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bin := smolvmmBin(t)
	cmd := exec.Command(bin, "run", "-v", "-k", spinKernel(t), "-m", "16", "--net", "none")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	said := make(chan string, 1)
	go func() {
		var seen []string
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			seen = append(seen, s.Text())
			if strings.Contains(s.Text(), "unmapped the executable's") || strings.Contains(s.Text(), "stays mapped") {
				said <- s.Text()
				return
			}
		}
		said <- "stderr ended without a word on the executable's mappings:\n" + strings.Join(seen, "\n")
	}()
	select {
	case line := <-said:
		if !strings.Contains(line, "unmapped the executable's") {
			t.Fatal(line)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no word on the executable's mappings within 60 s")
	}
	exe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	kib := readOnlyResidentKiB(t, cmd.Process.Pid, exe)
	t.Logf("the running VMM's read-only mappings of %s: %d KiB resident", exe, kib)
	if kib > 4<<10 {
		t.Errorf("%d KiB of the executable's code and read-only data resident after the release, want at most 4 MiB", kib)
	}
	// The release ran at the lowest priority, on a thread of its own that
	// ends with it (just after its message): soon no thread is left to
	// serve the VM at that priority.
	deadline := time.Now().Add(10 * time.Second)
	for {
		niced := nicedThreads(t, cmd.Process.Pid)
		if len(niced) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads still niced 10 s after the release: %v", niced)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readOnlyResidentKiB adds the Rss of pid's mappings of path that are not
// writable.
func readOnlyResidentKiB(t *testing.T, pid int, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && f[5] == path && !strings.Contains(f[1], "w")
		case in && f[0] == "Rss:" && len(f) > 1:
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q", line)
			}
			kib += n
		}
	}
	return kib
}

// nicedThreads lists pid's threads whose nice value is not 0.
func nicedThreads(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	var niced []string
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		// After the command name, in parentheses: the state, then
		// sixteen more fields to nice.
		_, rest, _ := strings.Cut(string(b), ") ")
		if f := strings.Fields(rest); len(f) < 17 || f[16] != "0" {
			niced = append(niced, task)
		}
	}
	return niced
}
