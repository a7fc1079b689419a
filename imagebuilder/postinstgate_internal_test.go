package imagebuilder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestPostinstStageGate: when root builds, the staging tree, which holds
// the set's setuid and setgid files (owned by nobody), is reachable by
// nobody and root alone. Its parent was 0710 with nobody's group, so any
// host user of that group (nogroup: _apt, sync...) could enter and run a
// staged setuid file as nobody. The directory above the tree is now
// nobody's, mode 0700, in one the scripts' user may not write.
func TestPostinstStageGate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the scripts run as nobody only when root builds")
	}
	id, err := scriptUser()
	if err != nil {
		t.Skip(err)
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
		if st.Mode&0o7777 != 0o700 || st.Uid != id.uid {
			t.Errorf("the staging tree's parent %s: mode %#o, owner %d; want 0700, owned by the scripts' user %d", filepath.Dir(stage), st.Mode&0o7777, st.Uid, id.uid)
		}
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
			{"a user of nobody's group", 42, id.gid, false},
			{"a user of another group", 42, 42, false},
			{"nobody", id.uid, id.gid, true},
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
