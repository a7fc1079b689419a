package imagebuilder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/service"
)

// failUserNS makes startScript fail with errno a command that would make
// a user namespace, as a host that allows none does, until the test
// ends.
func failUserNS(t *testing.T, errno syscall.Errno) {
	old := startScript
	startScript = func(cmd *exec.Cmd) error {
		if cmd.SysProcAttr != nil && cmd.SysProcAttr.Cloneflags&syscall.CLONE_NEWUSER != 0 {
			return &fs.PathError{Op: "fork/exec", Path: cmd.Path, Err: errno}
		}
		return old(cmd)
	}
	t.Cleanup(func() { startScript = old })
}

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

// scriptsService is a service "svc" whose postinst scripts are scripts,
// by name.
func scriptsService(t *testing.T, scripts map[string]string) *service.Service {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"svc/etc/rc": "sh\n"}
	for name, s := range scripts {
		files["svc/postinst/"+name] = s
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := service.Load("svc", dir)
	if err != nil {
		t.Fatal(err)
	}
	return svc
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
// of the build's own (not nobody, no other process's), which they see
// as nobody's in a user namespace of their own, and every process of
// that id is killed when a script ends; they have no capability there.
// Where no user namespace can be made (ENOSPC: user.max_user_namespaces
// reached, EPERM, EINVAL, EUSERS) they run as the id itself, with a
// warning: a PID namespace, which made $$ 1 in every build, failed the
// build with ENOSPC.
func TestPostinstNothingLeft(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build runs its scripts as another user")
	}
	nobodyUID, _ := nobodyIDs()
	for _, tc := range []struct {
		name  string
		errno syscall.Errno // the user namespace's failure, 0 for none
	}{
		{"user namespace", 0},
		{"EPERM", syscall.EPERM},
		{"EINVAL", syscall.EINVAL},
		{"ENOSPC", syscall.ENOSPC},
		{"EUSERS", syscall.EUSERS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.errno != 0 {
				failUserNS(t, tc.errno)
			}
			svc := scriptsService(t, map[string]string{
				"1.sh": "set -e\ncat /proc/self/uid_map > uidmap\nid -u > uid\necho $$ > pid\ngrep -E '^Cap(Prm|Eff|Amb):' /proc/self/status > caps\nsetsid sh -c 'exec sleep 30' >/dev/null 2>&1 </dev/null &\nsetsid sh -c 'exec sleep 31' &\nsleep 0.2\n",
				"2.sh": "echo $$ > pid2\n",
			})
			tr := fstree.New()
			var log strings.Builder
			start := time.Now()
			if err := RunPostinst(context.Background(), tr, svc, &log); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("RunPostinst took %v", d)
			}
			inside, err := strconv.ParseUint(content(tr, "uid"), 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			// The id outside: the map's second field in a namespace.
			uid := uint32(inside)
			if f := strings.Fields(content(tr, "uidmap")); tc.errno == 0 {
				if len(f) != 3 || f[0] != strconv.FormatUint(uint64(nobodyUID), 10) || f[2] != "1" {
					t.Fatalf("the script's uid_map %q: want nobody's id alone mapped", content(tr, "uidmap"))
				}
				v, _ := strconv.ParseUint(f[1], 10, 32)
				uid = uint32(v)
				if inside != uint64(nobodyUID) {
					t.Errorf("the script's uid inside its namespace: %d, want nobody's, %d", inside, nobodyUID)
				}
			}
			if !mapped(uid) || uid == nobodyUID || uid == 0 {
				t.Errorf("the script ran as uid %d outside, want one of the build's own, in %v", uid, mappedIDs())
			}
			// Not root in its namespace, so none past its exec.
			if caps := strings.Fields(content(tr, "caps")); len(caps) != 6 || caps[1] != "0000000000000000" || caps[3] != "0000000000000000" || caps[5] != "0000000000000000" {
				t.Errorf("the script's capabilities: %q, want none", content(tr, "caps"))
			}
			if p1, p2 := content(tr, "pid"), content(tr, "pid2"); p1 == "1" || p1 == "" || p1 == p2 {
				t.Errorf("the scripts' $$: %q and %q, want process ids of their own", p1, p2)
			}
			if warned := strings.Contains(log.String(), "no user namespace can be made here"); warned != (tc.errno != 0) || strings.Count(log.String(), "no user namespace") > 1 {
				t.Errorf("the build's log:\n%s\nwant one warning of no user namespace: %v", log.String(), tc.errno != 0)
			}
			eachProcess(func(pid int, uids, gids []uint32, zombie bool) {
				if !zombie && (slices.Contains(uids, uid) || slices.Contains(gids, uid)) {
					t.Errorf("process %d of uid %d, the script's, runs after the build", pid, uid)
				}
			})
		})
	}
}

