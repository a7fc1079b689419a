package imagebuilder

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// mapped reports whether buildIDs may pick id: it is among the ids the
// test's user namespace maps (all of them on a host, 65536 in a rootless
// container, where ids are picked from 1000 up).
func mapped(id uint32) bool {
	for _, r := range mappedIDs() {
		if id >= r[0] && id < r[1] {
			return true
		}
	}
	return false
}

// content is the trimmed content of the file p of tr, "" without one.
func content(tr *fstree.Tree, p string) string {
	n, err := tr.Get(p)
	if err != nil || n == nil {
		return ""
	}
	return strings.TrimSpace(string(n.Content()))
}

// TestPostinstNothingLeft: a root build ran its scripts as nobody, in a
// process group killed when each ended, so a process a script started
// with setsid ran on after the build, as nobody, able to change the
// staging tree of every later root build. The scripts now run as an id
// of the build's own (not nobody, no other process's), in a PID
// namespace of their own, and nothing of theirs outlives the step: not
// with the namespace, nor where none can be made (then the processes of
// the build's id are killed).
func TestPostinstNothingLeft(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build runs its scripts as another user")
	}
	for _, pidns := range []bool{true, false} {
		t.Run("pidns="+strconv.FormatBool(pidns), func(t *testing.T) {
			old := postinstPIDNamespace
			postinstPIDNamespace = pidns
			defer func() { postinstPIDNamespace = old }()
			svc := scriptService(t, "set -e\nid -u > uid\necho $$ > pid\nsetsid sh -c 'exec sleep 30' >/dev/null 2>&1 </dev/null &\nsetsid sh -c 'exec sleep 31' &\nsleep 0.2\n")
			tr := fstree.New()
			start := time.Now()
			if err := RunPostinst(context.Background(), tr, svc, nil); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("RunPostinst took %v", d)
			}
			uidNode, err := tr.Get("uid")
			if err != nil {
				t.Fatal(err)
			}
			uid64, err := strconv.ParseUint(strings.TrimSpace(string(uidNode.Content())), 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			uid := uint32(uid64)
			if !mapped(uid) {
				t.Errorf("the script ran as uid %d, want one of the build's own, in %v", uid, mappedIDs())
			}
			if pid, _ := tr.Get("pid"); pid == nil || (strings.TrimSpace(string(pid.Content())) == "1") != pidns {
				t.Errorf("the script's own pid: %q, want 1 (a PID namespace's init): %v", pid.Content(), pidns)
			}
			eachProcess(func(pid int, uids, gids []uint32, zombie bool) {
				for _, v := range uids {
					if v == uid && !zombie {
						t.Errorf("process %d of uid %d, the script's, runs after the build", pid, uid)
						return
					}
				}
			})
		})
	}
}

// TestBuildIDs: the ids picked are in the build's range (or, in a
// rootless container's user namespace, among those it maps), neither nobody
// nor any process's, and differ from one build to the next.
func TestBuildIDs(t *testing.T) {
	seen := map[uint32]bool{}
	for range 20 {
		id, err := buildIDs()
		if err != nil {
			t.Fatal(err)
		}
		if !mapped(id) || idInUse(id) {
			t.Errorf("id %d: want one of %v that no process has", id, mappedIDs())
		}
		seen[id] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 picks gave %d ids: want them random", len(seen))
	}
	if !idInUse(0) {
		t.Error("id 0 (root's) not seen in use")
	}
}

// TestIntersect: the ranges of ids mapped both ways that buildIDs picks
// from, a container's maps among them.
func TestIntersect(t *testing.T) {
	tests := []struct {
		a, b, want [][2]uint32
	}{
		{[][2]uint32{{0, 0xffffffff}}, [][2]uint32{{buildIDLow, buildIDHigh}}, [][2]uint32{{buildIDLow, buildIDHigh}}},
		{[][2]uint32{{0, 1}, {1, 65537}}, [][2]uint32{{buildIDLow, buildIDHigh}}, nil},
		{[][2]uint32{{0, 1}, {1, 65537}}, [][2]uint32{{1000, 0xfffffffe}}, [][2]uint32{{1000, 65537}}},
	}
	for _, tt := range tests {
		got := intersect(tt.a, tt.b)
		if len(got) != len(tt.want) || len(got) > 0 && got[0] != tt.want[0] {
			t.Errorf("intersect(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestPostinstKillUserRace: what a script leaves running is all killed
// even when it forks all the while and continues (SIGCONT) the processes
// of its id that the build stopped, before it is stopped itself: one so
// continued forked after the last look, and ran on (the build failed,
// naming it, and it ran on).
func TestPostinstKillUserRace(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build runs its scripts as an id of its own")
	}
	const script = "cat /proc/self/uid_map > uidmap\nid -u > uid\n" +
		"setsid sh -c 'while :; do kill -CONT -1; done' >/dev/null 2>&1 </dev/null &\n" +
		"setsid sh -c 'while :; do sleep 30 & sh -c \"sleep 30 & sleep 30\" & sleep 0.01; done' >/dev/null 2>&1 </dev/null &\n" +
		"setsid sh -c 'while :; do kill -CONT -1; done' >/dev/null 2>&1 </dev/null &\n" +
		"sleep 0.3\n"
	// Where no PID namespace is made, killUser alone ends them.
	old := postinstPIDNamespace
	postinstPIDNamespace = false
	defer func() { postinstPIDNamespace = old }()
	for i := range 5 {
		tr := fstree.New()
		if err := RunPostinst(context.Background(), tr, scriptService(t, script), nil); err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		uid, _ := strconv.ParseUint(content(tr, "uid"), 10, 32)
		if f := strings.Fields(content(tr, "uidmap")); len(f) == 3 && f[2] == "1" {
			uid, _ = strconv.ParseUint(f[1], 10, 32)
		}
		time.Sleep(100 * time.Millisecond)
		n := 0
		eachProcess(func(pid int, uids, _ []uint32, zombie bool) {
			if !zombie && slices.Contains(uids, uint32(uid)) {
				n++
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		if n > 0 {
			t.Errorf("build %d: %d processes of uid %d, the script's, run after the build", i, n, uid)
		}
	}
}
