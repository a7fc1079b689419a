//go:build linux && amd64

package vmm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// targetChildEnv makes the test binary a filtered VMM that snapshots into
// a snapshot.Target (targetChild) instead of running the tests; its value
// is the filter: "recipe" (docs/library.md's, RunIoctls and Sockets) or
// "renamedir" (with RenameDir and Truncate besides).
const targetChildEnv = "VMM_TEST_TARGET_CHILD"

func init() {
	if mode := os.Getenv(targetChildEnv); mode != "" {
		os.Exit(targetChild(mode, os.Getenv(targetChildEnv+"_PATH")))
	}
}

// targetChild boots the demo guest under the filter mode names, installed
// from BeforeRun, snapshots it when ready into a Target at path, and says
// whether the snapshot was committed. A call the filter forbids ends it
// with sandbox.ExitStatus.
func targetChild(mode, path string) int {
	t, err := snapshot.OpenTarget(path)
	if err != nil {
		fmt.Println(err)
		return 3
	}
	f := sandbox.Filter{Ioctls: vmm.RunIoctls(), Sockets: true, Prefix: "child: "}
	if mode == "renamedir" {
		dir, _, _ := t.Names()
		f.RenameDir, f.Truncate = int(dir.Fd()), true
	}
	prep := sandbox.Prepare(f)
	m, err := vmm.New(vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 16,
		Ready: regexp.MustCompile("^smolvmm-demo: hello"), SnapshotOnReady: t.NewWriter(), SnapshotExit: true,
		BeforeRun: func() error { _, err := prep.Install(); return err }})
	if err != nil {
		fmt.Println(err)
		return 3
	}
	e, err := m.Run(context.Background())
	m.Close()
	fmt.Printf("run: %v %v\ncommitted: %v\n", e.Reason, err, t.Close())
	return 0
}

// TestSandboxedTargetSnapshot: a process under docs/library.md's filter
// recipe (RunIoctls, Sockets) is stopped at its first snapshot into a
// snapshot.Target, whose commit looks up and renames names in its
// directory; with RenameDir (the Target's directory, from Names) and
// Truncate, as the docs say such a process needs when it renames for
// itself, the snapshot is committed. (The recipe was given for a
// snapshotting VMM without a word of it.)
func TestSandboxedTargetSnapshot(t *testing.T) {
	needKVM(t)
	tests := []struct {
		mode   string
		status int
		want   string
	}{
		{"recipe", sandbox.ExitStatus, "child: seccomp: the VMM attempted the forbidden newfstatat"},
		{"renamedir", 0, "run: snapshot <nil>\ncommitted: true\n"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "demo.snap")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), targetChildEnv+"="+tt.mode, targetChildEnv+"_PATH="+path)
			out, err := cmd.CombinedOutput()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !strings.Contains(string(out), tt.want) {
				t.Fatalf("child exited %d, want %d with %q; output:\n%s", status, tt.status, tt.want, out)
			}
			if tt.status != 0 {
				return
			}
			f, err := snapshot.Open(path)
			if err != nil {
				t.Fatalf("the committed snapshot: %v", err)
			}
			f.Close()
		})
	}
}