// TestPostinstUserNSOtherError: a script that fails to start for another
// reason than a user namespace refused is not run again without one: the
// build fails, saying why.
func TestPostinstUserNSOtherError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build makes a user namespace")
	}
	failUserNS(t, syscall.ENOMEM)
	err := RunPostinst(context.Background(), fstree.New(), scriptService(t, "true\n"), nil)
	if !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("RunPostinst: %v, want the start's ENOMEM", err)
	}
}

// TestPostinstUserLookup: a root build's scripts ran as an id that names
// no user, so what looks its user up failed the build: ssh-keygen (a
// host key made at build time: "No user exists for uid 2146088383"),
// whoami, id -un. In their user namespace they are nobody, as they were
// when they ran as nobody. And $$ was 1 in every build, its PID
// namespace's init, so a /tmp/x.$$ one build left in the sticky /tmp
// failed every later build: it is the script's own process id now.
func TestPostinstUserLookup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build runs its scripts as another user")
	}
	nobodyUID, _ := nobodyIDs()
	u, err := user.LookupId(strconv.FormatUint(uint64(nobodyUID), 10))
	if err != nil {
		t.Skip("no user nobody")
	}
	keygen := ""
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		keygen = "mkdir -p etc/ssh\nssh-keygen -q -t ed25519 -N '' -C '' -f etc/ssh/ssh_host_ed25519_key\n"
	}
	tmpName := "/tmp/smolvmm-postinst-test.$$"
	svc := scriptsService(t, map[string]string{
		"1.sh": "set -e\nid -un > name\nwhoami > who\necho $$ > pid1\n" + keygen,
		"2.sh": "set -e\necho $$ > pid2\necho x > " + tmpName + "\necho " + tmpName + " > tmpname\n",
	})
	for build := range 2 {
		tr := fstree.New()
		err := RunPostinst(context.Background(), tr, svc, nil)
		if f := content(tr, "tmpname"); f != "" {
			os.Remove(f)
		}
		if err != nil {
			t.Fatalf("build %d: %v", build, err)
		}
		for p, want := range map[string]string{"name": u.Username, "who": u.Username} {
			if got := content(tr, p); got != want {
				t.Errorf("build %d: %s: %q, want %q", build, p, got, want)
			}
		}
		if keygen != "" {
			if _, err := tr.Get("etc/ssh/ssh_host_ed25519_key.pub"); err != nil {
				t.Errorf("build %d: no host key made: %v", build, err)
			}
		}
		if p1, p2 := content(tr, "pid1"), content(tr, "pid2"); p1 == "1" || p2 == "1" || p1 == p2 {
			t.Errorf("build %d: the scripts' $$: %q and %q, want process ids of their own", build, p1, p2)
		}
	}
}

