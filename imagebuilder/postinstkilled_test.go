package imagebuilder_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/imagebuilder"
)

// procUID is the real user id of process pid, from /proc/PID/status.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no Uid in /proc/%d/status", pid)
	}
	uid, _ := strconv.Atoi(string(m[1]))
	return uid
}

// TestPostinstKilledBuild: a build killed with SIGKILL while a script
// runs (here, the test binary run again for one build) leaves its
// staging directory and, when root, the processes of its scripts' id:
// the next build removes the one and kills the others. Both were left
// for good: a background job ran on, as the build's id, and the staging
// directory stayed in TMPDIR.
func TestPostinstKilledBuild(t *testing.T) {
	if svc := os.Getenv("SMOLVMM_TEST_KILLED_BUILD"); svc != "" {
		// The build to kill: its scripts' output on stdout.
		imagebuilder.RunPostinst(context.Background(), baseTree(t), loadService(t, "svc", svc), os.Stdout)
		t.Fatal("the build ended before it was killed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build's scripts run as an id of their own, which the next build may kill")
	}
	tmp := reachableTmp(t)
	svc := postinstService(t, map[string]string{"x.sh": bgSleep(">/dev/null 2>&1 </dev/null") + " &\n" + waitPids(1) + "echo ready\nexec sleep 300\n"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestPostinstKilledBuild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SMOLVMM_TEST_KILLED_BUILD="+svc)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var said strings.Builder
	pid := 0
	for sc := bufio.NewScanner(out); sc.Scan(); {
		said.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`^pid (\d+)$`).FindStringSubmatch(sc.Text()); m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
		if sc.Text() == "ready" {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if pid == 0 {
		t.Fatalf("the killed build's script printed no pid:\n%s", said.String())
	}
	uid := procUID(t, pid)
	left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-postinst-*"))
	if len(left) != 1 || !alive(pid) {
		t.Fatalf("after the kill: staging directories %v, background job %d running %v; want one, and true", left, pid, alive(pid))
	}

	var log guests.Console
	if err := runPostinstWithin(t, context.Background(), postinstService(t, map[string]string{"y.sh": "true\n"}), &log, 30*time.Second); err != nil {
		t.Fatalf("the next build: %v\n%s", err, log.String())
	}
	checkGone(t, "pid "+strconv.Itoa(pid))
	checkNoStaging(t, tmp)
	es, _ := os.ReadDir("/proc")
	for _, e := range es {
		p, err := strconv.Atoi(e.Name())
		if err != nil || !alive(p) {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/status"); err == nil && regexp.MustCompile(`(?m)^Uid:\s+`+strconv.Itoa(uid)+`\s`).Match(b) {
			t.Errorf("process %d of uid %d, the killed build's scripts', still runs", p, uid)
		}
	}
}
