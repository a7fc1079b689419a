package imagebuilder

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/staledir"
)

// procState is the state letter of /proc/PID/stat (Z once killed and
// not reaped).
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return b[i+2]
}

// TestRemoveDeadStagingKillsOnlyBuildIDs: the next root build killed
// every process of the uid a dead build's staging directory named, with
// no check but uid >= 1000: uid 1000 of a real account (cloudsdk here),
// an id recorded before a reboot or in another user namespace. It now
// kills only when the note is of this boot and user namespace and names
// an id a build picks now that no user or group has; the directory is
// removed either way.
func TestRemoveDeadStagingKillsOnlyBuildIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root build kills a dead build's processes")
	}
	ns, ok := selfUserNS()
	boot := bootID()
	if !ok || boot == "" {
		t.Skip("no /proc/self/ns/user or boot_id")
	}
	buildID, err := buildIDs()
	if err != nil {
		t.Fatal(err)
	}
	named := buildID + 1 // an id of the range a user was given since
	for idInUse(named) {
		named++
	}
	outside := uint32(4000) // below the range, no user's
	if pickable(outside) {
		t.Skipf("uid %d is one a build picks here (%v)", outside, mappedIDs())
	}
	realUID := uint32(0)
	for _, id := range []uint32{1000, 1001, 1002, 65534} {
		if _, err := os.ReadFile("/etc/passwd"); err == nil && idNamed(id) {
			realUID = id
			break
		}
	}
	saved := idNamed
	t.Cleanup(func() { idNamed = saved })
	idNamed = func(id uint32) bool { return id == named || saved(id) }
	note := func(uid uint32, boot, userns string) string {
		return fmt.Sprintf("uid %d\nboot %s\nuserns %s\n", uid, boot, userns)
	}
	cases := []struct {
		name   string
		uid    uint32
		note   string
		killed bool
	}{
		{"this build's", buildID, note(buildID, boot, ns.String()), true},
		{"other boot", buildID, note(buildID, "00000000-0000-0000-0000-000000000000", ns.String()), false},
		{"no boot", buildID, fmt.Sprintf("uid %d\nuserns %s\n", buildID, ns), false},
		{"other namespace", buildID, note(buildID, boot, fmt.Sprintf("%d:%d", ns.dev, ns.ino+1)), false},
		{"bare uid (older smolvmm)", buildID, fmt.Sprint(buildID), false},
		{"uid a user has", named, note(named, boot, ns.String()), false},
		{"uid outside the range", outside, note(outside, boot, ns.String()), false},
	}
	if realUID != 0 {
		cases = append(cases, struct {
			name   string
			uid    uint32
			note   string
			killed bool
		}{"uid of an account", realUID, note(realUID, boot, ns.String()), false})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			dead := filepath.Join(tmp, stagePrefix+"123456")
			if err := os.Mkdir(dead, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dead, staledir.LockName), []byte(tc.note), 0o600); err != nil {
				t.Fatal(err)
			}
			victim := exec.Command("sleep", "300")
			victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.uid, Groups: []uint32{}}}
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			defer victim.Wait()
			defer victim.Process.Kill()
			removeDeadStaging()
			if killed := procState(t, victim.Process.Pid) == 'Z'; killed != tc.killed {
				t.Errorf("note %q: uid %d's process killed %v, want %v", tc.note, tc.uid, killed, tc.killed)
			}
			if _, err := os.Lstat(dead); err == nil {
				t.Errorf("%s left", dead)
			}
		})
	}
}

// TestInUserNS: a process of a user namespace made below this one (a
// script's) is in it; this process is not in that one, which is below.
func TestInUserNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to map an id in a new user namespace")
	}
	ns, ok := selfUserNS()
	if !ok {
		t.Skip("no /proc/self/ns/user")
	}
	child := exec.Command("sleep", "300")
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	child.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: m, GidMappings: m}
	if err := child.Start(); err != nil {
		t.Skipf("no user namespace: %v", err)
	}
	defer child.Wait()
	defer child.Process.Kill()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", child.Process.Pid), &st); err != nil {
		t.Fatal(err)
	}
	below := nsIdent{uint64(st.Dev), st.Ino}
	if below == ns {
		t.Fatal("the child is in this process's user namespace")
	}
	for _, tc := range []struct {
		pid  int
		ns   nsIdent
		want bool
	}{
		{os.Getpid(), ns, true},
		{child.Process.Pid, ns, true},
		{child.Process.Pid, below, true},
		{os.Getpid(), below, false},
		{child.Process.Pid, nsIdent{ns.dev, ns.ino + 1}, false},
	} {
		if got := inUserNS(tc.pid, tc.ns); got != tc.want {
			t.Errorf("inUserNS(%d, %v) = %v, want %v", tc.pid, tc.ns, got, tc.want)
		}
	}
}
