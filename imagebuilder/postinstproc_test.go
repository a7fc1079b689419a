package imagebuilder_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/imagebuilder"
)

// reachableTmp points TMPDIR at a new directory the scripts' user can
// traverse, and returns it: what is left in it after a build is what the
// build left.
func reachableTmp(t *testing.T) string {
	d, err := os.MkdirTemp("", "tmpdir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	os.Chmod(d, 0o755)
	t.Setenv("TMPDIR", d)
	return d
}

// runPostinstWithin runs RunPostinst, failing the test when it has not
// returned within limit.
func runPostinstWithin(t *testing.T, ctx context.Context, svcDir string, log *guests.Console, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- imagebuilder.RunPostinst(ctx, baseTree(t), loadService(t, "svc", svcDir), log) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("RunPostinst still running after %v; output so far:\n%s", limit, log.String())
		return nil
	}
}

// alive reports whether process pid still runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// hostPid is shell code that prints "pid N", N the shell's process id
// as the host sees it, read from /proc/self/stat (which the shell opens
// itself, for its builtin read), whatever namespace the shell is in.
const hostPid = `read p _ </proc/self/stat; echo pid $p`

// bgSleep is a command that prints its host pid (see hostPid), adds a
// line to the file pids, and then sleeps 300 seconds with the
// redirections redir.
func bgSleep(redir string) string {
	return `sh -c '` + hostPid + `; echo >> pids; exec sleep 300 ` + redir + `'`
}

// waitPids is shell code that waits until n bgSleep commands have
// printed their pid: the script's end would kill them before.
func waitPids(n int) string {
	return fmt.Sprintf("touch pids; while [ $(wc -l < pids) -lt %d ]; do sleep 0.05; done\n", n)
}

// checkGone fails the test for each "pid N" the log names that is still
// running 20 s after the build returned: SIGKILL ends a process once it
// is scheduled, which a loaded host may put off for seconds, and a
// process left running sleeps 300 s.
func checkGone(t *testing.T, log string) {
	t.Helper()
	pids := regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(log, -1)
	if len(pids) == 0 {
		t.Fatalf("no pid in the scripts' output:\n%s", log)
	}
	for _, m := range pids {
		pid, _ := strconv.Atoi(m[1])
		deadline := time.Now().Add(20 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d the script started still runs after the build", pid)
		}
	}
}

// checkNoStaging fails the test when a staging directory is left in tmp.
func checkNoStaging(t *testing.T, tmp string) {
	t.Helper()
	es, _ := os.ReadDir(tmp)
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "smolvmm-postinst-") {
			t.Errorf("staging directory %s left in TMPDIR", e.Name())
		}
	}
}

// TestPostinstProcesses: a postinst script runs in a process group of its
// own, killed when the script ends. A background job that kept the
// script's output blocked the build until it ended (sleep 300 &: five
// minutes), and one with its output redirected ran on after the build,
// in the deleted staging directory.
func TestPostinstProcesses(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		fails        bool
	}{
		{"background keeps output", bgSleep("") + " &\n" + waitPids(1), false},
		{"background redirected", bgSleep(">/dev/null 2>&1 </dev/null") + " &\n" + waitPids(1), false},
		{"subshell", "(" + bgSleep(">/dev/null 2>&1") + " &)\n" + waitPids(1), false},
		{"script fails", bgSleep("") + " &\n" + waitPids(1) + "exit 3\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := reachableTmp(t)
			var log guests.Console
			start := time.Now()
			err := runPostinstWithin(t, context.Background(), postinstService(t, map[string]string{"x.sh": tc.script}), &log, 30*time.Second)
			if (err != nil) != tc.fails {
				t.Errorf("RunPostinst: %v (fails %v)\n%s", err, tc.fails, log.String())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("RunPostinst took %v: the background job held it", d)
			}
			checkGone(t, log.String())
			checkNoStaging(t, tmp)
		})
	}
}

