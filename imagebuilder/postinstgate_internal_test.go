package imagebuilder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestPostinstStageGate: when root builds, the staging tree, which holds
// the set's setuid and setgid files (owned by the scripts' user), is
// reachable by that user and root alone. Its parent was 0710 with
// nobody's group, so any host user of that group (nogroup: _apt,
// sync...) could enter and run a staged setuid file as nobody; and the
// scripts ran as nobody, so any process of nobody's (a script of an
// earlier build left running, a daemon) could read and change the tree.
// The directory above the tree is now the scripts' user's, mode 0700, in
// one that user may not write, and that user is the build's own: not
// nobody, and no other process's.
func TestPostinstStageGate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the scripts run as another user only when root builds")
	}
	svc := scriptService(t, "true\n")
	tr := fstree.New()
	tr.Put("usr/bin/su", fstree.NewFile(0o4755, []byte("x")))
	var tmp string
	duringStaging = func(d string) { tmp = d }
	checked := false
	afterStageLstat = func(string) {
		if checked {
			return
		}
		checked = true
		var su string
		filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, "/usr/bin/su") {
				su = p
			}
			return nil
		})
		if su == "" {
			t.Fatalf("no staged usr/bin/su under %s", tmp)
		}
		stage := filepath.Dir(filepath.Dir(filepath.Dir(su)))
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Dir(stage), &st); err != nil {
			t.Fatal(err)
		}
		id := identity{uid: st.Uid, gid: st.Gid}
		if st.Mode&0o7777 != 0o700 || !mapped(st.Uid) || st.Gid != st.Uid {
			t.Errorf("the staging tree's parent %s: mode %#o, owner %d:%d; want 0700, owned by an id of the build's own", filepath.Dir(stage), st.Mode&0o7777, st.Uid, st.Gid)
		}
		// No process but the build's has the id, and none of its has
		// another.
		eachProcess(func(pid int, uids, gids []uint32, zombie bool) {
			if slices.Contains(uids, id.uid) || slices.Contains(gids, id.gid) {
				t.Errorf("process %d has ids %v:%v, the build's own %d", pid, uids, gids, id.uid)
			}
		})
		for p := filepath.Dir(filepath.Dir(stage)); strings.HasPrefix(p, tmp); p = filepath.Dir(p) {
			if err := syscall.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid == id.uid || st.Mode&0o022 != 0 {
				t.Errorf("%s above the staging tree: mode %#o, owner %d: the scripts' user could rename what it holds", p, st.Mode&0o7777, st.Uid)
			}
		}
		for _, tc := range []struct {
			name     string
			uid, gid uint32
			enter    bool
		}{
			{"a user of the scripts' group", 42, id.gid, false},
			{"a user of another group", 42, 42, false},
			{"nobody", 65534, 65534, false},
			{"the scripts' user", id.uid, id.gid, true},
		} {
			cmd := exec.Command("/bin/sh", "-c", `test -r "$0"`, su)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.gid, Groups: []uint32{}}}
			err := cmd.Run()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if (err == nil) != tc.enter {
				t.Errorf("%s (%d:%d) reaching the staged %s: %v; want it reached: %v", tc.name, tc.uid, tc.gid, su, err, tc.enter)
			}
		}
	}
	defer func() { duringStaging, afterStageLstat = nil, nil }()
	if err := RunPostinst(context.Background(), tr, svc, nil); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the merge hook never ran")
	}
}

// TestMergeStageRootSwapped: the staging tree's parent belongs to the
// scripts' user, who could put another directory in the tree's place;
// the merge refuses one that is not the directory staged.
func TestMergeStageRootSwapped(t *testing.T) {
	base := t.TempDir()
	staged, other := filepath.Join(base, "staged"), filepath.Join(base, "other")
	for _, d := range []string{staged, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "secret"), []byte(secretText), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(staged, &st); err != nil {
		t.Fatal(err)
	}
	stamps := map[string]stageStamp{"": {dev: st.Dev, ino: st.Ino}}
	if _, err := mergeStage(context.Background(), fstree.New(), staged, "", stamps, stageClock{}); err != nil {
		t.Fatalf("the directory staged: %v", err)
	}
	_, err := mergeStage(context.Background(), fstree.New(), other, "", stamps, stageClock{})
	if err == nil || !strings.Contains(err.Error(), "not the directory staged") {
		t.Fatalf("another directory in the staged one's place: %v; want it refused", err)
	}
}