// TestPostinstScriptReach: a script that is nobody in its user namespace
// is nobody to no other process: a host process of uid 65534 can neither
// enter the staging tree nor signal the script while it runs, and the
// script can neither read nor write a host nobody's 0600 file, nor write
// a root file (which looks nobody's inside) nor read one of root's group
// (root's supplementary groups are not the script's).
func TestPostinstScriptReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build runs its scripts as another user")
	}
	// A supplementary group of the builder's, which the script must not
	// have: root has none here.
	old, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setgroups(append(old, 4242)); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setgroups(old)
	for _, errno := range []syscall.Errno{0, syscall.ENOSPC} {
		t.Run(map[syscall.Errno]string{0: "user namespace", syscall.ENOSPC: "none (ENOSPC)"}[errno], func(t *testing.T) {
			if errno != 0 {
				failUserNS(t, errno)
			}
			dir, err := os.MkdirTemp("", "reach-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			os.Chmod(dir, 0o755)
			files := []struct {
				name        string
				uid, gid    int
				mode        os.FileMode
				read, write bool
			}{
				{"root", 0, 0, 0o644, true, false},
				{"rootgroup", 0, 4242, 0o640, false, false},
				{"nobody", 65534, 65534, 0o600, false, false},
			}
			var want []string
			script := "echo stage $(pwd) pid $$\n"
			for _, f := range files {
				p := filepath.Join(dir, f.name)
				if err := os.WriteFile(p, []byte("x\n"), f.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(p, f.uid, f.gid); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, f.mode); err != nil {
					t.Fatal(err)
				}
				script += fmt.Sprintf("cat %[1]s >/dev/null 2>&1 && echo read %[2]s >> access\n(: >> %[1]s) 2>/dev/null && echo wrote %[2]s >> access\n", p, f.name)
				if f.read {
					want = append(want, "read "+f.name)
				}
				if f.write {
					want = append(want, "wrote "+f.name)
				}
			}
			script += "while [ ! -e go ]; do sleep 0.05; done\nrm -f go\n"
			var log guests.Console // safe to read while the build writes
			done := make(chan error, 1)
			tr := fstree.New()
			go func() { done <- RunPostinst(context.Background(), tr, scriptService(t, script), &log) }()
			re := regexp.MustCompile(`stage (\S+) pid (\d+)`)
			var m []string
			for deadline := time.Now().Add(20 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				m = re.FindStringSubmatch(log.String())
			}
			if m == nil {
				t.Fatalf("the script never said where it runs:\n%s", log.String())
			}
			for _, probe := range []string{`ls "$0"`, `kill -0 "$1"`} {
				cmd := exec.Command("/bin/sh", "-c", probe, m[1], m[2])
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
				if out, err := cmd.CombinedOutput(); err == nil {
					t.Errorf("uid 65534 ran %s on the script's stage and pid %v: succeeded (%s), want it refused", probe, m[1:], out)
				}
			}
			if err := os.WriteFile(filepath.Join(m[1], "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var got []string
			if s := content(tr, "access"); s != "" {
				got = strings.Split(s, "\n")
			}
			if !slices.Equal(got, want) {
				t.Errorf("the script reached the host's files: %q, want %q", got, want)
			}
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

// TestPostinstUserNSLimit: where user.max_user_namespaces allows none
// (here, 0 in a user namespace made for the test that maps 65536 ids, as
// a rootless container does), the scripts run as the build's id itself,
// with a warning; and no PID namespace is needed: with
// user.max_pid_namespaces 0 the build failed, "fork/exec /bin/sh: no
// space left on device".
func TestPostinstUserNSLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build makes a user namespace")
	}
	if os.Getenv("SMOLVMM_TEST_USERNS_LIMIT") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPostinstUserNSLimit$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SMOLVMM_TEST_USERNS_LIMIT=1")
		m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: m, GidMappings: m, GidMappingsEnableSetgroups: true, Credential: &syscall.Credential{Uid: 0, Gid: 0}}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Skipf("no user namespace for the test: %v", err)
		}
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPostinstUserNSLimit") {
			t.Errorf("in a user namespace allowing no other: %v\n%s", err, out)
		}
		return
	}
	// The limits of the test's own namespace, not the host's.
	for _, f := range []string{"max_user_namespaces", "max_pid_namespaces"} {
		if err := os.WriteFile("/proc/sys/user/"+f, []byte("0\n"), 0); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	tr := fstree.New()
	if err := RunPostinst(context.Background(), tr, scriptService(t, "set -e\nid -u > uid\n"), &log); err != nil {
		t.Fatal(err)
	}
	if uid, err := strconv.ParseUint(content(tr, "uid"), 10, 32); err != nil || !mapped(uint32(uid)) || uid == 65534 {
		t.Errorf("the script ran as uid %q, want the build's own", content(tr, "uid"))
	}
	if !strings.Contains(log.String(), "no user namespace can be made here") || !strings.Contains(log.String(), syscall.ENOSPC.Error()) {
		t.Errorf("the build's log:\n%s\nwant a warning of no user namespace, ENOSPC", log.String())
	}
}