// TestPostinstCancel: a build whose context ends while a script runs
// kills the script and what it started, removes the staging directory
// and returns an error matching the context's.
func TestPostinstCancel(t *testing.T) {
	tmp := reachableTmp(t)
	var log guests.Console
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	script := bgSleep(">/dev/null 2>&1") + " &\n" + bgSleep("") + " &\n" + hostPid + "\n" + waitPids(2) + "wait\n"
	// Cancelled once the script and both jobs have printed their pids,
	// not at a fixed time: a loaded host's script could be cancelled
	// before it printed any ("no pid in the scripts' output").
	printed := regexp.MustCompile(`pid \d+\n`)
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if len(printed.FindAllString(log.String(), -1)) == 3 {
				break
			}
		}
		cancel()
	}()
	err := runPostinstWithin(t, ctx, postinstService(t, map[string]string{"x.sh": script}), &log, 30*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RunPostinst: %v, want an error matching context.Canceled", err)
	}
	checkGone(t, log.String())
	checkNoStaging(t, tmp)
}

// TestPostinstOutputBounded: of a failing script's output only the end
// is kept, for its error: 1 GB of output cost 2 GB of memory, though the
// error shows 2000 bytes of it.
func TestPostinstOutputBounded(t *testing.T) {
	reachableTmp(t)
	dir := postinstService(t, map[string]string{"x.sh": "head -c 100000000 /dev/zero | tr '\\0' x; echo; echo the last line; exit 1\n"})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := imagebuilder.RunPostinst(context.Background(), baseTree(t), loadService(t, "svc", dir), nil)
	runtime.ReadMemStats(&after)
	var se *imagebuilder.ScriptError
	if !errors.As(err, &se) || !strings.HasSuffix(se.Detail(), "the last line\n") {
		t.Fatalf("RunPostinst: %.200q, want a ScriptError whose detail ends with the script's last line", err)
	}
	if n := len(se.Detail()); n > 2500 {
		t.Errorf("detail of %d bytes: want the output's last 2000", n)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 20<<20 {
		t.Errorf("the build allocated %d MiB for 100 MB of output: want a bounded tail", a>>20)
	}
}

// TestPostinstUmask: scripts run with umask 022 whatever the builder's:
// under umask 077 the files and directories a script made were 0600 and
// 0700 in the image, which only root could then read.
func TestPostinstUmask(t *testing.T) {
	for _, mask := range []int{0o077, 0o002, 0o022} {
		t.Run(strconv.FormatInt(int64(mask), 8), func(t *testing.T) {
			old := syscall.Umask(mask)
			defer syscall.Umask(old)
			dir := postinstService(t, map[string]string{"x.sh": "echo hi > etc/new\nmkdir var\numask > etc/umask\n"})
			tr := baseTree(t)
			if err := imagebuilder.RunPostinst(context.Background(), tr, loadService(t, "svc", dir), nil); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]uint16{"etc/new": 0o644, "var": 0o755} {
				if n, err := tr.Get(p); err != nil || n.Perm != want {
					t.Errorf("%s: %+v %v, want mode %#o", p, n, err, want)
				}
			}
			if n, err := tr.Get("etc/umask"); err != nil || strings.TrimSpace(string(n.Content())) != "0022" {
				t.Errorf("the script's umask: %q %v, want 0022", contentOf(n), err)
			}
		})
	}
}

// TestPostinstEscapedHolder: a process that left the script's process
// group (setsid), so survives its kill, and still holds the script's
// output fails the step once the output has been waited for a while,
// naming it, rather than holding the build until it ends. When root
// builds, every process of the build's own id is killed when the script
// ends, such a process with them: the step succeeds and nothing is left
// (it ran on, as nobody, and could change every later root build's
// staging tree).
func TestPostinstEscapedHolder(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	for _, redir := range []string{"", ">/dev/null 2>&1 </dev/null"} {
		t.Run(redir, func(t *testing.T) {
			reachableTmp(t)
			var log guests.Console
			err := runPostinstWithin(t, context.Background(), postinstService(t, map[string]string{"x.sh": "setsid " + bgSleep(redir) + " &\n" + waitPids(1)}), &log, 30*time.Second)
			if os.Geteuid() == 0 {
				if err != nil {
					t.Errorf("RunPostinst: %v", err)
				}
				checkGone(t, log.String())
				return
			}
			for _, m := range regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(log.String(), -1) {
				pid, _ := strconv.Atoi(m[1])
				syscall.Kill(pid, syscall.SIGKILL)
			}
			if redir == "" && (err == nil || !strings.Contains(err.Error(), "left a process running outside its process group")) {
				t.Errorf("RunPostinst: %v, want the process left holding the output named", err)
			}
		})
	}
}
