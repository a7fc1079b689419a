package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadOOMKills(t *testing.T) {
	root := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "memory/a/b/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n")
	write(filepath.Join(root, "c/memory.events"), "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n")
	write(filepath.Join(root, "d/memory.events"), "low 0\noom 1\n")
	write(filepath.Join(root, "e/memory.events"), "oom_kill x\n")
	tests := []struct {
		name, self string
		want       uint64
		wantErr    string
	}{
		{"v1", "4:memory:/a/b\n3:pids:/\n0::/\n", 7, ""},
		{"v1 with others", "5:cpu,memory:/a/b\n", 7, ""},
		{"v1 after v2's line", "0::/c\n4:memory:/a/b\n", 7, ""},
		{"v2", "0::/c\n", 2, ""},
		{"no oom_kill line", "0::/d\n", 0, "no oom_kill line"},
		{"bad count", "0::/e\n", 0, `oom_kill "x"`},
		{"v2 root", "0::/\n", 0, "memory.events: no such file"},
		{"no memory cgroup", "3:pids:/\n", 0, "no memory cgroup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			self := filepath.Join(t.TempDir(), "cgroup")
			write(self, tt.self)
			got, err := readOOMKills(self, root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %d, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// A VM that SIGKILL ended without the bench sending it was killed from
// outside: the OOM killer's when the bench's memory cgroup counted a kill
// meanwhile, most likely so when that is not known.
func TestParallelVMKilledMessage(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name     string
		end      *vmEnd
		oomKills *bool
		want     string
	}{
		{"counted", &vmEnd{status: "signal: killed", sigkill: true}, &yes, "killed by the kernel's OOM killer before its first console byte: x"},
		{"not counted", &vmEnd{status: "signal: killed", sigkill: true}, &no,
			"killed by SIGKILL from another process (not the OOM killer: the bench's memory cgroup counted no kill) before its first console byte: x"},
		{"not known", &vmEnd{status: "signal: killed", sigkill: true}, nil,
			"killed by SIGKILL from outside the bench (most likely the kernel's OOM killer, which takes VMs first) before its first console byte: x"},
		{"another signal", &vmEnd{status: "signal: terminated"}, &yes, "signal: terminated before its first console byte: x"},
		{"an exit", &vmEnd{status: "exit status 1"}, &yes, "exit status 1 before its first console byte: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &parallelVM{end: tt.end, stderr: &tailBuffer{max: 512}}
			v.stderr.Write([]byte("x"))
			if got, _ := v.endError("before its first console byte", tt.oomKills); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// testMemoryCgroup makes a memory cgroup of limit bytes, no swap, below
// the test's own (or, in cgroup v2 where that cannot have children with
// the memory controller, below the root), removed when the test ends; it
// returns the cgroup's cgroup.procs file, or skips with the reason.
func testMemoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("making a memory cgroup needs root")
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	name := fmt.Sprintf("smolvmm-oomtest-%d", os.Getpid())
	var dir string
	var settings [][2]string
	v2 := false
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && hasController(parts[1], "memory") {
			dir = filepath.Join("/sys/fs/cgroup/memory", parts[2], name)
		}
	}
	if dir == "" {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			t.Skipf("no memory cgroup (neither v1's nor v2's): %s", self)
		}
		v2 = true
	}
	if v2 {
		own := ""
		for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				own = p
			}
		}
		// The test's own cgroup, unless it has processes that keep its
		// children from the memory controller: then the root's.
		for _, parent := range []string{filepath.Join("/sys/fs/cgroup", own), "/sys/fs/cgroup"} {
			sub, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
			if err != nil {
				continue
			}
			if !hasController(strings.ReplaceAll(strings.TrimSpace(string(sub)), " ", ","), "memory") &&
				os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory"), 0) != nil {
				continue
			}
			dir = filepath.Join(parent, name)
			break
		}
		if dir == "" {
			t.Skip("no cgroup v2 parent lets a child have the memory controller")
		}
		settings = [][2]string{{"memory.max", strconv.FormatInt(limit, 10)}, {"memory.swap.max", "0"}}
	} else {
		// memsw is at least the memory limit: set after it.
		settings = [][2]string{{"memory.limit_in_bytes", strconv.FormatInt(limit, 10)}, {"memory.memsw.limit_in_bytes", strconv.FormatInt(limit, 10)}}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Its processes are reaped, but the kernel may take a moment
		// to let it go.
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(end) {
				t.Errorf("cgroup %s left: %v", dir, err)
				return
			}
		}
	})
	for _, s := range settings {
		err := os.WriteFile(filepath.Join(dir, s[0]), []byte(s[1]), 0)
		if err != nil && !(errors.Is(err, os.ErrNotExist) && strings.Contains(s[0], "sw")) {
			t.Fatalf("cgroup %s: %s: %v", dir, s[0], err)
		}
	}
	return filepath.Join(dir, "cgroup.procs")
}

// oomBench is the bench of TestRunParallelOOMKilled: it joins the cgroup
// whose cgroup.procs is procs, starts one hog VM, and prints the results.
func oomBench(procs string) int {
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	target := Target{Name: "fake", Path: exe, Env: []string{"BENCH_FAKE=hog"}}
	res, err := RunParallel(context.Background(), target, ParallelOptions{N: 1, Timeout: time.Minute, Config: Config{Kernel: "fake", MemoryMiB: 1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := res.WriteJSON(os.Stdout); err != nil {
		return 1
	}
	return 0
}

// A VM the OOM killer takes, in a bench whose memory cgroup is full, is
// said to have been killed by it.
func TestRunParallelOOMKilled(t *testing.T) {
	procs := testMemoryCgroup(t, 64<<20)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "BENCH_OOMBENCH="+procs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v: %s", err, stderr.Bytes())
	}
	var res ParallelResults
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bench's results: %v: %s", err, out)
	}
	const want = "killed by the kernel's OOM killer before its first console byte"
	if res.Started != 0 || res.Failed != 1 || len(res.VMs) != 1 || res.VMs[0].Error != want || res.VMs[0].Limit != LimitMemory {
		t.Errorf("started %d failed %d, vms %+v; want the VM failed: %s", res.Started, res.Failed, res.VMs, want)
	}
}
